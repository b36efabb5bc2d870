#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <thread>
#include <vector>

#include "switchyard/config/loader.h"
#include "switchyard/control/runtime.h"
#include "switchyard/metrics/exposition.h"

namespace switchyard::metrics {
namespace {

std::shared_ptr<const config::Config> load(const std::string& endpoints) {
  std::string yaml =
      "listeners:\n  - name: in\n    listen: 127.0.0.1:0\n    routes: [ { cluster: app } ]\n"
      "clusters:\n  - name: app\n    endpoints:\n" +
      endpoints;
  auto r = config::load_string(yaml, "t.yaml", balancer::schema());
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  return r.config;
}

// A runtime and the proxy's statistics over it, as the daemon wires them.
struct Fixture {
  std::shared_ptr<const proxy::StatsTable> apply(const std::string& endpoints) {
    return stats.build(runtime.apply(load(endpoints)));
  }
  boost::asio::io_context ioc;
  control::Runtime runtime{ioc};
  proxy::StatsRegistry stats;
};

bool has(const std::string& text, const std::string& line) {
  return text.find(line) != std::string::npos;
}

// Per-code counters are created on first sight and counted exactly, from many threads.
TEST(CodeCounters, CountsPerCodeAcrossThreads) {
  Fixture f;
  auto s = f.apply("      - address: 127.0.0.1:9001\n");
  auto& l = *s->listeners[0];
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) l.downstream_requests.add(i % 2 ? 200 : 503);
    });
  }
  for (auto& t : threads) t.join();
  l.downstream_requests.add(999);  // out of range: counted as "other"
  auto text = render(*s, {});
  EXPECT_TRUE(has(text, "switchyard_downstream_requests_total{code=\"200\",listener=\"in\"} 2000"));
  EXPECT_TRUE(has(text, "switchyard_downstream_requests_total{code=\"503\",listener=\"in\"} 2000"));
  EXPECT_TRUE(has(text, "code=\"other\""));
}

// More distinct codes than slots: the first ones keep their own series, the rest are "other".
TEST(CodeCounters, OverflowGoesToOther) {
  stats::CodeCounters c;
  for (unsigned code = 200; code < 200 + stats::CodeCounters::kSlots + 5; ++code) c.add(code);
  uint64_t total = 0, other = 0, codes = 0;
  c.for_each([&](unsigned code, uint64_t n) {
    total += n;
    ++codes;
    if (code == 0) other = n;
  });
  EXPECT_EQ(total, stats::CodeCounters::kSlots + 5);
  EXPECT_EQ(other, 5u);
  EXPECT_EQ(codes, stats::CodeCounters::kSlots + 1);
}

// Histogram buckets are cumulative, with le meaning "at or below".
TEST(Histogram, CumulativeBuckets) {
  const double bounds[] = {0.001, 0.01};
  stats::Histogram h(bounds);
  h.observe_ns(1'000'000);  // exactly 1 ms: in the first bucket
  h.observe_ns(5'000'000);
  h.observe_ns(50'000'000);
  auto s = h.read();
  EXPECT_EQ(s.cumulative[0], 1u);
  EXPECT_EQ(s.cumulative[1], 2u);
  EXPECT_EQ(s.cumulative[2], 3u);
  EXPECT_EQ(s.count, 3u);
  EXPECT_NEAR(s.sum_seconds, 0.056, 1e-12);
}

// Statistics are kept by name across reloads: a listener, cluster or endpoint that stays
// keeps its counters.
TEST(Stats, KeptAcrossReloads) {
  Fixture f;
  auto s1 = f.apply("      - address: 127.0.0.1:9001\n      - address: 127.0.0.1:9002\n");
  auto s2 = f.apply("      - address: 127.0.0.1:9002\n");
  EXPECT_EQ(s2->listeners[0], s1->listeners[0]);
  EXPECT_EQ(s2->clusters[0], s1->clusters[0]);
  EXPECT_EQ(s2->endpoints[0][0], s1->endpoints[0][1]);
  EXPECT_EQ(f.stats.current(), s2);
  EXPECT_EQ(s2->snapshot->version, s2->version);
}

// The scrape-time gauges read every module's live state.
TEST(Exposition, GaugesReadLiveState) {
  Fixture f;
  auto s = f.apply("      - address: 127.0.0.1:9001\n");
  const auto& ref = s->snapshot->clusters[0]->members()[0];
  ref.load->active_requests = 7;
  ref.breaker->position = breaker::Position::kOpen;
  const_cast<health::EndpointHealth*>(ref.health)->checks.add(health::EndpointHealth::kFailed);
  discovery::SourceStatus source;
  source.cluster = "app";
  source.source = "dns";
  source.endpoints = 4;
  source.updates = {2, 5, 1, 3};
  auto text = render(*s, {3, 1, 9, 0, {source}});
  EXPECT_TRUE(has(text,
                  "switchyard_discovery_updates_total{cluster=\"app\",result=\"success\","
                  "source=\"dns\"} 2"));
  EXPECT_TRUE(has(text,
                  "switchyard_discovery_updates_total{cluster=\"app\",result=\"failure\","
                  "source=\"dns\"} 3"));
  EXPECT_TRUE(has(text, "switchyard_discovery_endpoints{cluster=\"app\",source=\"dns\"} 4"));
  const std::string ep = "{cluster=\"app\",endpoint=\"127.0.0.1:9001\"}";
  EXPECT_TRUE(has(text, "switchyard_endpoint_active_requests" + ep + " 7"));
  EXPECT_TRUE(has(text, "switchyard_endpoint_ejected" + ep + " 1"));
  EXPECT_TRUE(has(text,
                  "switchyard_health_checks_total{cluster=\"app\",endpoint=\"127.0.0.1:9001\","
                  "result=\"fail\"} 1"));
  EXPECT_TRUE(has(text, "switchyard_config_reloads_total{result=\"success\"} 3"));
  EXPECT_TRUE(has(text, "switchyard_config_reloads_total{result=\"failure\"} 1"));
  EXPECT_TRUE(has(text, "switchyard_access_log_dropped_total 9"));
}

// The exposition lists what the snapshot holds: an endpoint a reload removed is gone.
TEST(Exposition, RemovedEndpointsLeave) {
  Fixture f;
  auto s1 = f.apply("      - address: 127.0.0.1:9001\n      - address: 127.0.0.1:9002\n");
  EXPECT_TRUE(has(render(*s1, {}), "endpoint=\"127.0.0.1:9002\""));
  auto s2 = f.apply("      - address: 127.0.0.1:9001\n");
  auto text = render(*s2, {});
  EXPECT_FALSE(has(text, "endpoint=\"127.0.0.1:9002\""));
  EXPECT_TRUE(has(text, "endpoint=\"127.0.0.1:9001\""));
}

}  // namespace
}  // namespace switchyard::metrics
