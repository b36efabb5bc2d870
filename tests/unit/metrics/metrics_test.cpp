#include "switchyard/metrics/metrics.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "switchyard/config/loader.h"
#include "switchyard/metrics/exposition.h"
#include "switchyard/registry/registry.h"

namespace switchyard::metrics {
namespace {

std::shared_ptr<const config::Config> load(const std::string& endpoints) {
  std::string yaml =
      "listeners:\n  - name: in\n    listen: 127.0.0.1:0\n    routes: [ { cluster: app } ]\n"
      "clusters:\n  - name: app\n    endpoints:\n" +
      endpoints;
  auto r = config::load_string(yaml, "t.yaml");
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  return r.config;
}

// Per-code counters are created on first sight and counted exactly, from many threads.
TEST(CodeCounters, CountsPerCodeAcrossThreads) {
  Metrics m;
  registry::Registry reg(m);
  auto snap = reg.build(load("      - address: 127.0.0.1:9001\n"));
  auto l = m.listener("in");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) l->downstream_requests.add(i % 2 ? 200 : 503);
    });
  }
  for (auto& t : threads) t.join();
  l->downstream_requests.add(999);  // out of range: counted as "other"
  auto text = render(*snap, m);
  EXPECT_NE(text.find("switchyard_downstream_requests_total{code=\"200\",listener=\"in\"} 2000"),
            std::string::npos);
  EXPECT_NE(text.find("switchyard_downstream_requests_total{code=\"503\",listener=\"in\"} 2000"),
            std::string::npos);
  EXPECT_NE(text.find("code=\"other\""), std::string::npos);
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
  auto s = h.snapshot();
  EXPECT_EQ(s.cumulative[0], 1u);
  EXPECT_EQ(s.cumulative[1], 2u);
  EXPECT_EQ(s.cumulative[2], 3u);
  EXPECT_EQ(s.count, 3u);
  EXPECT_NEAR(s.sum_seconds, 0.056, 1e-12);
}

// Handles are created once: asking again returns the same object.
TEST(Metrics, HandlesAreStable) {
  Metrics m;
  EXPECT_EQ(m.endpoint("c", "a:1"), m.endpoint("c", "a:1"));
  EXPECT_NE(m.endpoint("c", "a:1"), m.endpoint("d", "a:1"));
  EXPECT_EQ(m.cluster("c"), m.cluster("c"));
  EXPECT_EQ(m.listener("l"), m.listener("l"));
}

// The exposition lists what the snapshot holds: an endpoint a reload removed is gone.
TEST(Exposition, RemovedEndpointsLeave) {
  Metrics m;
  registry::Registry reg(m);
  auto s1 = reg.build(load("      - address: 127.0.0.1:9001\n      - address: 127.0.0.1:9002\n"));
  EXPECT_NE(render(*s1, m).find("endpoint=\"127.0.0.1:9002\""), std::string::npos);
  auto s2 = reg.build(load("      - address: 127.0.0.1:9001\n"));
  s1.reset();
  m.prune();
  auto text = render(*s2, m);
  EXPECT_EQ(text.find("endpoint=\"127.0.0.1:9002\""), std::string::npos);
  EXPECT_NE(text.find("endpoint=\"127.0.0.1:9001\""), std::string::npos);
}

}  // namespace
}  // namespace switchyard::metrics
