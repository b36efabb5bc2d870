// Pick cost of the built-in strategies over 10, 100 and 1,000 healthy endpoints; build time
// and size of the hash ring and the Maglev table.
#include <benchmark/benchmark.h>

#include "switchyard/balancer/hash_ring.h"
#include "switchyard/balancer/strategy.h"

namespace {

using namespace switchyard;

std::vector<registry::Endpoint> make_endpoints(size_t n, bool weighted) {
  std::vector<registry::Endpoint> endpoints(n);
  for (size_t i = 0; i < n; ++i) {
    endpoints[i].index = static_cast<uint32_t>(i);
    endpoints[i].address_text = "10.0.0." + std::to_string(i) + ":80";
    endpoints[i].weight = weighted ? static_cast<uint32_t>(1 + i % 4) : 1;
    endpoints[i].state = std::make_shared<registry::EndpointState>();
  }
  return endpoints;
}

void pick(benchmark::State& state, config::Strategy kind, bool weighted) {
  auto endpoints = make_endpoints(static_cast<size_t>(state.range(0)), weighted);
  config::Cluster cluster;
  cluster.strategy = kind;
  auto strategy = balancer::build_strategy(cluster, endpoints);
  balancer::WorkerLbState lb(endpoints.size(), 42);
  balancer::PickContext ctx;
  for (auto _ : state) benchmark::DoNotOptimize(strategy->pick(ctx, lb));
}

// Hashing strategies: each pick hashes one of 1,024 distinct keys ("user-N"). probes only
// matters to the ring (hash.ring_probes: 8 by default, 1 = the classic single lookup).
void pick_hashed(benchmark::State& state, config::Strategy kind, uint32_t probes) {
  auto endpoints = make_endpoints(static_cast<size_t>(state.range(0)), false);
  config::Cluster cluster;
  cluster.strategy = kind;
  cluster.hash.seed = "bench";
  cluster.hash.ring_probes = probes;
  auto strategy = balancer::build_strategy(cluster, endpoints);
  balancer::WorkerLbState lb(endpoints.size(), 42);
  std::vector<std::string> keys;
  for (int i = 0; i < 1024; ++i) keys.push_back("user-" + std::to_string(i));
  balancer::PickContext ctx;
  ctx.has_hash_key = true;
  size_t i = 0;
  for (auto _ : state) {
    ctx.hash_key = keys[i++ & 1023];
    benchmark::DoNotOptimize(strategy->pick(ctx, lb));
  }
}

// Build of the ring (1,000 endpoints x 160 virtual nodes) and of the Maglev table for 1,000
// endpoints (the control thread's work on a reload); bytes as a counter.
template <typename T>
void build_hashed(benchmark::State& state) {
  auto endpoints = make_endpoints(1000, false);
  config::Cluster cluster;
  cluster.hash.seed = "bench";
  size_t bytes = 0;
  for (auto _ : state) {
    T table(cluster, endpoints);
    bytes = table.memory_bytes();
    benchmark::DoNotOptimize(bytes);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}

}  // namespace

BENCHMARK_CAPTURE(pick_hashed, consistent_hash, config::Strategy::kConsistentHash, 8)
    ->Arg(10)
    ->Arg(100)
    ->Arg(1000);
BENCHMARK_CAPTURE(pick_hashed, consistent_hash_1_probe, config::Strategy::kConsistentHash, 1)
    ->Arg(10)
    ->Arg(100)
    ->Arg(1000);
BENCHMARK_CAPTURE(pick_hashed, maglev, config::Strategy::kMaglev, 1)->Arg(10)->Arg(100)->Arg(1000);
BENCHMARK_TEMPLATE(build_hashed, balancer::HashRing)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(build_hashed, balancer::Maglev)->Unit(benchmark::kMillisecond);

BENCHMARK_CAPTURE(pick, round_robin, config::Strategy::kRoundRobin, false)
    ->Arg(10)
    ->Arg(100)
    ->Arg(1000);
BENCHMARK_CAPTURE(pick, round_robin_weighted, config::Strategy::kRoundRobin, true)
    ->Arg(10)
    ->Arg(100)
    ->Arg(1000);
BENCHMARK_CAPTURE(pick, random_weighted, config::Strategy::kRandom, true)
    ->Arg(10)
    ->Arg(100)
    ->Arg(1000);
BENCHMARK_CAPTURE(pick, least_request_weighted, config::Strategy::kLeastRequest, true)
    ->Arg(10)
    ->Arg(100)
    ->Arg(1000);
// Every endpoint scored up to 32, 16 random samples beyond (no reports: base values).
BENCHMARK_CAPTURE(pick, resource_aware, config::Strategy::kResourceAware, false)
    ->Arg(10)
    ->Arg(100)
    ->Arg(1000);
