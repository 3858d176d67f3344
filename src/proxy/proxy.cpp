#include "archipel/proxy/proxy.hpp"

#include "archipel/dsl/scope.hpp"
#include "archipel/kube/status.hpp"
#include "archipel/proxy/merge.hpp"
#include "archipel/proxy/remote.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>
#include <deque>
#include <map>
#include <optional>
#include <variant>

namespace archipel::proxy {

namespace asio = boost::asio;
using asio::awaitable;

std::string_view ClientRequest::header(std::string_view name) const noexcept {
  return find_header(headers, name);
}

namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

std::unique_ptr<Answer> status_answer(const kube::Status& status, Headers extra = {}) {
  extra.emplace_back("Content-Type", "application/json");
  return complete_answer(static_cast<unsigned>(status.code), std::move(extra),
                         boost::json::serialize(status.to_json()));
}

kube::Status status(int code, std::string reason, std::string message) {
  kube::Status s;
  s.code = code;
  s.reason = std::move(reason);
  s.message = std::move(message);
  return s;
}

// One site's complete answer, or why it gave none.
struct Outcome {
  std::string site;
  std::optional<SiteAnswer> answer;
  std::string failure;

  // Whether the request may be tried elsewhere: no answer, or a server error.
  [[nodiscard]] bool failed() const { return !answer || answer->status >= 500; }
  [[nodiscard]] std::string why() const {
    return answer ? site + ": " + status_message(*answer) : failure;
  }
};

std::vector<std::string> sites_of(const dsl::Alternative& alt) {
  std::vector<std::string> out;
  for (const dsl::PlannedSite& s : alt.sites) {
    out.push_back(s.name);
  }
  return out;
}

bool is_streaming(const RequestInfo& info, std::string_view target) {
  if (info.verb == Verb::kWatch) {
    return true;
  }
  const auto follow = query_param(target, "follow");
  return follow && (*follow == "true" || *follow == "1");
}

// Runs `make(i)` for every i in [0, n) concurrently on the calling coroutine's executor and
// returns their results in order. `on_error()` stands for a task that threw.
template <class T, class Make, class OnError>
awaitable<std::vector<T>> gather(std::size_t n, Make make, OnError on_error) {
  struct State {
    explicit State(asio::any_io_executor ex, std::size_t n)
        : results(n), pending(n), done(ex, asio::steady_timer::time_point::max()) {}
    std::vector<std::optional<T>> results;
    std::size_t pending;
    asio::steady_timer done;
  };
  auto ex = co_await asio::this_coro::executor;
  auto state = std::make_shared<State>(ex, n);
  for (std::size_t i = 0; i < n; ++i) {
    asio::co_spawn(ex, make(i), [state, i](std::exception_ptr e, T result) {
      if (!e) {
        state->results[i] = std::move(result);
      }
      if (--state->pending == 0) {
        state->done.cancel();
      }
    });
  }
  if (state->pending > 0) {
    co_await state->done.async_wait(use_nothrow);
  }
  std::vector<T> out;
  out.reserve(n);
  for (auto& r : state->results) {
    out.push_back(r ? std::move(*r) : on_error());
  }
  co_return out;
}

// Several sites' watch streams as one: each site's events rewritten (site, composite
// resourceVersion) and interleaved as they come. It ends when the first site's stream ends, so
// that the client watches again from the composite version, which resumes every site.
class MergedWatch final : public Answer {
 public:
  struct Site {
    std::string name;
    std::unique_ptr<Answer> answer;
  };

  MergedWatch(asio::any_io_executor ex, std::vector<Site> sites, SiteValues versions)
      : state_(std::make_shared<State>(ex)) {
    state_->versions = std::move(versions);
    status = 200;
    headers.emplace_back("Content-Type", "application/json");
    for (Site& s : sites) {
      state_->answers.push_back(s.answer.get());
      asio::co_spawn(ex, read(state_, s.name, std::move(s.answer)), asio::detached);
    }
  }

  ~MergedWatch() override { abort(); }

  awaitable<SiteResult<std::optional<std::string>>> next() override {
    for (;;) {
      if (!state_->lines.empty()) {
        std::string out;
        for (std::string& line : state_->lines) {
          out += line;
        }
        state_->lines.clear();
        co_return std::optional<std::string>(std::move(out));
      }
      if (state_->ended) {
        abort();
        co_return std::optional<std::string>();
      }
      state_->wake.expires_at(asio::steady_timer::time_point::max());
      co_await state_->wake.async_wait(use_nothrow);
    }
  }

  void abort() noexcept override {
    state_->ended = true;
    for (Answer* a : state_->answers) {
      if (a != nullptr) {
        a->abort();
      }
    }
    state_->answers.clear();
    state_->wake.cancel();
  }

 private:
  struct State {
    explicit State(asio::any_io_executor ex) : wake(ex) {}
    std::deque<std::string> lines;
    SiteValues versions;
    std::vector<Answer*> answers;  // owned by the readers
    bool ended = false;
    asio::steady_timer wake;
  };

  static awaitable<void> read(std::shared_ptr<State> state, std::string site,
                              std::unique_ptr<Answer> answer) {
    std::string partial;
    while (!state->ended) {
      auto piece = co_await answer->next();
      if (!piece || !*piece) {
        break;
      }
      partial += **piece;
      std::size_t begin = 0;
      for (std::size_t nl = partial.find('\n'); nl != std::string::npos;
           nl = partial.find('\n', begin)) {
        if (nl > begin) {
          state->lines.push_back(rewrite_watch_event(
              std::string_view(partial).substr(begin, nl - begin), site, state->versions));
        }
        begin = nl + 1;
      }
      partial.erase(0, begin);
      state->wake.cancel();
    }
    std::erase(state->answers, answer.get());
    state->ended = true;
    state->wake.cancel();
  }

  std::shared_ptr<State> state_;
};

}  // namespace

struct Proxy::Impl : std::enable_shared_from_this<Impl> {
  Options options;
  Sites sites;

  // Runs `request` on `site`. Both must outlive the returned awaitable (callers await it at
  // once); send_owned is for requests spawned to run concurrently.
  awaitable<SiteResult<std::unique_ptr<Answer>>> send(const std::string& site,
                                                      const ForwardRequest& request) {
    if (site == options.site) {
      auto answer = co_await sites.local->send(request);
      if (!answer) {
        co_return SiteFailure{site + ": " + answer.error().message};
      }
      co_return answer;
    }
    if (sites.peers == nullptr) {
      co_return SiteFailure{site + ": this site has no peer channel"};
    }
    co_return co_await send_remote(*sites.peers, site, request);
  }
  awaitable<SiteResult<std::unique_ptr<Answer>>> send_owned(std::string site,
                                                            ForwardRequest request) {
    co_return co_await send(site, request);
  }

  awaitable<Outcome> fetch(std::string site, ForwardRequest request) {
    auto answer = co_await send(site, request);
    if (!answer) {
      co_return Outcome{site, std::nullopt, answer.error().message};
    }
    auto body = co_await read_body(**answer, options.max_merged_bytes);
    if (!body) {
      co_return Outcome{site, std::nullopt, site + ": " + body.error().message};
    }
    co_return Outcome{
        site, SiteAnswer{site, (*answer)->status, std::move((*answer)->headers), std::move(*body)},
        ""};
  }

  // The request as `site` runs it: composite versions and continue tokens replaced by the site's
  // own (nullopt when a continue token says the site has nothing more to list).
  static std::optional<ForwardRequest> for_site(const ForwardRequest& base, const std::string& site,
                                                const std::optional<SiteValues>& versions,
                                                const std::optional<SiteValues>& continues) {
    ForwardRequest r = base;
    if (versions) {
      auto v = versions->find(site);
      r.target = with_query_param(
          r.target, "resourceVersion",
          v != versions->end() ? std::optional<std::string_view>(v->second) : std::nullopt);
    }
    if (continues) {
      auto c = continues->find(site);
      if (c == continues->end()) {
        return std::nullopt;
      }
      r.target = with_query_param(r.target, "continue", c->second);
    }
    return r;
  }

  // Tries `site_list` in order until one answers; server errors and failures move on, and so does
  // NotFound when `skip_not_found` (a pod's logs live on the site that runs it). The last
  // error answer is returned when no site answers better.
  awaitable<std::unique_ptr<Answer>> first_answering(const std::vector<std::string>& site_list,
                                                     const ForwardRequest& request,
                                                     bool skip_not_found, RequestRecord& record) {
    std::unique_ptr<Answer> fallback;
    std::vector<std::string> failures;
    for (std::size_t i = 0; i < site_list.size(); ++i) {
      const std::string& site = site_list[i];
      ++record.fan_out;
      auto answer = co_await send(site, request);
      if (!answer) {
        failures.push_back(answer.error().message);
        record.failed.push_back(site);
        continue;
      }
      const unsigned code = (*answer)->status;
      const bool last = i + 1 == site_list.size();
      if (!last && (code >= 500 || (skip_not_found && code == 404))) {
        if (code >= 500) {
          failures.push_back(site + ": HTTP " + std::to_string(code));
          record.failed.push_back(site);
        }
        if (!fallback || code >= 500) {
          if (fallback) {
            fallback->abort();
          }
          fallback = std::move(*answer);
        } else {
          (*answer)->abort();
        }
        continue;
      }
      if (fallback) {
        fallback->abort();
      }
      record.sites.push_back(site);
      record.failed_over = !failures.empty();
      for (const std::string& f : failures) {
        (*answer)->headers.emplace_back("Warning", warning_header(f + "; answered by " + site));
      }
      co_return std::move(*answer);
    }
    if (fallback) {
      for (const std::string& f : failures) {
        fallback->headers.emplace_back("Warning", warning_header(f));
      }
      co_return fallback;
    }
    co_return unavailable(failures);
  }

  static std::unique_ptr<Answer> unavailable(const std::vector<std::string>& failures) {
    std::string message = "no site of the scope answered";
    for (std::size_t i = 0; i < failures.size(); ++i) {
      message += (i == 0 ? ": " : "; ") + failures[i];
    }
    return status_answer(status(503, "ServiceUnavailable", message));
  }

  awaitable<std::unique_ptr<Answer>> watch(const std::vector<dsl::Alternative>& alternatives,
                                           const ForwardRequest& base, RequestRecord& record) {
    std::optional<SiteValues> versions;
    if (auto rv = query_param(base.target, "resourceVersion"); rv && is_composite(*rv)) {
      auto decoded = decode_composite(*rv);
      if (!decoded) {
        co_return status_answer(kube::Status::bad_request(decoded.error()));
      }
      versions = std::move(*decoded);
    }
    std::vector<std::string> failures;
    for (std::size_t i = 0; i < alternatives.size(); ++i) {
      const std::vector<std::string> names = sites_of(alternatives[i]);
      auto self = shared_from_this();
      auto opened = co_await gather<SiteResult<std::unique_ptr<Answer>>>(
          names.size(),
          [&](std::size_t k) {
            auto request = for_site(base, names[k], versions, std::nullopt);
            return self->send_owned(names[k], std::move(*request));
          },
          [] { return SiteResult<std::unique_ptr<Answer>>(SiteFailure{"internal error"}); });
      record.fan_out += names.size();
      std::vector<MergedWatch::Site> streams;
      std::unique_ptr<Answer> error_answer;
      std::vector<std::string> alt_failures;
      for (std::size_t k = 0; k < names.size(); ++k) {
        auto& a = opened[k];
        if (!a) {
          alt_failures.push_back(a.error().message);
          record.failed.push_back(names[k]);
        } else if ((*a)->status >= 500) {
          alt_failures.push_back(names[k] + ": HTTP " + std::to_string((*a)->status));
          record.failed.push_back(names[k]);
          (*a)->abort();
        } else if ((*a)->status >= 300) {
          alt_failures.push_back(names[k] + ": HTTP " + std::to_string((*a)->status));
          if (!error_answer) {
            error_answer = std::move(*a);
          }
        } else {
          streams.push_back({names[k], std::move(*a)});
        }
      }
      failures.insert(failures.end(), alt_failures.begin(), alt_failures.end());
      const bool last = i + 1 == alternatives.size();
      if (streams.empty() && !error_answer && !last) {
        record.failed_over = true;
        continue;  // nobody answered: the next alternative
      }
      if (streams.empty()) {
        if (error_answer) {
          co_return error_answer;
        }
        co_return unavailable(failures);
      }
      std::unique_ptr<Answer> answer;
      for (auto& s : streams) {
        record.sites.push_back(s.name);
      }
      if (streams.size() == 1 && names.size() == 1) {
        answer = std::move(streams.front().answer);  // one site: its stream as it is
      } else {
        answer = std::make_unique<MergedWatch>(co_await asio::this_coro::executor,
                                               std::move(streams), versions.value_or(SiteValues{}));
      }
      for (const std::string& f : failures) {
        answer->headers.emplace_back("Warning", warning_header(f));
      }
      co_return answer;
    }
    co_return unavailable(failures);
  }

  // Reads and writes that are not streams, on every site of the first alternative that
  // answers; sites that already answered for an earlier alternative are not asked again.
  awaitable<std::unique_ptr<Answer>> fan_out(const std::vector<dsl::Alternative>& alternatives,
                                             const RequestInfo& info, const ForwardRequest& base,
                                             RequestRecord& record) {
    std::optional<SiteValues> versions;
    std::optional<SiteValues> continues;
    if (info.verb == Verb::kList) {
      for (auto [key, slot] :
           {std::pair{"resourceVersion", &versions}, std::pair{"continue", &continues}}) {
        if (auto token = query_param(base.target, key); token && is_composite(*token)) {
          auto decoded = decode_composite(*token);
          if (!decoded) {
            co_return status_answer(kube::Status::bad_request(decoded.error()));
          }
          *slot = std::move(*decoded);
        }
      }
    }
    std::map<std::string, Outcome, std::less<>> outcomes;
    const dsl::Alternative* chosen = nullptr;
    for (std::size_t i = 0; i < alternatives.size(); ++i) {
      std::vector<std::pair<std::string, ForwardRequest>> to_run;
      for (const dsl::PlannedSite& s : alternatives[i].sites) {
        if (outcomes.contains(s.name)) {
          continue;
        }
        if (auto r = for_site(base, s.name, versions, continues)) {
          to_run.emplace_back(s.name, std::move(*r));
        }
      }
      auto self = shared_from_this();
      auto results = co_await gather<Outcome>(
          to_run.size(),
          [&](std::size_t k) { return self->fetch(to_run[k].first, std::move(to_run[k].second)); },
          [] {
            return Outcome{"", std::nullopt, "internal error"};
          });
      record.fan_out += to_run.size();
      for (std::size_t k = 0; k < results.size(); ++k) {
        results[k].site = to_run[k].first;
        outcomes.emplace(to_run[k].first, std::move(results[k]));
      }
      const bool all_answered =
          std::all_of(alternatives[i].sites.begin(), alternatives[i].sites.end(),
                      [&](const dsl::PlannedSite& s) {
                        auto it = outcomes.find(s.name);
                        return it == outcomes.end() || !it->second.failed();  // end: nothing left
                      });
      if (all_answered || i + 1 == alternatives.size()) {
        chosen = &alternatives[i];
        break;
      }
      record.failed_over = true;
    }
    std::vector<std::string> warnings;
    for (const auto& [site, outcome] : outcomes) {
      if (outcome.failed()) {
        warnings.push_back(outcome.why());
        record.failed.push_back(site);
      }
    }
    std::vector<SiteAnswer> answers;
    const SiteAnswer* server_error = nullptr;
    for (const dsl::PlannedSite& s : chosen->sites) {
      auto it = outcomes.find(s.name);
      if (it == outcomes.end() || !it->second.answer) {
        continue;
      }
      if (it->second.failed()) {
        server_error = server_error != nullptr ? server_error : &*it->second.answer;
        continue;
      }
      answers.push_back(*it->second.answer);
      record.sites.push_back(s.name);
    }
    Headers headers;
    auto finish = [&](std::unique_ptr<Answer> answer) {
      for (const std::string& w : warnings) {
        answer->headers.emplace_back("Warning", warning_header(w));
      }
      return answer;
    };
    if (answers.empty()) {
      if (server_error != nullptr) {
        co_return finish(
            complete_answer(server_error->status, server_error->headers, server_error->body));
      }
      if (info.verb == Verb::kList && continues) {  // every site had listed everything
        co_return finish(complete_answer(200, {{"Content-Type", "application/json"}},
                                         R"({"kind":"List","apiVersion":"v1","items":[]})"));
      }
      co_return unavailable(warnings);
    }
    if (chosen->sites.size() == 1) {  // one site: its answer as it is
      const SiteAnswer& a = answers.front();
      co_return finish(complete_answer(a.status, a.headers, a.body));
    }
    // Several answers: the successful ones merged, the others reported.
    std::vector<SiteAnswer> ok;
    for (const SiteAnswer& a : answers) {
      if (a.ok()) {
        ok.push_back(a);
      } else {
        warnings.push_back(a.site + ": " + status_message(a));
      }
    }
    if (ok.empty()) {
      const SiteAnswer& a = answers.front();
      co_return finish(complete_answer(a.status, a.headers, a.body));
    }
    Merged merged;
    if (info.verb == Verb::kList) {
      merged = merge_lists(ok, warnings);
    } else if (info.verb == Verb::kGet) {
      merged = merge_gets(ok, warnings);
    } else {
      // A write done on every site: the first site's object, saying whose it is.
      const SiteAnswer& a = ok.front();
      if (info.verb == Verb::kCreate && sites.created_together && !info.namespace_.empty()) {
        shared_by(info, a.body, *chosen);
      }
      Headers h = a.headers;
      co_return finish(complete_answer(a.status, std::move(h), annotate_object(a.body, a.site)));
    }
    co_return finish(complete_answer(merged.status, {{"Content-Type", merged.content_type}},
                                     std::move(merged.body)));
  }

  // An object created on several sites becomes shared by all of them (those that did not
  // answer get it when they are back).
  void shared_by(const RequestInfo& info, const std::string& created,
                 const dsl::Alternative& where) const {
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(created, ec);
    const boost::json::value* meta =
        !ec && v.is_object() ? v.as_object().if_contains("metadata") : nullptr;
    const boost::json::value* name =
        meta != nullptr && meta->is_object() ? meta->as_object().if_contains("name") : nullptr;
    if (name == nullptr || !name->is_string()) {
      return;
    }
    std::vector<std::string> names;
    for (const dsl::PlannedSite& s : where.sites) {
      names.push_back(s.name);
    }
    sites.created_together(info.resource, info.namespace_, std::string(name->as_string()), names);
  }

  // Where and how a request runs, decided before anything runs.
  struct Plan {
    RequestInfo info;
    std::vector<dsl::Alternative> alternatives;
    std::vector<std::string> sites;  // every site the alternatives may touch, in order
    ForwardRequest base;
  };

  // The plan for `request`, or the answer that refuses it (401, 400, 403). Not a coroutine:
  // its locals would all live in the request's coroutine frame.
  std::variant<Plan, std::unique_ptr<Answer>> plan(ClientRequest& request,
                                                   RequestRecord& record) const {
    record.verb = "other";  // until the request is classified
    // Who asks.
    const ClientToken* token = nullptr;
    if (!options.tokens.empty()) {
      const std::string_view auth = request.header("Authorization");
      constexpr std::string_view kBearer = "Bearer ";
      if (auth.starts_with(kBearer)) {
        const std::string_view presented = auth.substr(kBearer.size());
        for (const ClientToken& t : options.tokens) {
          if (t.token == presented) {
            token = &t;
            break;
          }
        }
      }
      if (token == nullptr) {
        record.verb = "unauthorized";
        return status_answer(status(401, "Unauthorized", "Unauthorized"));
      }
      record.user = token->user;
    }

    // Where to run it.
    std::string target = request.target;
    ScopeText scope;
    if (const std::string_view h = request.header(kScopeHeader); !h.empty()) {
      scope = {std::string(h), ScopeSource::kHeader};
    }
    auto prefixed = take_path_scope(target);
    if (!prefixed) {
      return status_answer(kube::Status::bad_request(prefixed.error()));
    }
    if (scope.source == ScopeSource::kNone && *prefixed) {
      scope = {std::move(**prefixed), ScopeSource::kPathPrefix};
    }
    const std::string_view path = std::string_view(target).substr(0, target.find('?'));
    const auto watch_param = query_param(target, "watch");
    RequestInfo info = classify(request.method, path,
                                watch_param && (*watch_param == "1" || *watch_param == "true"));
    if (scope.source == ScopeSource::kNone &&
        (info.verb == Verb::kCreate || info.verb == Verb::kUpdate || info.verb == Verb::kPatch)) {
      if (auto annotated = annotation_scope(request.body)) {
        scope = {std::move(*annotated), ScopeSource::kAnnotation};
      }
    }
    record.verb = info.is_resource() ? to_string(info.verb) : "discovery";

    std::vector<dsl::Alternative> alternatives;
    if (scope.source == ScopeSource::kNone) {
      alternatives.emplace_back().sites.push_back({options.site, true, true});
    } else {
      auto parsed = dsl::parse_scope(scope.text);
      const dsl::SiteView view = sites.view();
      std::optional<std::string> error;
      if (!parsed) {
        error = parsed.error().render();
      } else if (auto plan = dsl::evaluate(*parsed, view, {info.resource, info.group}); !plan) {
        error = plan.error().render();
      } else {
        alternatives.assign(plan->alternatives.begin(), plan->alternatives.end());
      }
      if (error && info.is_resource()) {
        return status_answer(kube::Status::bad_request("invalid scope: " + *error));
      }
      if (error) {
        // Discovery is the same on every site: answered here, so that kubectl gets as far as
        // the resource request, whose answer shows the user what is wrong with the scope.
        alternatives.emplace_back().sites.push_back({options.site, true, true});
      }
    }
    // Every site the plan may touch, in order of first appearance.
    std::vector<std::string> all_sites;
    for (const dsl::Alternative& alt : alternatives) {
      for (const dsl::PlannedSite& s : alt.sites) {
        if (std::find(all_sites.begin(), all_sites.end(), s.name) == all_sites.end()) {
          all_sites.push_back(s.name);
        }
      }
    }
    if (token != nullptr && !token->sites.empty()) {
      auto allowed = [&](const std::string& site) {
        return std::find(token->sites.begin(), token->sites.end(), site) != token->sites.end();
      };
      if (info.is_resource()) {
        for (const std::string& s : all_sites) {
          if (!allowed(s)) {
            return status_answer(
                status(403, "Forbidden",
                       "user \"" + token->user + "\" may not run requests on site \"" + s + "\""));
          }
        }
      } else {
        // Discovery comes from a site the user may reach, so that kubectl gets as far as the
        // resource request, whose answer says which site is refused.
        std::erase_if(all_sites, [&](const std::string& s) { return !allowed(s); });
        if (all_sites.empty()) {
          all_sites.push_back(token->sites.front());
        }
      }
    }

    std::variant<Plan, std::unique_ptr<Answer>> planned(std::in_place_type<Plan>);
    Plan& plan = std::get<Plan>(planned);
    plan.info = std::move(info);
    plan.alternatives = std::move(alternatives);
    plan.sites = std::move(all_sites);
    ForwardRequest& base = plan.base;
    base.method = request.method;
    base.target = std::move(target);
    for (const auto& [name, value] : request.headers) {
      if (forwarded_request_header(name)) {
        base.headers.emplace_back(name, value);
      }
    }
    base.body = std::move(request.body);
    base.timeout = is_streaming(plan.info, base.target) ? std::chrono::milliseconds(0)
                                                        : options.request_timeout;
    return planned;
  }

  // Started by Proxy::serve while the Proxy holds this; holds it until the request is done.
  awaitable<std::unique_ptr<Answer>> serve(ClientRequest& request, RequestRecord& record) {
    const std::shared_ptr<Impl> self = shared_from_this();
    std::unique_ptr<Answer> answer;
    auto planned = plan(request, record);
    if (auto* refused = std::get_if<std::unique_ptr<Answer>>(&planned)) {
      answer = std::move(*refused);
    } else {
      answer = co_await run(std::get<Plan>(planned), record);
    }
    record.code = answer->status;
    co_return answer;
  }

  awaitable<std::unique_ptr<Answer>> run(const Plan& p, RequestRecord& record) {
    // Discovery and subresources such as logs: the first site that answers.
    const bool object_itself = p.info.subresource.empty() || p.info.subresource == "status";
    if (!p.info.is_resource() || !object_itself) {
      return first_answering(p.sites, p.base, p.info.is_resource(), record);
    }
    if (p.info.verb == Verb::kWatch) {
      return watch(p.alternatives, p.base, record);
    }
    // Alternatives of one site each ('|', or no scope): the first site that answers, its
    // answer streamed through unchanged.
    if (std::all_of(p.alternatives.begin(), p.alternatives.end(),
                    [](const dsl::Alternative& a) { return a.sites.size() == 1; })) {
      return first_answering(p.sites, p.base, false, record);
    }
    return fan_out(p.alternatives, p.info, p.base, record);
  }
};

Proxy::Proxy(Options options, Sites sites) : impl_(std::make_shared<Impl>()) {
  impl_->options = std::move(options);
  impl_->sites = std::move(sites);
}

awaitable<std::unique_ptr<Answer>> Proxy::serve(ClientRequest& request, RequestRecord& record) {
  return impl_->serve(request, record);
}

}  // namespace archipel::proxy
