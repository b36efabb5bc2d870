#pragma once

// Lock-free statistics for the request path. Every counter and histogram is split into one
// shard per worker thread (plus shard 0 for every other thread), each on its own cache lines,
// so that an increment is an uncontended relaxed add on memory only this thread writes; a
// scrape sums the shards. No mutex anywhere (prometheus-cpp's Histogram::Observe takes one,
// which every worker would share). Exposition lives in the metrics module.

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>

namespace switchyard::stats {

// Shards are fixed when the process starts: set_shard_count(workers + 1) before any statistic
// is created; each worker thread calls set_thread_shard(its index + 1) once.
void set_shard_count(uint32_t shards);
uint32_t shard_count();
void set_thread_shard(uint32_t shard);

namespace detail {
extern thread_local uint32_t tls_shard;
}  // namespace detail

inline uint32_t thread_shard() { return detail::tls_shard; }

// N counters that are always incremented together by one owner (a cluster, an endpoint).
template <size_t N>
class Counters {
 public:
  Counters() : shards_(std::make_unique<Shard[]>(shard_count())) {}
  void add(size_t i, uint64_t n = 1) {
    shards_[thread_shard()].v[i].fetch_add(n, std::memory_order_relaxed);
  }
  uint64_t value(size_t i) const {
    uint64_t sum = 0;
    for (uint32_t s = 0; s < shard_count(); ++s) {
      sum += shards_[s].v[i].load(std::memory_order_relaxed);
    }
    return sum;
  }

 private:
  struct alignas(64) Shard {
    std::array<std::atomic<uint64_t>, N> v{};
  };
  std::unique_ptr<Shard[]> shards_;
};

// Counters by HTTP status code. The first time a code is seen it gets one of kSlots slots
// (a CAS on a table shared by all threads); codes beyond that count as "other" (code 0).
class CodeCounters {
 public:
  static constexpr size_t kSlots = 24;
  CodeCounters();
  void add(unsigned code);
  // Calls f(code, count) for every code seen, code 0 meaning "other".
  template <typename F>
  void for_each(F&& f) const {
    for (unsigned code = 0; code < slot_of_.size(); ++code) {
      uint8_t slot = slot_of_[code].load(std::memory_order_acquire);
      if (slot != kUnassigned) f(code, counts_.value(slot));
    }
  }

 private:
  static constexpr uint8_t kUnassigned = 0xff;
  std::array<std::atomic<uint8_t>, 600> slot_of_;
  std::atomic<uint8_t> next_slot_{0};
  Counters<kSlots + 1> counts_;  // slot kSlots: other
};

// A histogram with fixed upper bounds (seconds), cumulative on scrape. Observations are
// recorded in nanoseconds so the sum is exact.
class Histogram {
 public:
  static constexpr size_t kMaxBuckets = 20;
  explicit Histogram(std::span<const double> bounds);
  void observe_ns(uint64_t ns);

  struct Reading {
    std::array<uint64_t, kMaxBuckets + 1> cumulative{};  // per bound, then +Inf
    uint64_t count = 0;
    double sum_seconds = 0;
  };
  Reading read() const;
  std::span<const double> bounds() const { return {bounds_.data(), n_bounds_}; }

 private:
  struct alignas(64) Shard {
    std::array<std::atomic<uint64_t>, kMaxBuckets + 1> buckets{};
    std::atomic<uint64_t> sum_ns{0};
  };
  std::array<double, kMaxBuckets> bounds_{};
  std::array<uint64_t, kMaxBuckets> bounds_ns_{};
  size_t n_bounds_ = 0;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace switchyard::stats
