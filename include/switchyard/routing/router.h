#pragma once

#include <string_view>

#include "switchyard/config/config.h"

namespace switchyard::routing {

// The parts of a request target that routing looks at. Origin-form ("/a?b") and absolute-form
// ("http://host:80/a?b") are both accepted; for absolute-form the authority replaces Host
// (RFC 9112 §3.2.2).
struct Target {
  std::string_view host;  // without port, as sent (case preserved)
  std::string_view path;  // without query; "/" when an absolute-form target has no path
  bool valid = true;
};

// Splits a request target; host_header is the Host field, used for origin-form targets.
Target parse_target(std::string_view target, std::string_view host_header);

// A listener's routes, first match wins. Immutable; any thread.
class Router {
 public:
  explicit Router(const config::Listener& listener) : listener_(&listener) {}

  // Host is compared case-insensitively, without port; "*.example.com" matches any subdomain
  // (not example.com itself). path_prefix is a plain byte prefix of the path.
  const config::Route* match(std::string_view host, std::string_view path) const;

 private:
  const config::Listener* listener_;
};

}  // namespace switchyard::routing
