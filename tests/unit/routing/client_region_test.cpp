#include "switchyard/routing/client_region.h"

#include <gtest/gtest.h>

namespace switchyard::routing {
namespace {

config::Listener listener() {
  config::Listener l;
  l.local_region = "us-east";
  l.trusted_proxies.push_back(*Cidr::parse("10.0.0.0/8"));
  auto add = [&](const char* cidr, const char* region) {
    config::RegionMapEntry e;
    e.cidr_text = cidr;
    e.cidr = *Cidr::parse(cidr);
    e.region = region;
    l.region_map.push_back(e);
  };
  add("192.168.0.0/16", "eu-west");
  add("192.168.7.0/24", "eu-central");  // more specific wins
  add("fd00::/8", "ap-south");
  return l;
}

IpAddress ip(const char* s) { return *IpAddress::parse(s); }

// A trusted peer's header is believed; an untrusted one's never is.
TEST(ClientRegion, HeaderOnlyFromTrustedPeers) {
  auto l = listener();
  EXPECT_TRUE(peer_trusted(l, ip("10.1.2.3")));
  EXPECT_FALSE(peer_trusted(l, ip("192.168.1.1")));
  EXPECT_EQ(client_region(l, "ap-south", true, ip("10.1.2.3")), "ap-south");
  EXPECT_EQ(client_region(l, "ap-south", false, ip("192.168.1.1")), "eu-west");
  EXPECT_EQ(client_region(l, "", true, ip("10.1.2.3")), "us-east");
}

// region_map is a longest-prefix match, IPv4 and IPv6; no match gives local_region.
TEST(ClientRegion, LongestPrefixThenLocal) {
  auto l = listener();
  EXPECT_EQ(client_region(l, "", false, ip("192.168.7.9")), "eu-central");
  EXPECT_EQ(client_region(l, "", false, ip("192.168.8.9")), "eu-west");
  EXPECT_EQ(client_region(l, "", false, ip("fd12::1")), "ap-south");
  EXPECT_EQ(client_region(l, "", false, ip("8.8.8.8")), "us-east");
}

}  // namespace
}  // namespace switchyard::routing
