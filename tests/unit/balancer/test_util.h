#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "switchyard/balancer/strategy.h"

namespace switchyard::balancer::testing {

// Endpoints named "a", "b", "c"... with the given weights, all healthy.
inline std::vector<Endpoint> endpoints(std::vector<uint32_t> weights) {
  std::vector<Endpoint> out(weights.size());
  for (size_t i = 0; i < weights.size(); ++i) {
    out[i].index = static_cast<uint32_t>(i);
    out[i].address_text = std::string(1, static_cast<char>('a' + i));
    out[i].weight = weights[i];
    out[i].state = std::make_shared<registry::EndpointState>();
  }
  return out;
}

inline std::unique_ptr<Strategy> build(config::Strategy kind, const std::vector<Endpoint>& eps) {
  config::Cluster cluster;
  cluster.strategy = kind;
  return build_strategy(cluster, eps);
}

// The names of n consecutive picks, concatenated ("-" for none).
inline std::string sequence(const Strategy& s, WorkerLbState& lb, int n,
                            const PickContext& ctx = {}) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    const Endpoint* ep = s.pick(ctx, lb);
    out += ep ? ep->address_text : "-";
  }
  return out;
}

inline std::map<std::string, int> histogram(const Strategy& s, WorkerLbState& lb, int n) {
  std::map<std::string, int> counts;
  for (int i = 0; i < n; ++i) {
    const Endpoint* ep = s.pick({}, lb);
    counts[ep ? ep->address_text : "-"]++;
  }
  return counts;
}

}  // namespace switchyard::balancer::testing
