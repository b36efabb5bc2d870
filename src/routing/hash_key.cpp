#include "switchyard/routing/hash_key.h"

#include "switchyard/common/ascii.h"

namespace switchyard::routing {
namespace {

// The value of `name` in a list of `sep`-separated name=value items, if present and non-empty.
std::optional<std::string_view> find_item(std::string_view list, char sep, std::string_view name) {
  while (!list.empty()) {
    size_t end = list.find(sep);
    std::string_view item = trim_ows(list.substr(0, end));
    size_t eq = item.find('=');
    if (eq != std::string_view::npos && item.substr(0, eq) == name) {
      std::string_view value = item.substr(eq + 1);
      if (value.empty()) return std::nullopt;
      return value;
    }
    if (end == std::string_view::npos) break;
    list.remove_prefix(end + 1);
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string_view> hash_key(const config::HashKey& key, const HashKeyInputs& in) {
  switch (key.source) {
    case config::HashKeySource::kHeader:
      if (in.header.empty()) return std::nullopt;
      return in.header;
    case config::HashKeySource::kCookie:
      return find_item(in.cookie, ';', key.name);
    case config::HashKeySource::kQuery: {
      size_t q = in.target.find('?');
      if (q == std::string_view::npos) return std::nullopt;
      return find_item(in.target.substr(q + 1), '&', key.name);
    }
    case config::HashKeySource::kPath:
      return in.path;
    case config::HashKeySource::kClientIp: {
      if (!in.forwarded_for.empty()) {
        size_t comma = in.forwarded_for.rfind(',');
        std::string_view hop =
            trim_ows(comma == std::string_view::npos ? in.forwarded_for
                                                     : in.forwarded_for.substr(comma + 1));
        if (!hop.empty()) return hop;
      }
      return in.client_ip;
    }
  }
  return std::nullopt;
}

}  // namespace switchyard::routing
