#include "load_model.h"

#include <algorithm>

#include "policies/common/costs.h"

namespace switchyard::balancer::resource_aware {

void Config::describe(config::BlockFields& out) const {
  out.number("cpu_weight", cpu_weight);
  out.number("memory_weight", memory_weight);
  out.number("connection_weight", connection_weight);
  out.number("connection_capacity", connection_capacity);
  out.text("max_report_age", format_duration(max_report_age));
  out.text("score", score == Score::kFused ? "fused" : "seed");
  out.text("weights", weights == Weights::kAdaptive ? "adaptive" : "static");
  if (weights == Weights::kAdaptive) {
    out.text("learning.window", format_duration(learning.window));
    out.number("learning.min_samples", learning.min_samples);
    out.text("learning.smoothing", format_duration(learning.smoothing));
    out.number("learning.min_weight", learning.min_weight);
    out.number("learning.max_weight", learning.max_weight);
  }
}

namespace {

const config::BlockSpec<Config::Learning>& learning_spec() {
  static const config::BlockSpec<Config::Learning> spec{
      {
          {"window",
           [](const config::Value& x, Config::Learning& l) {
             if (x.duration(&l.window) && l.window < std::chrono::seconds(1)) {
               x.error("must be at least 1s");
             }
           }},
          {"min_samples",
           [](const config::Value& x, Config::Learning& l) {
             x.integer<uint32_t>(&l.min_samples, 10, 100'000);
           }},
          {"smoothing", [](const config::Value& x,
                           Config::Learning& l) { x.duration(&l.smoothing, /*allow_zero=*/true); }},
          {"min_weight",
           [](const config::Value& x, Config::Learning& l) { x.number(&l.min_weight, 0, 0.33); }},
          {"max_weight",
           [](const config::Value& x, Config::Learning& l) { x.number(&l.max_weight, 0.34, 1); }},
      },
  };
  return spec;
}

}  // namespace

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
            {"weights",
             [](const config::Value& x, Config& c) {
               x.choice(&c.weights, {{"static", Config::Weights::kStatic},
                                     {"adaptive", Config::Weights::kAdaptive}});
             }},
            {"learning", [](const config::Value& x,
                            Config& c) { config::read_block(x, learning_spec(), c.learning); }},
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

LoadModel::LoadModel(const Config& cfg, const LearnedWeights* learned)
    : static_(cfg.static_weights()),
      learned_(cfg.weights == Config::Weights::kAdaptive ? learned : nullptr),
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

void LoadModel::signals(const EndpointRef& ref, int64_t now_ns, double* cpu, double* memory) const {
  const auto& s = *ref.load;
  const auto& ep = *ref.endpoint;
  *cpu = ep.base_cpu;
  *memory = ep.base_memory;
  const int64_t at = s.report_at_ns.load(std::memory_order_relaxed);
  if (at == 0) return;
  const double weight = influence(now_ns - at);
  double slope = s.cpu_per_request.load(std::memory_order_relaxed);
  if (slope < 0) slope = 1.0 / (capacity_ * ep.weight);  // prior: capacity requests fill a CPU
  const auto since = static_cast<double>(s.active_requests.load(std::memory_order_relaxed) -
                                         s.report_active.load(std::memory_order_relaxed));
  const double predicted =
      std::clamp(s.report_cpu.load(std::memory_order_relaxed) + slope * since, 0.0, 1.0);
  *cpu += weight * (predicted - *cpu);
  *memory += weight * (s.report_memory.load(std::memory_order_relaxed) - *memory);
}

LoadEstimate LoadModel::estimate(const EndpointRef& ref, int64_t now_ns) const {
  LoadEstimate e;
  signals(ref, now_ns, &e.cpu, &e.memory);
  const int64_t active = ref.load->active_requests.load(std::memory_order_relaxed);
  e.connections =
      static_cast<double>(std::max<int64_t>(active, 0)) / (capacity_ * ref.endpoint->weight);
  const int64_t at = ref.load->report_at_ns.load(std::memory_order_relaxed);
  if (at != 0) e.report_age_s = static_cast<double>(std::max<int64_t>(now_ns - at, 0)) / 1e9;
  const double health = std::max(ref.breaker->health_score.load(std::memory_order_relaxed), 0.01);
  const ResourceWeights w = weights();
  e.score = (e.cpu * w.cpu + e.memory * w.memory + e.connections * w.connections) / health;
  return e;
}

double LoadModel::score(const EndpointRef& ref, int64_t now_ns) const {
  double cpu = 0;
  double memory = 0;
  signals(ref, now_ns, &cpu, &memory);
  const int64_t active = ref.load->active_requests.load(std::memory_order_relaxed);
  const double connections =
      static_cast<double>(std::max<int64_t>(active, 0)) / (capacity_ * ref.endpoint->weight);
  const double health = std::max(ref.breaker->health_score.load(std::memory_order_relaxed), 0.01);
  const ResourceWeights w = weights();
  return (cpu * w.cpu + memory * w.memory + connections * w.connections) / health;
}

LoadEstimate LoadModel::describe(const EndpointRef& ref, int64_t now_ns) const {
  LoadEstimate e = estimate(ref, now_ns);
  const auto& s = *ref.load;
  e.latency_ms = s.latency_estimate(now_ns);
  e.latency_cost = latency_cost(e.latency_ms, 0, s.active_requests.load(std::memory_order_relaxed),
                                effective_weight(ref));
  e.fused_cost = fused_cost(e.latency_cost, e.score);
  return e;
}

}  // namespace switchyard::balancer::resource_aware
