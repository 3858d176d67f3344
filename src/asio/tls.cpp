#include "asio/tls.hpp"

namespace archipel::net {

boost::system::result<std::unique_ptr<boost::asio::ssl::context>, std::string> server_tls_context(
    const std::string& cert_file, const std::string& key_file) {
  namespace ssl = boost::asio::ssl;
  auto context = std::make_unique<ssl::context>(ssl::context::tls_server);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  boost::system::error_code ec;
  context->use_certificate_chain_file(cert_file, ec);
  if (!ec) {
    context->use_private_key_file(key_file, ssl::context::pem, ec);
  }
  if (ec) {
    return boost::system::result<std::unique_ptr<ssl::context>, std::string>(
        boost::system::in_place_error, "cannot load the TLS certificate " + cert_file + " / key " +
                                           key_file + ": " + ec.message());
  }
  return context;
}

}  // namespace archipel::net
