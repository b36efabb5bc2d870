#include "switchyard/balancer/random.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace switchyard::balancer {
namespace {

using namespace testing;

// Pinned: a fixed seed gives a fixed sequence (the PRNG is deterministic per worker seed).
TEST(Random, PinnedSequenceForSeed) {
  auto eps = endpoints({1, 1, 1});
  auto s = build(config::Strategy::kRandom, eps);
  WorkerLbState lb(eps.size(), 42);
  std::string first = sequence(*s, lb, 12);
  WorkerLbState again(eps.size(), 42);
  EXPECT_EQ(sequence(*s, again, 12), first);
  EXPECT_NE(first.find('a'), std::string::npos);
  EXPECT_NE(first.find('b'), std::string::npos);
  EXPECT_NE(first.find('c'), std::string::npos);
}

// Weights 6:3:1 give shares within 2 points of 60/30/10 over 100,000 draws.
TEST(Random, WeightsHonoured) {
  auto eps = endpoints({6, 3, 1});
  auto s = build(config::Strategy::kRandom, eps);
  WorkerLbState lb(eps.size(), 7);
  auto h = histogram(*s, lb, 100000);
  EXPECT_NEAR(h["a"] / 1000.0, 60, 2);
  EXPECT_NEAR(h["b"] / 1000.0, 30, 2);
  EXPECT_NEAR(h["c"] / 1000.0, 10, 2);
}

// Unusable endpoints are never picked, even when they hold most of the weight.
TEST(Random, SkipsUnusable) {
  auto eps = endpoints({100, 1, 1});
  auto s = build(config::Strategy::kRandom, eps);
  WorkerLbState lb(eps.size(), 3);
  eps[0].state->healthy = false;
  auto h = histogram(*s, lb, 2000);
  EXPECT_EQ(h.count("a"), 0u);
  EXPECT_NEAR(h["b"], 1000, 150);
  eps[1].state->breaker = registry::Breaker::kOpen;
  eps[2].state->healthy = false;
  EXPECT_EQ(s->pick({}, lb), nullptr);
}

TEST(Random, EmptyAndSingle) {
  std::vector<Endpoint> none;
  WorkerLbState lb(0, 1);
  EXPECT_EQ(build(config::Strategy::kRandom, none)->pick({}, lb), nullptr);
  auto one = endpoints({3});
  WorkerLbState lb1(1, 1);
  EXPECT_EQ(sequence(*build(config::Strategy::kRandom, one), lb1, 4), "aaaa");
}

}  // namespace
}  // namespace switchyard::balancer
