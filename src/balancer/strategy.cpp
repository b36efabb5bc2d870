#include "switchyard/balancer/strategy.h"

#include "switchyard/balancer/hash_ring.h"
#include "switchyard/balancer/least_request.h"
#include "switchyard/balancer/locality.h"
#include "switchyard/balancer/random.h"
#include "switchyard/balancer/resource_aware.h"
#include "switchyard/balancer/round_robin.h"

namespace switchyard::balancer {

WorkerLbState::WorkerLbState(size_t endpoints, uint64_t seed)
    : rng(seed), current_weight(endpoints, 0) {}

uint64_t WorkerLbState::next_random() {
  uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::unique_ptr<Strategy> build_strategy(const config::Cluster& cluster,
                                         const std::vector<Endpoint>& endpoints) {
  if (cluster.locality) return std::make_unique<Locality>(cluster, endpoints);
  switch (cluster.strategy) {
    case config::Strategy::kRandom:
      return std::make_unique<Random>(endpoints);
    case config::Strategy::kLeastRequest:
      return std::make_unique<LeastRequest>(endpoints);
    case config::Strategy::kRoundRobin:
      return std::make_unique<RoundRobin>(endpoints);
    case config::Strategy::kConsistentHash:
      return std::make_unique<HashRing>(cluster, endpoints);
    case config::Strategy::kMaglev:
      return std::make_unique<Maglev>(cluster, endpoints);
    case config::Strategy::kResourceAware:
      return std::make_unique<ResourceAware>(cluster, endpoints);
  }
  return std::make_unique<RoundRobin>(endpoints);
}

}  // namespace switchyard::balancer
