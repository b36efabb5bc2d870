// Membership changes through discovery move only the changed endpoints' keys (issue 25):
// 20,000 keys over 10 discovered endpoints, one added then one removed, for the ring and
// Maglev; and two instances whose sources answer the same set in different orders agree on
// every key (the manager composes discovered endpoints in address order).

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <map>
#include <random>

#include "../balancer/test_util.h"
#include "switchyard/discovery/discovery.h"

namespace switchyard::discovery {
namespace {

constexpr int kKeys = 20000;

struct Fed final : Source {
  Report report;
  explicit Fed(Report r) : report(std::move(r)) {}
  std::optional<Answer> start() override { return std::nullopt; }
  void stop() override {}
};

// One switchyard instance's view: a manager over one file source the test feeds.
struct Instance {
  boost::asio::io_context ioc;
  Fed* source = nullptr;
  Manager manager{ioc, [] {},
                  [this](boost::asio::io_context&, const config::Cluster&, Source::Report r) {
                    auto f = std::make_unique<Fed>(std::move(r));
                    source = f.get();
                    return f;
                  }};
  std::shared_ptr<const config::Config> base;

  explicit Instance(const std::string& strategy) {
    auto r = config::load_string(
        "listeners: [ { name: in, listen: 127.0.0.1:0, routes: [ { cluster: app } ] } ]\n"
        "clusters:\n"
        "  - name: app\n"
        "    strategy: " +
            strategy +
            "\n"
            "    hash: { key: \"header:X-Key\", seed: discovery }\n"
            "    discovery: { file: { path: /dev/null } }\n",
        "t.yaml", balancer::schema());
    EXPECT_TRUE(r.ok());
    base = r.config;
    manager.update(*base);
  }

  // Feeds the source these ports (in this order); returns key -> address.
  std::map<std::string, std::string> map(const std::vector<int>& ports) {
    std::string text;
    for (int p : ports) text += "- address: 127.0.0.1:" + std::to_string(p) + "\n";
    auto eps = config::load_endpoints(text, "e.yaml");
    EXPECT_TRUE(eps.ok());
    source->report(Answer{Result::kSuccess, eps.endpoints, ""});
    auto composed = manager.compose(base);
    balancer::testing::Spec spec;
    spec.strategy = composed->clusters[0].strategy;
    spec.blocks = "hash: { key: \"header:X-Key\", seed: discovery }";
    for (const auto& e : composed->clusters[0].endpoints) {
      spec.addresses.push_back(e.address_text);
      spec.weights.push_back(e.weight);
    }
    balancer::testing::Cluster cluster(spec);
    std::map<std::string, std::string> out;
    for (int i = 0; i < kKeys; ++i) {
      balancer::PickRequest req;
      const std::string key = "user-" + std::to_string(i);
      req.hash_key = key;
      req.has_hash_key = true;
      out[key] = cluster.address(req);
    }
    return out;
  }
};

std::vector<int> ports(int from, int n) {
  std::vector<int> p;
  for (int i = 0; i < n; ++i) p.push_back(from + i);
  return p;
}

struct Movement {
  int moved = 0;
  int between_survivors = 0;  // keys that moved from one endpoint that stayed to another
  int changed = 0;            // keys on the added endpoint after / the removed one before
};

Movement compare(const std::map<std::string, std::string>& before,
                 const std::map<std::string, std::string>& after, const std::string& changed) {
  Movement m;
  for (const auto& [k, v] : before) {
    const auto& w = after.at(k);
    if (v == changed || w == changed) ++m.changed;
    if (w == v) continue;
    ++m.moved;
    if (v != changed && w != changed) ++m.between_survivors;
  }
  return m;
}

class Membership : public ::testing::TestWithParam<std::string> {};

TEST_P(Membership, AddThenRemoveMovesOnlyTheChangedEndpointsKeys) {
  Instance sy(GetParam());
  const auto ten = sy.map(ports(9001, 10));
  auto eleven_ports = ports(9001, 10);
  eleven_ports.push_back(9011);
  const auto eleven = sy.map(eleven_ports);
  const auto added = compare(ten, eleven, "127.0.0.1:9011");
  const auto nine = sy.map({9001, 9002, 9003, 9005, 9006, 9007, 9008, 9009, 9010, 9011});
  const auto removed = compare(eleven, nine, "127.0.0.1:9004");
  std::printf(
      "%s: add moved %.2f%% (changed share %.2f%%, %d between survivors); remove moved "
      "%.2f%% (changed share %.2f%%, %d between survivors)\n",
      GetParam().c_str(), 100.0 * added.moved / kKeys, 100.0 * added.changed / kKeys,
      added.between_survivors, 100.0 * removed.moved / kKeys, 100.0 * removed.changed / kKeys,
      removed.between_survivors);
  for (const auto& m : {added, removed}) {
    EXPECT_GT(m.changed, kKeys / 20);
    EXPECT_LE(m.moved, m.changed * 1.1);
    if (GetParam() == "consistent_hash") {
      EXPECT_EQ(m.between_survivors, 0);
    }
  }
}

TEST_P(Membership, TwoInstancesSeeingTheSameSetAgreeOnEveryKey) {
  Instance a(GetParam());
  Instance b(GetParam());
  auto p = ports(9001, 10);
  auto shuffled = p;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(7));
  EXPECT_EQ(a.map(p), b.map(shuffled));
}

INSTANTIATE_TEST_SUITE_P(Strategies, Membership, ::testing::Values("consistent_hash", "maglev"));

}  // namespace
}  // namespace switchyard::discovery
