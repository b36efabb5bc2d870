#include "switchyard/routing/router.h"

#include "switchyard/common/ascii.h"

namespace switchyard::routing {
namespace {

bool host_matches(std::string_view host, std::string_view pattern) {
  if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
    std::string_view suffix = pattern.substr(1);  // ".example.com"
    return host.size() > suffix.size() && iequals(host.substr(host.size() - suffix.size()), suffix);
  }
  return iequals(host, pattern);
}

std::string_view strip_port(std::string_view authority) {
  if (!authority.empty() && authority.front() == '[') {  // [v6]:port
    auto close = authority.find(']');
    return close == std::string_view::npos ? authority : authority.substr(0, close + 1);
  }
  auto colon = authority.rfind(':');
  return colon == std::string_view::npos ? authority : authority.substr(0, colon);
}

}  // namespace

Target parse_target(std::string_view target, std::string_view host_header) {
  Target t;
  if (!target.empty() && target.front() == '/') {
    t.authority = host_header;
    t.host = strip_port(host_header);
    t.path = target.substr(0, target.find('?'));
    t.origin = target;
    return t;
  }
  // absolute-form: scheme "://" authority [path] ["?" query]
  auto scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos) {
    t.valid = target == "*";  // asterisk-form (OPTIONS *)
    t.authority = host_header;
    t.host = strip_port(host_header);
    t.path = target;
    t.origin = target;
    return t;
  }
  std::string_view scheme = target.substr(0, scheme_end);
  std::string_view rest = target.substr(scheme_end + 3);
  auto path_start = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, path_start);
  // http(s) only; userinfo is an error (RFC 9110 §4.2.4), and an empty authority names nobody.
  t.valid = (iequals(scheme, "http") || iequals(scheme, "https")) && !authority.empty() &&
            authority.find('@') == std::string_view::npos;
  t.absolute = true;
  t.authority = authority;
  t.host = strip_port(authority);
  if (path_start == std::string_view::npos) {
    t.path = "/";
    t.origin = "/";
  } else if (rest[path_start] == '?') {
    t.path = "/";
    t.origin = rest.substr(path_start);
    t.origin_needs_slash = true;
  } else {
    std::string_view p = rest.substr(path_start);
    t.path = p.substr(0, p.find('?'));
    t.origin = p;
  }
  return t;
}

// A URI SAN pattern: exact, or a prefix when it ends in '*'.
static bool san_matches(const std::string& pattern, std::span<const std::string> uris) {
  const bool prefix = !pattern.empty() && pattern.back() == '*';
  const std::string_view want =
      prefix ? std::string_view(pattern).substr(0, pattern.size() - 1) : std::string_view(pattern);
  for (const auto& uri : uris) {
    if (prefix ? std::string_view(uri).substr(0, want.size()) == want : uri == want) return true;
  }
  return false;
}

const config::Route* Router::match(std::string_view host, std::string_view path,
                                   std::span<const std::string> client_uris) const {
  for (const auto& route : listener_->routes) {
    if (route.host && !host_matches(host, *route.host)) continue;
    if (route.client_san && !san_matches(*route.client_san, client_uris)) continue;
    if (route.path_prefix && path.substr(0, route.path_prefix->size()) != *route.path_prefix) {
      continue;
    }
    return &route;
  }
  return nullptr;
}

}  // namespace switchyard::routing
