// consistent_hash and maglev: the two policies that read the `hash:` block.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "../test_util.h"
#include "balancer/policies/maglev/maglev.h"

namespace switchyard::balancer {
namespace {

// A hashing cluster over 127.0.0.1:9001.. (in the given port order), seed "golden".
struct Cluster {
  Cluster(const std::string& strategy, std::vector<int> ports, const std::string& hash = "")
      : c(spec(strategy, ports, hash)) {}
  static testing::Spec spec(const std::string& strategy, const std::vector<int>& ports,
                            const std::string& hash) {
    testing::Spec s;
    s.strategy = strategy;
    for (int p : ports) {
      s.weights.push_back(1);
      s.addresses.push_back("127.0.0.1:" + std::to_string(p));
    }
    s.blocks = "hash: { key: \"header:X-Key\", seed: golden" + hash + " }";
    return s;
  }
  static PickRequest keyed(const std::string& key) {
    PickRequest req;
    req.hash_key = key;
    req.has_hash_key = true;
    return req;
  }
  // The address a key goes to on a first try.
  std::string pick(const std::string& key) { return c.address(keyed(key)); }
  std::map<std::string, std::string> map(int keys) {
    std::map<std::string, std::string> out;
    for (int i = 0; i < keys; ++i)
      out["key-" + std::to_string(i)] = pick("key-" + std::to_string(i));
    return out;
  }
  size_t at(int port) {
    for (const auto& ref : c.balancer().members()) {
      if (ref.endpoint->address_text == "127.0.0.1:" + std::to_string(port)) return ref.index;
    }
    throw std::runtime_error("no such endpoint");
  }

  testing::Cluster c;
};

std::vector<int> ports(int n) {
  std::vector<int> p;
  for (int i = 0; i < n; ++i) p.push_back(9001 + i);
  return p;
}

double max_over_mean(const std::map<std::string, std::string>& m, int endpoints) {
  std::map<std::string, int> load;
  for (const auto& [k, v] : m) ++load[v];
  int max = 0;
  for (const auto& [k, v] : load) max = std::max(max, v);
  return max / (static_cast<double>(m.size()) / endpoints);
}

class Hashing : public ::testing::TestWithParam<std::string> {};

// Pinned key -> endpoint for seed "golden": any change to the hash, the key derivation or the
// point placement shows here (and would remap every user's keys on upgrade).
TEST(HashingGolden, PinnedKeys) {
  const std::vector<std::string> keys = {"key-0", "key-1", "key-2", "key-3",
                                         "key-4", "alice", "bob",   "carol"};
  auto picks = [&](const std::string& strategy, const std::string& extra) {
    Cluster c(strategy, ports(5), extra);
    std::string out;
    for (const auto& k : keys) out += c.pick(k).substr(10) + " ";
    return out;
  };
  EXPECT_EQ(picks("consistent_hash", ""), "9001 9004 9002 9001 9004 9003 9003 9003 ");
  EXPECT_EQ(picks("consistent_hash", ", ring_probes: 1"),
            "9002 9004 9002 9005 9005 9001 9003 9003 ");
  EXPECT_EQ(picks("maglev", ""), "9001 9003 9002 9002 9003 9004 9003 9001 ");
}

TEST_P(Hashing, ReorderingMovesNothing) {
  Cluster a(GetParam(), ports(10));
  auto p = ports(10);
  std::reverse(p.begin(), p.end());
  std::rotate(p.begin(), p.begin() + 3, p.end());
  Cluster b(GetParam(), p);
  EXPECT_EQ(a.map(5000), b.map(5000));
}

TEST_P(Hashing, RemovingOneMovesOnlyItsKeys) {
  Cluster all(GetParam(), ports(10));
  auto p = ports(10);
  p.erase(p.begin() + 4);  // 127.0.0.1:9005
  Cluster fewer(GetParam(), p);
  auto before = all.map(20000);
  auto after = fewer.map(20000);
  int moved = 0, between_survivors = 0;
  for (const auto& [k, v] : before) {
    if (after[k] != v) {
      ++moved;
      if (v != "127.0.0.1:9005") ++between_survivors;
    }
  }
  int owned = static_cast<int>(std::count_if(
      before.begin(), before.end(), [](auto& kv) { return kv.second == "127.0.0.1:9005"; }));
  std::printf(
      "%s: max/mean %.3f (10), %.3f (9); moved %.2f%% (its share %.2f%%), between "
      "survivors %d\n",
      GetParam().c_str(), max_over_mean(before, 10), max_over_mean(after, 9), moved / 200.0,
      owned / 200.0, between_survivors);
  if (GetParam() == "consistent_hash") {
    EXPECT_EQ(between_survivors, 0);
    EXPECT_EQ(moved, owned);
    // 8 probes: within the key sampling noise (a perfect split of 20,000 keys gives ~1.03).
    EXPECT_LE(max_over_mean(before, 10), 1.06);
  } else {
    EXPECT_LE(max_over_mean(before, 10), 1.04);
    EXPECT_LE(moved, owned * 3 / 2);  // Maglev: a little disruption beyond the removed share
  }
}

// An unusable endpoint's keys go elsewhere and come back when it does; nothing else moves.
TEST_P(Hashing, UnhealthyEndpointsKeysReturn) {
  Cluster c(GetParam(), ports(6));
  auto before = c.map(3000);
  c.c.set_healthy(c.at(9002), false);
  auto during = c.map(3000);
  for (const auto& [k, v] : before) {
    if (v == "127.0.0.1:9002") {
      EXPECT_NE(during[k], v);
    } else {
      EXPECT_EQ(during[k], v);
    }
  }
  c.c.set_healthy(c.at(9002), true);
  EXPECT_EQ(c.map(3000), before);
}

// The seed keys the hash: another seed gives an unrelated mapping; the same seed the same.
TEST_P(Hashing, SeedKeysTheMapping) {
  Cluster a(GetParam(), ports(10));
  Cluster same(GetParam(), ports(10));
  Cluster other(GetParam(), ports(10), "-other");
  auto ma = a.map(2000), mo = other.map(2000);
  EXPECT_EQ(ma, same.map(2000));
  int equal = 0;
  for (const auto& [k, v] : ma) equal += mo[k] == v ? 1 : 0;
  EXPECT_LT(equal, 400);  // ~10% agree by chance
}

// One hot key with bounded_load 1.25: with 40 of its requests in flight over 4 endpoints, none
// holds more than ceil(1.25 * 41 / 4) = 13.
TEST_P(Hashing, BoundedLoadSpreadsAHotKey) {
  Cluster c(GetParam(), ports(4), ", bounded_load: 1.25");
  for (int i = 0; i < 40; ++i) ASSERT_NE(c.c.hold(Cluster::keyed("hot")), nullptr);
  for (size_t i = 0; i < 4; ++i) EXPECT_LE(c.c.load(i).active_requests.load(), 13) << i;
  EXPECT_EQ(bounded_load_cap(1.25, 40, 4), 13);
  EXPECT_EQ(bounded_load_cap(0, 40, 4), 0);
}

INSTANTIATE_TEST_SUITE_P(Strategies, Hashing, ::testing::Values("consistent_hash", "maglev"));

TEST(Maglev, TableIsPrimeAndFull) {
  EXPECT_EQ(maglev::next_prime(65536), 65537u);
  EXPECT_EQ(maglev::next_prime(100000), 100003u);
  Cluster c("maglev", ports(10));
  maglev::Table m(c.c.config(), c.c.balancer().members());
  EXPECT_EQ(m.table_size(), 65537u);
  std::map<uint32_t, int> entries;
  for (uint64_t i = 0; i < m.table_size(); ++i) ++entries[m.slot_owner(i)];
  for (const auto& [ep, n] : entries) EXPECT_NEAR(n, 6553, 1);  // each takes its turn
}

}  // namespace
}  // namespace switchyard::balancer
