#pragma once

// The balancer's own state of one endpoint: requests in flight, the last load report applied,
// and measured latencies. Owned by the balancer module (control::Runtime keeps one per endpoint
// key across reloads); read by every pick and written by whichever worker or health check saw
// a response. Only relaxed atomics: readers need a recent value, not a consistent cut.

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "switchyard/balancer/load_report.h"

namespace switchyard::balancer {

// Monotonic nanoseconds (steady clock): the time base of load reports.
int64_t steady_now_ns();

// A peak-EWMA latency estimate (Finagle's and Linkerd's "peak EWMA", Twitter 2016; tower's
// load::PeakEwma): a sample above the estimate replaces it at once (a pause or a queue shows
// in the next pick), one below pulls it down with weight 1 - exp(-elapsed / decay), and with no
// samples it decays toward 0 (read without writing), so an endpoint that stopped being picked
// is tried again. Failures (5xx, 429, connect failures, resets, timeouts) are samples of
// penalty_ms (at least kFailurePenaltyMs, and kFailurePenaltyFactor times the estimate): an
// endpoint that fails fast looks slow, as Linkerd's failure accrual and gRPC's weighted round
// robin error penalty make it. Relaxed atomics, any thread: two samples racing may lose one,
// which an estimate tolerates.
struct PeakEwma {
  static constexpr double kDecayNs = 5e9;             // 5 s
  static constexpr double kFailurePenaltyMs = 100.0;  // a failure costs at least this
  static constexpr double kFailurePenaltyFactor = 8.0;

  std::atomic<double> ms{-1};  // -1: no sample yet
  std::atomic<int64_t> at_ns{0};

  // The estimate at now_ns, or -1 before the first sample. With no request waiting for its
  // head, it has decayed since its last sample. With some waiting, no news is not good news:
  // the time since the endpoint last answered is a lower bound on what they take, so the
  // estimate is at least that (an endpoint that stops answering, a black hole or a pause,
  // costs more with every millisecond of silence instead of decaying toward 0).
  double estimate(int64_t now_ns, int64_t awaiting_heads = 0) const {
    const double v = ms.load(std::memory_order_relaxed);
    if (v < 0) return v;
    const int64_t silent_ns = now_ns - at_ns.load(std::memory_order_relaxed);
    if (awaiting_heads > 0) return std::max(v, static_cast<double>(silent_ns) / 1e6);
    return v * decay(silent_ns);
  }
  void observe(double sample_ms, int64_t now_ns) {
    const double v = ms.load(std::memory_order_relaxed);
    double next = sample_ms;
    if (v >= 0 && sample_ms < v) {
      const double w = decay(now_ns - at_ns.load(std::memory_order_relaxed));
      next = v * w + sample_ms * (1 - w);
    }
    ms.store(next, std::memory_order_relaxed);
    at_ns.store(now_ns, std::memory_order_relaxed);
  }
  void observe_failure(int64_t now_ns) {
    const double e = estimate(now_ns);
    observe(std::max(kFailurePenaltyMs, kFailurePenaltyFactor * std::max(e, 0.0)), now_ns);
  }
  // exp(-elapsed / kDecayNs), approximated (a rational function within 1% of it where it
  // matters, x < 3, and falling to 0 beyond): an estimate needs no more, and a pick reads two.
  static double decay(int64_t elapsed_ns) {
    if (elapsed_ns <= 0) return 1.0;
    const double x = static_cast<double>(elapsed_ns) / kDecayNs;
    // 1 / (1 + x + x^2/2 + x^3/6 + x^4/24): the reciprocal of exp's Taylor polynomial.
    return 1.0 / (1.0 + x * (1.0 + x * (0.5 + x * (1.0 / 6 + x * (1.0 / 24)))));
  }
};

// An endpoint's recent history as predictive locality reads it (README, "Predictive
// geographic routing"); control thread only.
struct EndpointTrend {
  static constexpr size_t kTicks = 20;  // 2 s of 100 ms ticks: the trend's window
  std::array<float, kTicks> latency{};  // latency_ms per tick (a ring)
  uint32_t filled = 0;                  // ticks recorded (saturates at a large number)
  uint32_t next = 0;                    // ring position
  uint64_t seen_successes = 0;          // the breaker's totals at the last tick
  uint64_t seen_failures = 0;
  double error_rate = 0;      // EWMA of the failure share per tick
  double baseline_ms = -1;    // what this endpoint's latency normally is
  double slope_ms_per_s = 0;  // the trend: least squares over the window
  double predicted_ms = -1;   // latency + slope x horizon (slope >= 0 only)
  double health = 1;          // predicted health in [0, 1] (1: not failing)
};

struct alignas(64) EndpointLoad {
  std::atomic<int64_t> active_requests{0};
  // Of those, the tries still waiting for their response head (a stream that got its head is
  // in flight but no longer waiting): the latency estimate's silence rule counts only these.
  std::atomic<int64_t> awaiting_head{0};
  // The peak-EWMA latency estimate at now_ns with this endpoint's heads still awaited (the
  // silence rule), as every latency-aware pick reads it.
  double latency_estimate(int64_t now_ns) const {
    return peak.estimate(now_ns, awaiting_head.load(std::memory_order_relaxed));
  }
  // The applied load report (README, "Resource-aware balancing"). Fields may come from two
  // reports racing; the score tolerates that. report_at_ns == 0: no report yet.
  std::atomic<double> report_cpu{0};
  std::atomic<double> report_memory{0};
  std::atomic<int64_t> report_active{0};    // active_requests when the report arrived
  std::atomic<int64_t> report_at_ns{0};     // steady clock
  std::atomic<double> cpu_per_request{-1};  // learned; < 0 = not yet, use the prior
  std::atomic<uint64_t> reports{0};
  // When a stale endpoint may next get a refresh request (resource_aware; steady clock ns).
  std::atomic<int64_t> refresh_at_ns{0};
  // Round-trip time in ms, EWMA of health checks and response heads (the locality layer's
  // region latency); -1 until measured. Written without a CAS: a lost sample is harmless.
  std::atomic<double> latency_ms{-1};
  // Time to the response head of real requests only (checks do not queue behind the
  // endpoint's work), EWMA; -1 until measured. resource_aware's weights use it.
  std::atomic<double> response_ms{-1};
  // Peak EWMA of the time to the response head of real requests, failures as penalties: the
  // latency signal of peak_ewma and of resource_aware's fused score.
  PeakEwma peak;
  // Slow start (clusters[].slow_start): the share multiplier in (0, 1] while the endpoint
  // warms up after entering service, 1 otherwise. Written by the control thread's tick, read
  // by picks.
  std::atomic<double> warm_factor{1.0};
  // Real requests' response heads, their summed time (us) and summed in-flight count at the
  // head: the samples resource_aware's adaptive weights learn from (counted only by clusters
  // that learn).
  std::atomic<uint64_t> heads{0};
  std::atomic<uint64_t> head_us{0};
  std::atomic<uint64_t> head_active{0};

  // --- control thread only (ClusterBalancer::tick and control::Runtime) ---
  bool was_usable = false;         // at the last tick
  bool ever_usable = false;        // has been usable once
  bool warm_on_first_use = false;  // added after start-up: its first entry into service warms
  int64_t warm_since_ns = 0;       // when it last entered service (0: not warming)
  uint64_t learned_heads = 0;      // heads, head_us, head_active at the last learning tick
  uint64_t learned_us = 0;
  uint64_t learned_active = 0;
  EndpointTrend trend;

  void observe_latency(double ms) {
    double l = latency_ms.load(std::memory_order_relaxed);
    latency_ms.store(l < 0 ? ms : l + 0.2 * (ms - l), std::memory_order_relaxed);
  }
  void observe_response(double ms) {
    double l = response_ms.load(std::memory_order_relaxed);
    response_ms.store(l < 0 ? ms : l + 0.1 * (ms - l), std::memory_order_relaxed);
  }
};

// Applies a parsed report (any thread; relaxed atomics). A report moves the applied CPU and
// memory by at most kMaxStepPerReport each, so no single report (a GC pause reading 0, a
// glitch reading 1) can swing an endpoint from shunned to favourite: it takes two reports to
// cross the whole range (one second with checks every 500 ms). Two reports whose in-flight
// counts differ by 2 or more teach cpu_per_request (EWMA of the slope).
constexpr double kMaxStepPerReport = 0.4;
void apply_load_report(EndpointLoad& load, const LoadReport& report, int64_t now_ns);

// An endpoint-load-metrics header as received (on a response or a health check): parsed and,
// when valid, applied now. Returns the parse result, for switchyard_load_reports_total.
LoadReportResult receive_load_report(EndpointLoad& load, std::string_view header,
                                     LoadReportFormat format = LoadReportFormat::kHeader);

}  // namespace switchyard::balancer
