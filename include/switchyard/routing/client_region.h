#pragma once

#include <string_view>

#include "switchyard/common/net.h"
#include "switchyard/config/config.h"

namespace switchyard::routing {

// True if the peer is in the listener's trusted_proxies.
bool peer_trusted(const config::Listener& listener, const IpAddress& peer);

// The region_map entry with the longest prefix containing the peer, or nullptr.
const config::RegionMapEntry* region_map_entry(const config::Listener& listener,
                                               const IpAddress& peer);

// The client's region (DESIGN.md, Headers): the region header's value if the peer is trusted
// and sent one; else the longest region_map prefix containing the peer's address; else the
// listener's local_region. An untrusted client's header is never believed. Pure; any thread.
std::string_view client_region(const config::Listener& listener, std::string_view header_value,
                               bool trusted, const IpAddress& peer);

// The client's zone (extension, README): the zone header's value if the peer is trusted and
// sent one; else the listener's local_zone (may be empty: no zone preference).
std::string_view client_zone(const config::Listener& listener, std::string_view header_value,
                             bool trusted);

}  // namespace switchyard::routing
