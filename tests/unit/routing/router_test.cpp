#include "switchyard/routing/router.h"

#include <gtest/gtest.h>

namespace switchyard::routing {
namespace {

config::Listener listener() {
  config::Listener l;
  auto route = [](std::optional<std::string> host, std::optional<std::string> prefix,
                  std::string cluster) {
    config::Route r;
    r.host = std::move(host);
    r.path_prefix = std::move(prefix);
    r.cluster = std::move(cluster);
    return r;
  };
  l.routes.push_back(route("api.example.com", "/v1/", "api-v1"));
  l.routes.push_back(route("*.example.com", std::nullopt, "wild"));
  l.routes.push_back(route(std::nullopt, "/static/", "static"));
  l.routes.push_back(route(std::nullopt, std::nullopt, "default"));
  return l;
}

std::string match(const Router& r, std::string_view target, std::string_view host) {
  auto t = http::parse_target(target, host);
  const auto* route = r.match(t.host, t.path);
  return route ? route->cluster : "none";
}

// First match wins; host is case-insensitive and ignores the port; wildcards match
// subdomains only; the query is not part of the path.
TEST(Router, FirstMatchWins) {
  auto l = listener();
  Router r(l);
  EXPECT_EQ(match(r, "/v1/users?x=/static/", "API.Example.com:8443"), "api-v1");
  EXPECT_EQ(match(r, "/v2/users", "api.example.com"), "wild");
  EXPECT_EQ(match(r, "/static/app.js", "www.example.com"), "wild");
  EXPECT_EQ(match(r, "/static/app.js", "example.com"), "static");
  EXPECT_EQ(match(r, "/v1", "api.example.com"), "wild");  // prefix is /v1/, not /v1
  EXPECT_EQ(match(r, "/", ""), "default");
}

TEST(Router, NoRouteWhenNothingMatches) {
  config::Listener l;
  config::Route only;
  only.path_prefix = "/only/";
  l.routes.push_back(only);
  Router r(l);
  auto t = http::parse_target("/other", "x");
  EXPECT_EQ(r.match(t.host, t.path), nullptr);
}

// Absolute-form targets take the host from the target (RFC 9112 §3.2.2).
TEST(Target, AbsoluteForm) {
  auto t = http::parse_target("http://API.example.com:80/v1/x?y=1", "ignored.org");
  EXPECT_EQ(t.host, "API.example.com");
  EXPECT_EQ(t.path, "/v1/x");
  auto bare = http::parse_target("http://example.com", "");
  EXPECT_EQ(bare.host, "example.com");
  EXPECT_EQ(bare.path, "/");
  auto v6 = http::parse_target("/", "[::1]:8080");
  EXPECT_EQ(v6.host, "[::1]");
  EXPECT_FALSE(http::parse_target("garbage", "x").valid);
  EXPECT_TRUE(http::parse_target("*", "x").valid);
}

}  // namespace
}  // namespace switchyard::routing
