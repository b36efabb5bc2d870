// Cost of a pick through the balancer's front door (pick + release, what a request pays) for
// the built-in policies over 10, 100 and 1,000 healthy endpoints; build time and size of the
// hash ring and the Maglev table.
#include <benchmark/benchmark.h>

#include "balancer/policies/consistent_hash/ring.h"
#include "balancer/policies/maglev/maglev.h"
#include "switchyard/balancer/front_door.h"
#include "switchyard/config/loader.h"
#include "switchyard/registry/registry.h"

namespace {

using namespace switchyard;

// One cluster of n endpoints 10.0.0.i:80 (weights 1..4 when weighted), its front door and the
// module states it reads.
struct Bench {
  Bench(size_t n, const std::string& strategy, bool weighted, const std::string& blocks = "") {
    std::string yaml =
        "listeners:\n  - name: in\n    listen: 127.0.0.1:0\n    routes: [ { cluster: app } ]\n"
        "clusters:\n  - name: app\n    strategy: " +
        strategy + "\n" + (blocks.empty() ? "" : "    " + blocks + "\n") +
        "    circuit_breaker: { max_pending_requests: 1000000 }\n    endpoints:\n";
    for (size_t i = 0; i < n; ++i) {
      yaml += "      - { address: \"10." + std::to_string(i / 250) + ".0." +
              std::to_string(i % 250) +
              ":80\", weight: " + std::to_string(weighted ? 1 + i % 4 : 1) + " }\n";
    }
    auto r = config::load_string(yaml, "bench.yaml", balancer::schema());
    if (!r.ok()) throw std::runtime_error(r.errors[0].to_string());
    config = r.config;
    snapshot = registry.build(config);
    balancer::ClusterBalancer::Owned owned;
    for (size_t i = 0; i < n; ++i) {
      owned.health.push_back(std::make_shared<health::EndpointHealth>());
      owned.breakers.push_back(std::make_shared<breaker::EndpointBreaker>());
      owned.loads.push_back(std::make_shared<balancer::EndpointLoad>());
    }
    front = std::make_unique<balancer::ClusterBalancer>(
        snapshot->clusters[0], *balancer::policies().find(strategy), std::move(owned),
        std::make_shared<balancer::ClusterState>(), std::make_shared<balancer::ClusterStats>(),
        nullptr);
    front->tick();
    front->prepare(worker, 42);
  }
  void pick(const balancer::PickRequest& req) {
    balancer::PickMemo memo;
    balancer::Pick p;
    front->pick(req, memo, worker, p);
    benchmark::DoNotOptimize(p.ref);
    front->release(p);
  }

  std::shared_ptr<const config::Config> config;
  registry::Registry registry;
  std::shared_ptr<const registry::Membership> snapshot;
  std::unique_ptr<balancer::ClusterBalancer> front;
  balancer::WorkerCluster worker;
};

void pick(benchmark::State& state, const char* strategy, bool weighted) {
  Bench b(static_cast<size_t>(state.range(0)), strategy, weighted);
  balancer::PickRequest req;
  for (auto _ : state) b.pick(req);
}

// Hashing policies: each pick hashes one of 1,024 distinct keys ("user-N"). probes only
// matters to the ring (hash.ring_probes: 8 by default, 1 = the classic single lookup).
void pick_hashed(benchmark::State& state, const char* strategy, uint32_t probes) {
  Bench b(static_cast<size_t>(state.range(0)), strategy, false,
          "hash: { key: \"header:K\", seed: bench, ring_probes: " + std::to_string(probes) + " }");
  std::vector<std::string> keys;
  for (int i = 0; i < 1024; ++i) keys.push_back("user-" + std::to_string(i));
  balancer::PickRequest req;
  req.has_hash_key = true;
  size_t i = 0;
  for (auto _ : state) {
    req.hash_key = keys[i++ & 1023];
    b.pick(req);
  }
}

// Build of the ring (1,000 endpoints x 160 virtual nodes) and of the Maglev table for 1,000
// endpoints (the control thread's work on a reload); bytes as a counter.
template <typename T>
void build_hashed(benchmark::State& state) {
  Bench b(1000, "consistent_hash", false, "hash: { key: \"header:K\", seed: bench }");
  size_t bytes = 0;
  for (auto _ : state) {
    T table(b.front->config(), b.front->members());
    bytes = table.memory_bytes();
    benchmark::DoNotOptimize(bytes);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}

// Latency-aware picks with every endpoint measured (a latency sample and a load report each):
// what a request pays once traffic has flowed. Two draws and two cost reads, whatever n.
void pick_measured(benchmark::State& state, const char* strategy, const char* blocks,
                   bool weighted) {
  Bench b(static_cast<size_t>(state.range(0)), strategy, weighted, blocks);
  const int64_t now = balancer::steady_now_ns();
  for (const auto& m : b.front->members()) {
    m.load->peak.observe(1.0 + static_cast<double>(m.index % 7), now);
    balancer::LoadReport report;
    report.cpu = 0.1 * static_cast<double>(m.index % 9);
    report.memory = 0.3;
    balancer::apply_load_report(*m.load, report, now);
  }
  // The attempt reads the clock once per try for its start time and hands it to the pick.
  balancer::PickRequest req;
  req.now_ns = now;
  for (auto _ : state) b.pick(req);
}

}  // namespace

BENCHMARK_CAPTURE(pick_hashed, consistent_hash, "consistent_hash", 8)->Arg(10)->Arg(100)->Arg(1000);
BENCHMARK_CAPTURE(pick_hashed, consistent_hash_1_probe, "consistent_hash", 1)
    ->Arg(10)
    ->Arg(100)
    ->Arg(1000);
BENCHMARK_CAPTURE(pick_hashed, maglev, "maglev", 1)->Arg(10)->Arg(100)->Arg(1000);
BENCHMARK_TEMPLATE(build_hashed, balancer::hashing::HashRing)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(build_hashed, balancer::maglev::Table)->Unit(benchmark::kMillisecond);

BENCHMARK_CAPTURE(pick, round_robin, "round_robin", false)->Arg(10)->Arg(100)->Arg(1000);
BENCHMARK_CAPTURE(pick, round_robin_weighted, "round_robin", true)->Arg(10)->Arg(100)->Arg(1000);
BENCHMARK_CAPTURE(pick, random_weighted, "random", true)->Arg(10)->Arg(100)->Arg(1000);
BENCHMARK_CAPTURE(pick, least_request_weighted, "least_request", true)
    ->Arg(10)
    ->Arg(100)
    ->Arg(1000);
// Every endpoint scored up to 32, 16 random samples beyond (no reports: base values).
BENCHMARK_CAPTURE(pick, resource_aware, "resource_aware", false)->Arg(10)->Arg(100)->Arg(1000);
// Latency-aware (issue 23): peak_ewma and resource_aware's fused pick are two draws and two
// cost computations (equal weights: uniform draws; weighted: prefix sums and a binary search);
// the seed pick scores every endpoint up to 32.
BENCHMARK_CAPTURE(pick_measured, peak_ewma, "peak_ewma", "", false)->Arg(10)->Arg(100)->Arg(1000);
BENCHMARK_CAPTURE(pick_measured, peak_ewma_weighted, "peak_ewma", "", true)
    ->Arg(10)
    ->Arg(100)
    ->Arg(1000);
BENCHMARK_CAPTURE(pick_measured, resource_aware_fused, "resource_aware", "", false)
    ->Arg(10)
    ->Arg(100)
    ->Arg(1000);
BENCHMARK_CAPTURE(pick_measured, resource_aware_seed, "resource_aware",
                  "resource_aware: { score: seed }", false)
    ->Arg(10)
    ->Arg(100)
    ->Arg(1000);
