#pragma once

// TLS contexts set up the same way everywhere: servers (the front door, the embedded cluster)
// from a PEM certificate chain and key, TLS 1.2 and later.

#include <boost/asio/ssl/context.hpp>
#include <boost/system/result.hpp>

#include <memory>
#include <string>

namespace archipel::net {

/// A server context with `cert_file` and `key_file`, or a message naming both files and why
/// they cannot be used.
[[nodiscard]] boost::system::result<std::unique_ptr<boost::asio::ssl::context>, std::string>
server_tls_context(const std::string& cert_file, const std::string& key_file);

}  // namespace archipel::net
