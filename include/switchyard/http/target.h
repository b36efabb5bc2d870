#pragma once

// The request-target forms of RFC 9112 §3.2, as routing and forwarding see them. No I/O.

#include <string_view>

namespace switchyard::http {

// The parts of a request target that routing and forwarding look at. Origin-form ("/a?b"),
// absolute-form ("http://host:80/a?b": the authority replaces Host, RFC 9112 §3.2.2) and
// asterisk-form ("*") are accepted; anything else (authority-form, other schemes, userinfo in
// the authority, RFC 9110 §4.2.4) is invalid.
struct RequestTarget {
  std::string_view host;            // without port, as sent (case preserved)
  std::string_view path;            // without query; "/" when an absolute-form target has no path
  std::string_view authority;       // Host as sent, or the absolute-form authority (with port)
  std::string_view origin;          // what to forward: the origin-form target, or "*"
  bool origin_needs_slash = false;  // absolute-form "http://h?q": forward "/" + origin
  bool absolute = false;            // the authority came from the target
  bool valid = true;
};

// Splits a request target; host_header is the Host field, used for origin-form targets.
RequestTarget parse_target(std::string_view target, std::string_view host_header);

}  // namespace switchyard::http
