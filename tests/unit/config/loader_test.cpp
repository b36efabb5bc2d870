#include "switchyard/config/loader.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "balancer/load_model.h"
#include "balancer/policies/consistent_hash/hash_config.h"
#include "switchyard/balancer/policy.h"

namespace switchyard::config {
namespace {

constexpr const char* kMinimal = R"(listeners:
  - name: in
    listen: 127.0.0.1:8080
    routes:
      - cluster: app
clusters:
  - name: app
    endpoints:
      - address: 127.0.0.1:9001
)";

LoadResult load(const std::string& yaml) {
  return load_string(yaml, "test.yaml", balancer::schema());
}

// Asserts exactly one error, at line:col, under key path, containing text.
void expect_one_error(const std::string& yaml, int line, int col, const std::string& path,
                      const std::string& text) {
  auto r = load(yaml);
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.errors.size(), 1u) << [&] {
    std::string all;
    for (const auto& e : r.errors) all += e.to_string() + "\n";
    return all;
  }();
  const auto& e = r.errors[0];
  EXPECT_EQ(e.line, line) << e.to_string();
  EXPECT_EQ(e.column, col) << e.to_string();
  EXPECT_EQ(e.path, path) << e.to_string();
  EXPECT_NE(e.message.find(text), std::string::npos) << e.to_string();
  EXPECT_EQ(
      e.to_string().rfind(
          "test.yaml:" + std::to_string(line) + ":" + std::to_string(col) + ": " + path + ": ", 0),
      0u);
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return s.replace(pos, from.size(), to);
}

// A minimal file loads and every omitted key takes its documented default.
TEST(Loader, MinimalConfigGetsDefaults) {
  auto r = load(kMinimal);
  ASSERT_TRUE(r.ok()) << r.errors[0].to_string();
  const auto& c = *r.config;
  EXPECT_GE(c.workers, 1u);
  EXPECT_EQ(c.drain_timeout, Duration(15000));
  EXPECT_EQ(c.admin.listen.to_string(), "127.0.0.1:9901");
  EXPECT_TRUE(c.access_log.enabled);
  const auto& l = c.listeners[0];
  EXPECT_EQ(l.limits.max_connections, 10000u);
  EXPECT_EQ(l.limits.max_request_header_bytes, 16384u);
  EXPECT_EQ(l.limits.max_request_body_bytes, 0u);
  EXPECT_EQ(l.limits.header_timeout, Duration(10000));
  EXPECT_EQ(l.limits.idle_timeout, Duration(60000));
  EXPECT_TRUE(l.trusted_proxies.empty());
  EXPECT_EQ(l.routes[0].timeout, Duration(15000));
  EXPECT_EQ(l.routes[0].cross_region, CrossRegion::kAllow);
  const auto& cl = c.clusters[0];
  EXPECT_EQ(cl.strategy, "round_robin");
  EXPECT_DOUBLE_EQ(balancer::resource_aware::config_of(cl).cpu_weight, 0.4);
  EXPECT_EQ(balancer::hashing::config_of(cl).virtual_nodes, 160u);
  EXPECT_FALSE(cl.locality.has_value());
  EXPECT_FALSE(cl.health_check.has_value());
  EXPECT_EQ(cl.circuit_breaker.consecutive_failures, 5u);
  EXPECT_EQ(cl.upstream.connect_timeout, Duration(1000));
  EXPECT_EQ(cl.upstream.max_idle_per_endpoint, 64u);
  EXPECT_EQ(cl.endpoints[0].weight, 1u);
}

// A route timeout of 0s means none (long-lived streams); other durations still refuse 0.
TEST(Loader, RouteTimeoutZeroMeansNone) {
  auto r =
      load(replace(kMinimal, "      - cluster: app", "      - cluster: app\n        timeout: 0s"));
  ASSERT_TRUE(r.ok()) << r.errors[0].to_string();
  EXPECT_EQ(r.config->listeners[0].routes[0].timeout, Duration(0));
  expect_one_error(
      replace(kMinimal, "    endpoints:", "    upstream: { idle_timeout: 0s }\n    endpoints:"), 8,
      31, "clusters[0].upstream.idle_timeout", "greater than 0");
}

// The full example of DESIGN.md Part A is a valid config, every key of it understood.
TEST(Loader, ContractExampleLoads) {
  std::ifstream in(std::string(SWITCHYARD_SOURCE_DIR) + "/tests/unit/config/contract_example.yaml");
  ASSERT_TRUE(in);
  std::stringstream text;
  text << in.rdbuf();
  auto r = load(text.str());
  ASSERT_TRUE(r.ok()) << r.errors[0].to_string();
  const auto& l = r.config->listeners[0];
  EXPECT_EQ(l.local_region, "us-east");
  EXPECT_EQ(l.region_map.size(), 2u);
  EXPECT_EQ(l.trusted_proxies.size(), 2u);
  EXPECT_EQ(*l.routes[0].host, "api.example.com");
  EXPECT_EQ(l.routes[0].retries.on_status, std::vector<uint16_t>{503});
  const auto& c = r.config->clusters[0];
  EXPECT_EQ(balancer::hashing::config_of(c).key.source, HashKeySource::kHeader);
  EXPECT_EQ(balancer::hashing::config_of(c).key.name, "X-User-Id");
  ASSERT_TRUE(c.locality);
  EXPECT_EQ(c.locality->client_region_header, "X-Client-Region");
  ASSERT_TRUE(c.health_check);
  EXPECT_EQ(c.health_check->expect_status[0].low, 200);
  EXPECT_EQ(c.health_check->expect_status[0].high, 299);
  EXPECT_EQ(c.circuit_breaker.max_ejection, Duration(300000));
  EXPECT_DOUBLE_EQ(*c.endpoints[0].cpu_usage, 0.2);
}

// --- one test per class of error, each checking line and column ---

TEST(LoaderErrors, YamlSyntax) {
  auto r = load("listeners: [a, b\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.errors[0].line, 2);
  EXPECT_NE(r.errors[0].message.find("YAML syntax error"), std::string::npos);
}

TEST(LoaderErrors, UnknownKey) {
  expect_one_error(replace(kMinimal, "    listen:", "    lisen: x\n    listen:"), 3, 5,
                   "listeners[0].lisen", "unknown key 'lisen'");
}

TEST(LoaderErrors, DuplicateKey) {
  expect_one_error(replace(kMinimal, "    listen:", "    name: again\n    listen:"), 3, 5,
                   "listeners[0].name", "duplicate key");
}

TEST(LoaderErrors, MissingRequiredKey) {
  expect_one_error(replace(kMinimal, "    listen: 127.0.0.1:8080\n", ""), 2, 5,
                   "listeners[0].listen", "required key is missing");
}

TEST(LoaderErrors, WrongType) {
  expect_one_error(std::string("workers: four\n") + kMinimal, 1, 10, "workers", "whole number");
  expect_one_error(
      replace(kMinimal, "    routes:\n      - cluster: app\n", "    routes: { cluster: app }\n"), 4,
      13, "listeners[0].routes", "expected a list");
}

TEST(LoaderErrors, OutOfRange) {
  expect_one_error(replace(kMinimal, "      - address: 127.0.0.1:9001\n",
                           "      - address: 127.0.0.1:9001\n        weight: 0\n"),
                   10, 17, "clusters[0].endpoints[0].weight", "from 1 to 10000");
}

TEST(LoaderErrors, ResourceAwareAndRingLimits) {
  expect_one_error(replace(kMinimal, "    endpoints:\n",
                           "    resource_aware: { max_report_age: 50ms }\n    endpoints:\n"),
                   8, 39, "clusters[0].resource_aware.max_report_age", "at least 100ms");
  expect_one_error(replace(kMinimal, "    endpoints:\n",
                           "    resource_aware: { cpu_weight: 0, memory_weight: 0, "
                           "connection_weight: 0 }\n    endpoints:\n"),
                   8, 21, "clusters[0].resource_aware.cpu_weight", "must not all be 0");
  expect_one_error(
      replace(kMinimal, "    endpoints:\n", "    hash: { ring_probes: 65 }\n    endpoints:\n"), 8,
      26, "clusters[0].hash.ring_probes", "from 1 to 64");
}

TEST(LoaderErrors, BadDuration) {
  expect_one_error(std::string("drain_timeout: 15\n") + kMinimal, 1, 16, "drain_timeout",
                   "duration with a unit");
}

TEST(LoaderErrors, BadAddress) {
  expect_one_error(replace(kMinimal, "127.0.0.1:9001", "127.0.0.1:70000"), 9, 18,
                   "clusters[0].endpoints[0].address", "invalid address");
}

TEST(LoaderErrors, BadCidr) {
  expect_one_error(
      replace(kMinimal, "    routes:", "    trusted_proxies: [10.0.0.0/40]\n    routes:"), 4, 23,
      "listeners[0].trusted_proxies[0]", "invalid CIDR");
}

TEST(LoaderErrors, BadEnum) {
  expect_one_error(replace(kMinimal, "  - name: app\n", "  - name: app\n    strategy: fastest\n"),
                   8, 15, "clusters[0].strategy", "round_robin | least_request");
}

TEST(LoaderErrors, RouteToUnknownCluster) {
  expect_one_error(replace(kMinimal, "cluster: app", "cluster: nope"), 5, 18,
                   "listeners[0].routes[0].cluster", "no cluster named 'nope'");
}

TEST(LoaderErrors, DuplicateNames) {
  std::string two_clusters =
      std::string(kMinimal) + "  - name: app\n    endpoints:\n      - address: 127.0.0.1:9002\n";
  expect_one_error(two_clusters, 10, 11, "clusters[1].name", "duplicate cluster name");
}

TEST(LoaderErrors, EmptyEndpoints) {
  expect_one_error(
      replace(kMinimal, "    endpoints:\n      - address: 127.0.0.1:9001\n", "    endpoints: []\n"),
      8, 16, "clusters[0].endpoints", "at least one endpoint");
}

TEST(LoaderErrors, DuplicateEndpoint) {
  expect_one_error(std::string(kMinimal) + "      - address: 127.0.0.1:9001\n", 10, 9,
                   "clusters[0].endpoints[1].address", "duplicate endpoint");
}

TEST(LoaderErrors, BadHashKey) {
  expect_one_error(replace(kMinimal, "  - name: app\n", "  - name: app\n    hash: { key: body }\n"),
                   8, 18, "clusters[0].hash.key", "expected header:NAME");
  expect_one_error(
      replace(kMinimal, "  - name: app\n", "  - name: app\n    hash: { key: 'cookie:' }\n"), 8, 18,
      "clusters[0].hash.key", "needs a name");
}

TEST(LoaderErrors, CrossFieldCheck) {
  expect_one_error(
      replace(kMinimal, "  - name: app\n",
              "  - name: app\n    circuit_breaker: { base_ejection: 60s, max_ejection: 30s }\n"),
      8, 58, "clusters[0].circuit_breaker.max_ejection", "at least base_ejection");
}

TEST(LoaderErrors, EmptyFile) {
  auto r = load("");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.errors[0].message.find("empty"), std::string::npos);
}

// Every problem is reported, in file order, not just the first.
TEST(LoaderErrors, ReportsAllProblemsSorted) {
  std::string yaml = "workers: x\n" + replace(replace(kMinimal, "cluster: app", "cluster: nope"),
                                              "127.0.0.1:9001", "nowhere");
  auto r = load(yaml);
  ASSERT_EQ(r.errors.size(), 3u);
  EXPECT_EQ(r.errors[0].path, "workers");
  EXPECT_EQ(r.errors[1].path, "listeners[0].routes[0].cluster");
  EXPECT_EQ(r.errors[2].path, "clusters[0].endpoints[0].address");
}

// HTTP/2 keys (issue 17): protocol defaults by listener kind, the cluster protocol and its TLS
// coupling, grpc health checks, and their errors at FILE:LINE:COL.
TEST(Loader, Http2Keys) {
  auto r = load(kMinimal);
  ASSERT_TRUE(r.ok());
  const auto& l = r.config->listeners[0];
  EXPECT_TRUE(l.speaks(ListenerProtocol::kHttp1));
  EXPECT_FALSE(l.speaks(ListenerProtocol::kH2));
  EXPECT_EQ(l.limits.max_concurrent_streams, 100u);
  EXPECT_EQ(r.config->clusters[0].protocol, UpstreamProtocol::kHttp1);
  auto h2 = load(replace(replace(kMinimal, "    routes:", "    protocols: [h2]\n    routes:"),
                         "    endpoints:",
                         "    protocol: h2c\n    health_check: { protocol: grpc, service: a.B }\n"
                         "    endpoints:"));
  ASSERT_TRUE(h2.ok()) << h2.errors[0].to_string();
  EXPECT_TRUE(h2.config->listeners[0].speaks(ListenerProtocol::kH2));
  EXPECT_FALSE(h2.config->listeners[0].speaks(ListenerProtocol::kHttp1));
  EXPECT_EQ(h2.config->clusters[0].protocol, UpstreamProtocol::kH2c);
  EXPECT_EQ(h2.config->clusters[0].health_check->protocol, HealthProtocol::kGrpc);
  EXPECT_EQ(h2.config->clusters[0].health_check->service, "a.B");
}

TEST(LoaderErrors, Http2Keys) {
  expect_one_error(replace(kMinimal, "    routes:", "    protocols: [h3]\n    routes:"), 4, 17,
                   "listeners[0].protocols[0]", "expected one of");
  expect_one_error(replace(kMinimal, "    routes:", "    protocols: [h2, h2]\n    routes:"), 4, 21,
                   "listeners[0].protocols[1]", "listed twice");
  expect_one_error(replace(kMinimal, "    endpoints:", "    protocol: h2\n    endpoints:"), 8, 15,
                   "clusters[0].protocol", "set tls.enabled");
  expect_one_error(
      replace(kMinimal, "    endpoints:", "    health_check: { protocol: grpc }\n    endpoints:"),
      8, 31, "clusters[0].health_check.protocol", "need protocol h2c or h2");
}

}  // namespace
}  // namespace switchyard::config

namespace switchyard::config {
namespace {

TEST(Loader, AdaptiveWeightsAndPredictiveLocality) {
  auto r = load(replace(kMinimal, "    endpoints:\n",
                        "    strategy: resource_aware\n"
                        "    resource_aware:\n"
                        "      weights: adaptive\n"
                        "      learning: { window: 20s, min_samples: 30, max_weight: 0.7 }\n"
                        "    locality:\n"
                        "      predictive: { horizon: 3s, latency_ratio: 4 }\n"
                        "    endpoints:\n"));
  ASSERT_TRUE(r.ok()) << r.errors[0].to_string();
  const auto& c = r.config->clusters[0];
  const auto& rc = balancer::resource_aware::config_of(c);
  EXPECT_EQ(rc.weights, balancer::resource_aware::Config::Weights::kAdaptive);
  EXPECT_EQ(rc.learning.window, std::chrono::seconds(20));
  EXPECT_EQ(rc.learning.min_samples, 30u);
  EXPECT_DOUBLE_EQ(rc.learning.max_weight, 0.7);
  EXPECT_DOUBLE_EQ(rc.learning.min_weight, 0.05);
  ASSERT_TRUE(c.locality);
  EXPECT_TRUE(c.locality->predictive.enabled);  // a map turns it on
  EXPECT_EQ(c.locality->predictive.horizon, std::chrono::seconds(3));
  EXPECT_DOUBLE_EQ(c.locality->predictive.latency_ratio, 4);
  EXPECT_EQ(c.locality->predictive.recovery, std::chrono::seconds(10));

  auto plain = load(replace(kMinimal, "    endpoints:\n",
                            "    locality: { predictive: true }\n    endpoints:\n"));
  ASSERT_TRUE(plain.ok()) << plain.errors[0].to_string();
  EXPECT_TRUE(plain.config->clusters[0].locality->predictive.enabled);
  auto off = load(replace(kMinimal, "    endpoints:\n", "    locality: {}\n    endpoints:\n"));
  ASSERT_TRUE(off.ok()) << off.errors[0].to_string();
  EXPECT_FALSE(off.config->clusters[0].locality->predictive.enabled);
}

TEST(LoaderErrors, AdaptiveWeightsAndPredictionLimits) {
  expect_one_error(replace(kMinimal, "    endpoints:\n",
                           "    resource_aware: { weights: learned }\n    endpoints:\n"),
                   8, 32, "clusters[0].resource_aware.weights", "static");
  expect_one_error(replace(kMinimal, "    endpoints:\n",
                           "    resource_aware: { learning: { max_weight: 0.2 } }\n"
                           "    endpoints:\n"),
                   8, 47, "clusters[0].resource_aware.learning.max_weight", "0.34");
  expect_one_error(replace(kMinimal, "    endpoints:\n",
                           "    locality: { predictive: { latency_ratio: 1 } }\n"
                           "    endpoints:\n"),
                   8, 46, "clusters[0].locality.predictive.latency_ratio", "");
}

}  // namespace
}  // namespace switchyard::config
