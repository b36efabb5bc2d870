#pragma once

// A cluster's front door built the way control::Runtime builds it (from YAML, through the
// registry), with module states the test owns and can poke: health, breaker, load.

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "switchyard/balancer/front_door.h"
#include "switchyard/config/loader.h"
#include "switchyard/registry/registry.h"

namespace switchyard::balancer::testing {

struct Spec {
  std::string strategy = "round_robin";
  std::vector<uint32_t> weights;       // one endpoint each, 127.0.0.1:9001, 9002... (or addresses)
  std::vector<std::string> places;     // optional "region" or "region/zone" per endpoint
  std::vector<std::string> addresses;  // optional, instead of 127.0.0.1:900x
  std::string blocks;                  // extra cluster YAML, e.g. "hash: { key: \"header:K\" }"
  bool locality = false;               // a locality block (with `locality` YAML in blocks)
  uint64_t seed = 1;                   // the worker's picking state
};

class Cluster {
 public:
  explicit Cluster(Spec spec) : spec_(std::move(spec)) {
    std::string yaml =
        "listeners:\n  - name: in\n    listen: 127.0.0.1:0\n    routes: [ { cluster: app } ]\n"
        "clusters:\n  - name: app\n    strategy: " +
        spec_.strategy + "\n";
    if (!spec_.blocks.empty()) yaml += "    " + spec_.blocks + "\n";
    if (spec_.locality && spec_.blocks.find("locality") == std::string::npos) {
      yaml += "    locality: {}\n";
    }
    yaml += "    endpoints:\n";
    for (size_t i = 0; i < spec_.weights.size(); ++i) {
      std::string address =
          i < spec_.addresses.size() ? spec_.addresses[i] : "127.0.0.1:" + std::to_string(9001 + i);
      yaml += "      - address: " + address +
              "\n        weight: " + std::to_string(spec_.weights[i]) + "\n";
      if (i < spec_.places.size()) {
        auto slash = spec_.places[i].find('/');
        yaml += "        region: " + spec_.places[i].substr(0, slash) + "\n";
        if (slash != std::string::npos) {
          yaml += "        zone: " + spec_.places[i].substr(slash + 1) + "\n";
        }
      }
    }
    auto r = config::load_string(yaml, "t.yaml", balancer::schema());
    EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string()) << "\n" << yaml;
    config_ = r.config;
    snapshot_ = registry_.build(config_);
    endpoints_ = snapshot_->clusters[0];  // a copy the test may edit before build()
    for (size_t i = 0; i < endpoints_.endpoints.size(); ++i) {
      health_.push_back(std::make_shared<health::EndpointHealth>());
      breakers_.push_back(std::make_shared<breaker::EndpointBreaker>());
      loads_.push_back(std::make_shared<EndpointLoad>());
    }
    build();
  }

  // (Re)builds the front door over the current endpoint list (after editing endpoint()).
  void build() {
    ClusterBalancer::Owned owned{health_, breakers_, loads_};
    balancer_ = std::make_unique<ClusterBalancer>(endpoints_, *policies().find(spec_.strategy),
                                                  std::move(owned), state_, stats_, nullptr);
    balancer_->tick();
    balancer_->prepare(worker_, spec_.seed);
    // Workers start the round-robin cycle at a random point; tests pin it to the start.
    for (auto& group : worker_.groups) group.cursor = 0;
  }

  ClusterBalancer& balancer() { return *balancer_; }
  const config::Cluster& config() const { return *endpoints_.config; }
  WorkerCluster& worker() { return worker_; }
  registry::Endpoint& endpoint(size_t i) { return endpoints_.endpoints[i]; }
  const EndpointRef& ref(size_t i) const { return balancer_->members()[i]; }
  health::EndpointHealth& health(size_t i) { return *health_[i]; }
  breaker::EndpointBreaker& breaker(size_t i) { return *breakers_[i]; }
  EndpointLoad& load(size_t i) { return *loads_[i]; }
  void tick() { balancer_->tick(); }

  // Health flips as a check would make them, then the control tick.
  void set_healthy(size_t i, bool healthy) {
    health_[i]->healthy = healthy;
    tick();
  }

  // One try through the front door, released at once; its endpoint or nullptr.
  const EndpointRef* pick(const PickRequest& req = {}, PickMemo* memo = nullptr,
                          LocalityOutcome* outcome = nullptr) {
    PickMemo fresh;
    Pick p;
    balancer_->pick(req, memo ? *memo : fresh, worker_, p);
    if (outcome) *outcome = p.locality;
    last_status_ = p.status;
    last_reason_ = p.reason;
    if (p.ref == nullptr) return nullptr;
    balancer_->release(p);
    return p.ref;
  }
  // One try kept in flight (counted against its endpoint and the cluster until the end).
  const EndpointRef* hold(const PickRequest& req = {}) {
    PickMemo memo;
    Pick p;
    balancer_->pick(req, memo, worker_, p);
    return p.ref;
  }
  // The endpoint's letter: "a" for the first endpoint, "b"... ("-" for none).
  static std::string name(const EndpointRef* ref) {
    return ref ? std::string(1, static_cast<char>('a' + ref->index)) : "-";
  }
  std::string address(const PickRequest& req = {}) {
    const EndpointRef* ref = pick(req);
    return ref ? ref->endpoint->address_text : "";
  }
  // The names of n consecutive picks, concatenated.
  std::string sequence(int n, const PickRequest& req = {}, PickMemo* memo = nullptr) {
    std::string out;
    for (int i = 0; i < n; ++i) {
      PickMemo copy = memo ? *memo : PickMemo{};
      out += name(pick(req, &copy));
    }
    return out;
  }
  std::map<std::string, int> histogram(int n, const PickRequest& req = {}) {
    std::map<std::string, int> counts;
    for (int i = 0; i < n; ++i) counts[name(pick(req))]++;
    return counts;
  }
  // n picks: {region of the endpoint (or "-"): count}.
  std::map<std::string, int> regions(int n, const PickRequest& req) {
    std::map<std::string, int> out;
    for (int i = 0; i < n; ++i) {
      const EndpointRef* ref = pick(req);
      ++out[ref ? ref->endpoint->region : "-"];
    }
    return out;
  }
  unsigned last_status() const { return last_status_; }
  const std::string& last_reason() const { return last_reason_; }

 private:
  Spec spec_;
  std::shared_ptr<const config::Config> config_;
  registry::Registry registry_;
  std::shared_ptr<const registry::Membership> snapshot_;
  registry::ClusterMembership endpoints_;
  std::vector<std::shared_ptr<health::EndpointHealth>> health_;
  std::vector<std::shared_ptr<breaker::EndpointBreaker>> breakers_;
  std::vector<std::shared_ptr<EndpointLoad>> loads_;
  std::shared_ptr<ClusterState> state_ = std::make_shared<ClusterState>();
  std::shared_ptr<ClusterStats> stats_ = std::make_shared<ClusterStats>();
  std::unique_ptr<ClusterBalancer> balancer_;
  WorkerCluster worker_;
  unsigned last_status_ = 0;
  std::string last_reason_;
};

inline Spec weights(std::vector<uint32_t> w, std::string strategy = "round_robin") {
  Spec s;
  s.strategy = std::move(strategy);
  s.weights = std::move(w);
  return s;
}

}  // namespace switchyard::balancer::testing
