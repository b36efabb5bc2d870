#pragma once

#include <span>
#include <string>
#include <string_view>

#include "switchyard/config/config.h"

namespace switchyard::routing {

// The parts of a request target that routing and forwarding look at. Origin-form ("/a?b"),
// absolute-form ("http://host:80/a?b": the authority replaces Host, RFC 9112 §3.2.2) and
// asterisk-form ("*") are accepted; anything else (authority-form, other schemes, userinfo in
// the authority, RFC 9110 §4.2.4) is invalid.
struct Target {
  std::string_view host;            // without port, as sent (case preserved)
  std::string_view path;            // without query; "/" when an absolute-form target has no path
  std::string_view authority;       // Host as sent, or the absolute-form authority (with port)
  std::string_view origin;          // what to forward: the origin-form target, or "*"
  bool origin_needs_slash = false;  // absolute-form "http://h?q": forward "/" + origin
  bool absolute = false;            // the authority came from the target
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
  // client_uris: the URI SANs of the client's verified certificate (TLS listeners with client
  // certificates); a route with match.client_san needs one of them to match.
  const config::Route* match(std::string_view host, std::string_view path,
                             std::span<const std::string> client_uris = {}) const;

 private:
  const config::Listener* listener_;
};

}  // namespace switchyard::routing
