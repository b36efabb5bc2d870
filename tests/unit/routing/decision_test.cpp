#include "switchyard/routing/decision.h"

#include <gtest/gtest.h>

#include "switchyard/http/http1_parser.h"

namespace switchyard::routing {
namespace {

struct Fixture {
  Fixture() {
    config::Route api;
    api.path_prefix = "/api/";
    api.cluster = "api";
    api.cluster_index = 1;
    listener.routes.push_back(api);
    listener.local_region = "us-east";
    listener.trusted_proxies.push_back(*Cidr::parse("10.0.0.0/8"));
    locality.client_region_header = "X-Client-Region";
    key.source = config::HashKeySource::kHeader;
    key.name = "X-User";
  }

  RequestSource source(std::string_view ip) {
    RequestSource s;
    s.listener = &listener;
    s.router = &router;
    s.client_ip = ip;
    s.client_addr = *IpAddress::parse(ip);
    return s;
  }

  http::RequestHead parse(const std::string& text) {
    text_ = text;
    parser.start(16384, std::nullopt);
    http::RequestHead h;
    EXPECT_EQ(parser.parse_head(text_, h), http::http1::ParseStatus::kOk) << text;
    return h;
  }

  config::Listener listener;
  Router router{listener};
  config::Locality locality;
  config::HashKey key;
  http::http1::RequestParser parser;
  std::string text_;
};

// An invalid target is a 400 that closes; no route is a 404 that closes only when a body
// would follow unread.
TEST(Decision, RouteOrStatus) {
  Fixture f;
  Decision d;
  auto src = f.source("127.0.0.1");
  auto head = f.parse("GET /api/x?y=1 HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_TRUE(route(src, head, d));
  EXPECT_EQ(d.cluster_index, 1u);
  EXPECT_EQ(d.target.path, "/api/x");
  EXPECT_FALSE(d.peer_trusted);

  auto none = f.parse("GET /other HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_FALSE(route(src, none, d));
  EXPECT_EQ(d.status, 404u);
  EXPECT_FALSE(d.close);
  src.has_body = true;
  EXPECT_FALSE(route(src, none, d));
  EXPECT_TRUE(d.close);

  auto bad = f.parse("GET ftp://h/api/ HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_FALSE(route(src, bad, d));
  EXPECT_EQ(d.status, 400u);
  EXPECT_TRUE(d.close);
}

// The region header is believed from a trusted peer only; an untrusted one gets the listener's
// local region. The hash key is copied into the caller's storage.
TEST(Decision, RegionAndKey) {
  Fixture f;
  ClusterNeeds needs;
  needs.locality = &f.locality;
  needs.hash_key = &f.key;
  std::string storage;
  auto head =
      f.parse("GET /api/ HTTP/1.1\r\nHost: h\r\nX-Client-Region: eu-west\r\nX-User: u7\r\n\r\n");
  for (auto [ip, region] : {std::pair{"10.1.2.3", "eu-west"}, std::pair{"192.0.2.1", "us-east"}}) {
    auto src = f.source(ip);
    Decision d;
    ASSERT_TRUE(route(src, head, d));
    ASSERT_TRUE(place(src, head, needs, storage, d));
    EXPECT_EQ(d.client_region, region) << ip;
    EXPECT_TRUE(d.has_hash_key);
    EXPECT_EQ(d.hash_key, "u7");
    EXPECT_EQ(d.hash_key.data(), storage.data());
  }
}

// A missing key is a 400 only where the cluster rejects such requests; otherwise the pick
// goes on without one.
TEST(Decision, MissingKey) {
  Fixture f;
  ClusterNeeds needs;
  needs.hash_key = &f.key;
  std::string storage = "old";
  auto head = f.parse("GET /api/ HTTP/1.1\r\nHost: h\r\n\r\n");
  auto src = f.source("127.0.0.1");
  Decision d;
  ASSERT_TRUE(route(src, head, d));
  EXPECT_TRUE(place(src, head, needs, storage, d));
  EXPECT_FALSE(d.has_hash_key);
  EXPECT_TRUE(storage.empty());
  needs.reject_missing_key = true;
  EXPECT_FALSE(place(src, head, needs, storage, d));
  EXPECT_EQ(d.status, 400u);
  EXPECT_TRUE(d.client_region.empty());  // no locality block
}

}  // namespace
}  // namespace switchyard::routing
