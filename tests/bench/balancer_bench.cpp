// Pick cost of the built-in strategies over 10, 100 and 1,000 healthy endpoints.
#include <benchmark/benchmark.h>

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

}  // namespace

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
