#include "switchyard/common/net.h"

#include <gtest/gtest.h>

namespace switchyard {
namespace {

// host:port and [v6]:port parse; the port range is enforced; port 0 only where allowed.
TEST(HostPort, ParsesIpv4AndIpv6) {
  std::string why;
  auto v4 = parse_host_port("127.0.0.1:8080", false, &why);
  ASSERT_TRUE(v4) << why;
  EXPECT_EQ(v4->to_string(), "127.0.0.1:8080");
  auto v6 = parse_host_port("[::1]:9000", false, &why);
  ASSERT_TRUE(v6) << why;
  EXPECT_EQ(v6->to_string(), "[::1]:9000");
  EXPECT_TRUE(v6->is_v6());
  EXPECT_TRUE(parse_host_port("127.0.0.1:0", true, &why));
}

TEST(HostPort, RejectsMalformed) {
  std::string why;
  for (const char* bad : {"127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:65536", "127.0.0.1:0",
                          "::1:80", "[::1]80", "127.0.0.1:8o"}) {
    EXPECT_FALSE(parse_host_port(bad, false, &why)) << bad;
    EXPECT_FALSE(why.empty());
  }
}

// CIDR containment works for v4 (mapped) and v6 and clears host bits.
TEST(Cidr, Contains) {
  auto net = Cidr::parse("10.1.2.3/16");
  ASSERT_TRUE(net);
  EXPECT_TRUE(net->contains(*IpAddress::parse("10.1.200.7")));
  EXPECT_FALSE(net->contains(*IpAddress::parse("10.2.0.1")));
  EXPECT_FALSE(net->contains(*IpAddress::parse("::1")));
  auto v6 = Cidr::parse("fd00::/8");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains(*IpAddress::parse("fd12::5")));
  EXPECT_FALSE(v6->contains(*IpAddress::parse("fe80::1")));
  auto host = Cidr::parse("127.0.0.1");
  ASSERT_TRUE(host);
  EXPECT_TRUE(host->contains(*IpAddress::parse("127.0.0.1")));
  EXPECT_FALSE(host->contains(*IpAddress::parse("127.0.0.2")));
  EXPECT_TRUE(Cidr::parse("0.0.0.0/0")->contains(*IpAddress::parse("8.8.8.8")));
}

TEST(Cidr, RejectsMalformed) {
  for (const char* bad : {"10.0.0.0/33", "10.0.0.0/", "10.0.0/8", "::1/129", "x/8", ""}) {
    EXPECT_FALSE(Cidr::parse(bad)) << bad;
  }
}

}  // namespace
}  // namespace switchyard
