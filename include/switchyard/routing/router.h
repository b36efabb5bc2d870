#pragma once

#include <span>
#include <string>
#include <string_view>

#include "switchyard/config/config.h"
#include "switchyard/http/target.h"

namespace switchyard::routing {

// A listener's routes, first match wins. Immutable; any thread.
class Router {
 public:
  explicit Router(const config::Listener& listener) : listener_(&listener) {}

  // Host is compared case-insensitively, without port; "*.example.com" matches any subdomain
  // (not example.com itself). path_prefix is a plain byte prefix of the path.
  // client_uris: the URI SANs of the client's verified certificate (TLS listeners with client
  // certificates); a route with match.client_san needs one of them to match.
  const config::Route* match(std::string_view host, std::string_view path,
                             std::span<const std::string> client_uris = {}) const;

 private:
  const config::Listener* listener_;
};

}  // namespace switchyard::routing
