#pragma once

// The access log: one line per request, formatted on the worker into a per-worker ring and
// written to stdout by one writer thread, so that a worker never makes a syscall or takes a
// lock for it and a stdout that stops being read never stalls a request: when a worker's ring
// is full its lines are dropped and counted (switchyard_access_log_dropped_total).

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string_view>
#include <thread>
#include <vector>

#include "switchyard/config/config.h"
#include "switchyard/proxy/stats.h"

namespace switchyard::proxy {

struct AccessEntry {
  std::string_view listener;
  std::string_view client;
  std::string_view method;
  std::string_view target;
  unsigned version = 11;
  unsigned status = 0;
  uint64_t bytes_sent = 0;  // response body bytes
  std::string_view cluster;
  std::string_view endpoint;
  std::chrono::steady_clock::duration duration{};
  // Hedged requests: "sent" (a backup try went out, the first try answered) or "won" (the
  // backup answered); empty when no backup was sent. Shown only when not empty.
  std::string_view hedge;
};

// A single-producer, single-consumer byte ring of whole lines.
class LineRing {
 public:
  explicit LineRing(size_t capacity);
  // Producer: false (nothing written) if the line does not fit now.
  bool push(std::string_view line);
  // Consumer: the readable bytes as up to two spans; then consume(n).
  size_t readable(std::string_view* first, std::string_view* second) const;
  void consume(size_t n);

 private:
  std::unique_ptr<char[]> data_;
  size_t capacity_;
  alignas(64) std::atomic<uint64_t> head_{0};  // written by the producer
  alignas(64) std::atomic<uint64_t> tail_{0};  // written by the consumer
};

// The writer thread and one ring per worker. Constructed before the workers start, destroyed
// after they stopped (it then writes what is left).
class AccessLogWriter {
 public:
  explicit AccessLogWriter(size_t rings);
  ~AccessLogWriter();
  LineRing& ring(size_t i) { return *rings_[i]; }

 private:
  void run();
  size_t drain();

  std::vector<std::unique_ptr<LineRing>> rings_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A worker's side: formats entries and hands them to its ring. Worker thread only.
class AccessLog {
 public:
  AccessLog(LineRing* ring, StatsRegistry* stats) : ring_(ring), stats_(stats) {}
  void append(const AccessEntry& entry, config::AccessLogFormat format);

 private:
  LineRing* ring_;
  StatsRegistry* stats_;
  fmt::memory_buffer line_;
  int64_t cached_second_ = -1;
  char cached_time_[32] = {};
};

}  // namespace switchyard::proxy
