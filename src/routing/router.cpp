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

}  // namespace

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
