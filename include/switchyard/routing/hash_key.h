#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "switchyard/config/config.h"

namespace switchyard::routing {

// What a hash key can be taken from, gathered by the session from the request.
struct HashKeyInputs {
  std::string_view target;         // request target as sent (its query is searched)
  std::string_view path;           // the path, without query (routing::parse_target)
  std::string_view header;         // the value of hash.key's header (source header)
  std::string_view cookie;         // the Cookie header (source cookie)
  std::string_view client_ip;      // the real peer
  std::string_view forwarded_for;  // X-Forwarded-For as received, only if the peer is trusted
};

// The request's hash key per `hash.key`, or nullopt when the request has none (an absent or
// empty header, cookie or query parameter). client_ip is the last X-Forwarded-For hop when the
// peer is a trusted proxy (the address that proxy saw), else the peer itself. Pure function.
std::optional<std::string_view> hash_key(const config::HashKey& key, const HashKeyInputs& in);

}  // namespace switchyard::routing
