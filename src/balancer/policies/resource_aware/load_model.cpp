#include "load_model.h"

#include <algorithm>

#include "../peak_ewma/peak_ewma.h"
#include "resource_aware.h"

namespace switchyard::balancer::resource_aware {

void Config::describe(config::BlockFields& out) const {
  out.number("cpu_weight", cpu_weight);
  out.number("memory_weight", memory_weight);
  out.number("connection_weight", connection_weight);
  out.number("connection_capacity", connection_capacity);
  out.text("max_report_age", format_duration(max_report_age));
  out.text("score", score == Score::kFused ? "fused" : "seed");
}

config::ClusterBlockReader block_reader() {
  config::ClusterBlockReader reader;
  reader.key = kBlock;
  reader.read = [](const config::Value& v) -> std::shared_ptr<const config::Block> {
    static const config::BlockSpec<Config> spec{
        {
            {"cpu_weight",
             [](const config::Value& x, Config& c) { x.number(&c.cpu_weight, 0, 1000); }},
            {"memory_weight",
             [](const config::Value& x, Config& c) { x.number(&c.memory_weight, 0, 1000); }},
            {"connection_weight",
             [](const config::Value& x, Config& c) { x.number(&c.connection_weight, 0, 1000); }},
            {"connection_capacity",
             [](const config::Value& x, Config& c) {
               x.integer<uint32_t>(&c.connection_capacity, 1, 10'000'000);
             }},
            {"score",
             [](const config::Value& x, Config& c) {
               x.choice(&c.score,
                        {{"fused", Config::Score::kFused}, {"seed", Config::Score::kSeed}});
             }},
            {"max_report_age",
             [](const config::Value& x, Config& c) {
               if (x.duration(&c.max_report_age) &&
                   c.max_report_age < std::chrono::milliseconds(100)) {
                 x.error("must be at least 100ms");
               }
             }},
        },
        [](const config::Value& block, Config& c) {
          if (block.node().IsMap() && c.cpu_weight + c.memory_weight + c.connection_weight <= 0) {
            block.reader().error(block.node(), block.path() + ".cpu_weight",
                                 "the three weights must not all be 0");
          }
        }};
    auto out = std::make_shared<Config>();
    config::read_block(v, spec, *out);
    return out;
  };
  return reader;
}

const Config& config_of(const config::Cluster& cluster) {
  static const Config defaults;
  const config::Block* b = cluster.block(kBlock);
  return b ? static_cast<const Config&>(*b) : defaults;
}

LoadModel::LoadModel(const Config& cfg)
    : cpu_weight_(cfg.cpu_weight),
      memory_weight_(cfg.memory_weight),
      connection_weight_(cfg.connection_weight),
      capacity_(std::max<double>(1, cfg.connection_capacity)),
      max_age_ns_(std::max<double>(
          1,
          static_cast<double>(
              std::chrono::duration_cast<std::chrono::nanoseconds>(cfg.max_report_age).count()))) {}

double LoadModel::influence(int64_t age_ns) const {
  double x = static_cast<double>(std::max<int64_t>(age_ns, 0)) / max_age_ns_;
  double x2 = x * x;
  return 1.0 / (1.0 + x2 * x2);
}

bool LoadModel::stale(const EndpointLoad& s, int64_t now_ns) const {
  const int64_t at = s.report_at_ns.load(std::memory_order_relaxed);
  return at == 0 || static_cast<double>(now_ns - at) > max_age_ns_ / 2;
}

LoadEstimate LoadModel::estimate(const EndpointRef& ref, int64_t now_ns) const {
  const auto& s = *ref.load;
  const auto& ep = *ref.endpoint;
  LoadEstimate e;
  const int64_t active = s.active_requests.load(std::memory_order_relaxed);
  const double capacity = capacity_ * ep.weight;
  e.connections = static_cast<double>(std::max<int64_t>(active, 0)) / capacity;
  e.cpu = ep.base_cpu;
  e.memory = ep.base_memory;
  const int64_t at = s.report_at_ns.load(std::memory_order_relaxed);
  if (at != 0) {
    const int64_t age = now_ns - at;
    e.report_age_s = static_cast<double>(std::max<int64_t>(age, 0)) / 1e9;
    const double weight = influence(age);
    double slope = s.cpu_per_request.load(std::memory_order_relaxed);
    if (slope < 0) slope = 1.0 / capacity;  // prior: connection_capacity requests fill a CPU
    const int64_t since = active - s.report_active.load(std::memory_order_relaxed);
    const double predicted = std::clamp(
        s.report_cpu.load(std::memory_order_relaxed) + slope * static_cast<double>(since), 0.0,
        1.0);
    e.cpu += weight * (predicted - e.cpu);
    e.memory += weight * (s.report_memory.load(std::memory_order_relaxed) - e.memory);
  }
  const double health = std::max(ref.breaker->health_score.load(std::memory_order_relaxed), 0.01);
  e.score = (e.cpu * cpu_weight_ + e.memory * memory_weight_ + e.connections * connection_weight_) /
            health;
  return e;
}

double LoadModel::score(const EndpointRef& ref, int64_t now_ns) const {
  const auto& s = *ref.load;
  const auto& ep = *ref.endpoint;
  const int64_t active = s.active_requests.load(std::memory_order_relaxed);
  const double capacity = capacity_ * ep.weight;
  double cpu = ep.base_cpu;
  double memory = ep.base_memory;
  const int64_t at = s.report_at_ns.load(std::memory_order_relaxed);
  if (at != 0) {
    const double weight = influence(now_ns - at);
    double slope = s.cpu_per_request.load(std::memory_order_relaxed);
    if (slope < 0) slope = 1.0 / capacity;
    const auto since =
        static_cast<double>(active - s.report_active.load(std::memory_order_relaxed));
    const double predicted =
        std::clamp(s.report_cpu.load(std::memory_order_relaxed) + slope * since, 0.0, 1.0);
    cpu += weight * (predicted - cpu);
    memory += weight * (s.report_memory.load(std::memory_order_relaxed) - memory);
  }
  const double connections = static_cast<double>(std::max<int64_t>(active, 0)) / capacity;
  const double health = std::max(ref.breaker->health_score.load(std::memory_order_relaxed), 0.01);
  return (cpu * cpu_weight_ + memory * memory_weight_ + connections * connection_weight_) / health;
}

LoadEstimate LoadModel::describe(const EndpointRef& ref, int64_t now_ns) const {
  LoadEstimate e = estimate(ref, now_ns);
  const auto& s = *ref.load;
  e.latency_ms = s.peak.estimate(now_ns, s.awaiting_head.load(std::memory_order_relaxed));
  e.latency_cost = peak_ewma::cost(
      e.latency_ms, 0, s.active_requests.load(std::memory_order_relaxed), effective_weight(ref));
  e.fused_cost = fused_cost(e.latency_cost, e.score);
  return e;
}

}  // namespace switchyard::balancer::resource_aware
