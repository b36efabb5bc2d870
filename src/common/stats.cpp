#include "switchyard/common/stats.h"

#include <algorithm>

namespace switchyard::stats {
namespace {
std::atomic<uint32_t> g_shards{1};
}  // namespace

namespace detail {
thread_local uint32_t tls_shard = 0;
}  // namespace detail

void set_shard_count(uint32_t shards) { g_shards.store(std::max(1u, shards)); }

uint32_t shard_count() { return g_shards.load(std::memory_order_relaxed); }

void set_thread_shard(uint32_t shard) { detail::tls_shard = shard < shard_count() ? shard : 0; }

CodeCounters::CodeCounters() {
  for (auto& s : slot_of_) s.store(kUnassigned, std::memory_order_relaxed);
}

void CodeCounters::add(unsigned code) {
  if (code >= slot_of_.size()) code = 0;
  uint8_t slot = slot_of_[code].load(std::memory_order_acquire);
  if (slot == kUnassigned) [[unlikely]] {
    // First sighting of this code: take the next slot, unless another thread just did.
    uint8_t fresh = next_slot_.fetch_add(1, std::memory_order_relaxed);
    if (fresh >= kSlots) {
      next_slot_.store(kSlots, std::memory_order_relaxed);
      fresh = kSlots;  // out of slots: counted under "other" (code 0)
      code = 0;
      slot = slot_of_[0].load(std::memory_order_acquire);
      if (slot == kUnassigned) {
        slot_of_[0].compare_exchange_strong(slot, kSlots, std::memory_order_acq_rel);
        slot = slot_of_[0].load(std::memory_order_acquire);
      }
    } else {
      uint8_t expected = kUnassigned;
      slot = slot_of_[code].compare_exchange_strong(expected, fresh, std::memory_order_acq_rel)
                 ? fresh
                 : expected;
    }
  }
  counts_.add(slot);
}

Histogram::Histogram(std::span<const double> bounds)
    : n_bounds_(std::min(bounds.size(), kMaxBuckets)),
      shards_(std::make_unique<Shard[]>(shard_count())) {
  for (size_t i = 0; i < n_bounds_; ++i) {
    bounds_[i] = bounds[i];
    bounds_ns_[i] = static_cast<uint64_t>(bounds[i] * 1e9);
  }
}

void Histogram::observe_ns(uint64_t ns) {
  size_t b = 0;
  while (b < n_bounds_ && ns > bounds_ns_[b]) ++b;  // le: at or below the bound
  auto& shard = shards_[thread_shard()];
  shard.buckets[b].fetch_add(1, std::memory_order_relaxed);
  shard.sum_ns.fetch_add(ns, std::memory_order_relaxed);
}

Histogram::Reading Histogram::read() const {
  Reading out;
  uint64_t sum_ns = 0;
  std::array<uint64_t, kMaxBuckets + 1> per{};
  for (uint32_t s = 0; s < shard_count(); ++s) {
    for (size_t b = 0; b <= n_bounds_; ++b) {
      per[b] += shards_[s].buckets[b].load(std::memory_order_relaxed);
    }
    sum_ns += shards_[s].sum_ns.load(std::memory_order_relaxed);
  }
  uint64_t running = 0;
  for (size_t b = 0; b <= n_bounds_; ++b) {
    running += per[b];
    out.cumulative[b] = running;
  }
  out.count = running;
  out.sum_seconds = static_cast<double>(sum_ns) / 1e9;
  return out;
}

}  // namespace switchyard::stats
