#include "switchyard/metrics/metrics.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace switchyard::metrics {
namespace {

// Per-code counters are created on first sight and counted exactly, from many threads.
TEST(CodeCounters, CountsPerCodeAcrossThreads) {
  Metrics m;
  auto l = m.listener("in");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) l->downstream_requests.increment(i % 2 ? 200 : 503);
    });
  }
  for (auto& t : threads) t.join();
  l->downstream_requests.increment(999);  // out of range: counted as "other"
  auto text = m.serialize();
  EXPECT_NE(text.find("switchyard_downstream_requests_total{code=\"200\",listener=\"in\"} 2000"),
            std::string::npos);
  EXPECT_NE(text.find("switchyard_downstream_requests_total{code=\"503\",listener=\"in\"} 2000"),
            std::string::npos);
  EXPECT_NE(text.find("code=\"other\""), std::string::npos);
}

// Handles are created once: asking again returns the same object.
TEST(Metrics, HandlesAreStable) {
  Metrics m;
  EXPECT_EQ(m.endpoint("c", "a:1"), m.endpoint("c", "a:1"));
  EXPECT_NE(m.endpoint("c", "a:1"), m.endpoint("d", "a:1"));
  EXPECT_EQ(m.cluster("c"), m.cluster("c"));
  EXPECT_EQ(m.listener("l"), m.listener("l"));
}

}  // namespace
}  // namespace switchyard::metrics
