#include "switchyard/routing/client_region.h"

namespace switchyard::routing {

bool peer_trusted(const config::Listener& listener, const IpAddress& peer) {
  for (const auto& cidr : listener.trusted_proxies) {
    if (cidr.contains(peer)) return true;
  }
  return false;
}

const config::RegionMapEntry* region_map_entry(const config::Listener& listener,
                                               const IpAddress& peer) {
  const config::RegionMapEntry* best = nullptr;
  for (const auto& entry : listener.region_map) {
    if (entry.cidr.contains(peer) && (!best || entry.cidr.prefix_bits > best->cidr.prefix_bits)) {
      best = &entry;
    }
  }
  return best;
}

std::string_view client_region(const config::Listener& listener, std::string_view header_value,
                               bool trusted, const IpAddress& peer) {
  if (trusted && !header_value.empty()) return header_value;
  const config::RegionMapEntry* best = region_map_entry(listener, peer);
  return best ? std::string_view(best->region) : std::string_view(listener.local_region);
}

std::string_view client_zone(const config::Listener& listener, std::string_view header_value,
                             bool trusted) {
  if (trusted && !header_value.empty()) return header_value;
  return listener.local_zone;
}

}  // namespace switchyard::routing
