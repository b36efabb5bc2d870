#include "switchyard/balancer/policy.h"

namespace switchyard::balancer {

WorkerLbState::WorkerLbState(size_t endpoints, uint64_t seed)
    : rng(seed), current_weight(endpoints, 0) {}

uint64_t WorkerLbState::next_random() {
  uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

const Policy* PolicyRegistry::find(std::string_view name) const {
  for (const auto& p : policies_) {
    if (p->name() == name) return p.get();
  }
  return nullptr;
}

config::Schema PolicyRegistry::schema() const {
  config::Schema s;
  for (const auto& p : policies_) {
    s.strategies.emplace_back(p->name());
    for (auto& block : p->blocks()) s.cluster_blocks.push_back(std::move(block));
  }
  return s;
}

const config::Schema& schema() {
  static const config::Schema s = policies().schema();
  return s;
}

}  // namespace switchyard::balancer
