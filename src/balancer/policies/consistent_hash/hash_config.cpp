#include "hash_config.h"

namespace switchyard::balancer::hashing {
namespace {

constexpr uint64_t kMaxRingPoints = 10'000'000;

const config::BlockSpec<Config> kSpec{{
    {"key", [](const config::Value& v, Config& c) { v.hash_key(&c.key); }},
    {"virtual_nodes",
     [](const config::Value& v, Config& c) { v.integer<uint32_t>(&c.virtual_nodes, 1, 10000); }},
    {"ring_probes",
     [](const config::Value& v, Config& c) { v.integer<uint32_t>(&c.ring_probes, 1, 64); }},
    {"seed", [](const config::Value& v, Config& c) { v.string(&c.seed); }},
    {"bounded_load",
     [](const config::Value& v, Config& c) {
       if (v.number(&c.bounded_load, 0, 100) && c.bounded_load != 0 && c.bounded_load < 1) {
         v.error("must be 0 (off) or at least 1.0");
       }
     }},
    {"on_missing_key",
     [](const config::Value& v, Config& c) {
       v.choice(&c.on_missing_key,
                {{"random", OnMissingKey::kRandom}, {"reject", OnMissingKey::kReject}});
     }},
}};

}  // namespace

void Config::describe(config::BlockFields& out) const {
  out.text("key", key.to_string());
  out.number("virtual_nodes", virtual_nodes);
  out.number("ring_probes", ring_probes);
  out.text("seed", seed.empty() ? "" : "<redacted>");
  out.number("bounded_load", bounded_load);
  out.text("on_missing_key", on_missing_key == OnMissingKey::kReject ? "reject" : "random");
}

config::ClusterBlockReader block_reader() {
  config::ClusterBlockReader reader;
  reader.key = kBlock;
  reader.read = [](const config::Value& v) -> std::shared_ptr<const config::Block> {
    auto out = std::make_shared<Config>();
    config::read_block(v, kSpec, *out);
    return out;
  };
  // A consistent_hash ring has virtual_nodes x weight points per endpoint: bounded, so that
  // one typo cannot exhaust memory.
  reader.check = [](const config::Value& endpoints, const config::Cluster& cluster) {
    if (cluster.strategy != "consistent_hash") return;
    uint64_t points = 0;
    for (const auto& ep : cluster.endpoints)
      points += uint64_t(ep.weight) * config_of(cluster).virtual_nodes;
    if (points > kMaxRingPoints) {
      endpoints.error("hash ring would have " + std::to_string(points) +
                      " points (virtual_nodes x weights); the limit is " +
                      std::to_string(kMaxRingPoints));
    }
  };
  return reader;
}

const Config& config_of(const config::Cluster& cluster) {
  static const Config defaults;
  const config::Block* b = cluster.block(kBlock);
  return b ? static_cast<const Config&>(*b) : defaults;
}

PolicyTraits traits_of(const config::Cluster& cluster) {
  const auto& hash = config_of(cluster);
  PolicyTraits t;
  t.hash_key = &hash.key;
  t.reject_missing_key = hash.on_missing_key == OnMissingKey::kReject;
  t.bounded_load = hash.bounded_load;
  t.zones = false;
  t.timed_build = true;
  return t;
}

uint64_t key_hash(const SipKey& key, const PickInput& in, WorkerLbState& lb) {
  constexpr size_t kMaxKeyBytes = 256;
  if (!in.has_hash_key) return lb.next_random();  // on_missing_key: random
  return siphash13(key, in.hash_key.substr(0, kMaxKeyBytes));
}

}  // namespace switchyard::balancer::hashing
