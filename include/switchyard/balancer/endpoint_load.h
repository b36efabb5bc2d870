#pragma once

// The balancer's own state of one endpoint: requests in flight, the last load report applied,
// and measured latencies. Owned by the balancer module (control::Runtime keeps one per endpoint
// key across reloads); read by every pick and written by whichever worker or health check saw
// a response. Only relaxed atomics: readers need a recent value, not a consistent cut.

#include <atomic>
#include <cstdint>
#include <string_view>

#include "switchyard/balancer/load_report.h"

namespace switchyard::balancer {

// Monotonic nanoseconds (steady clock): the time base of load reports.
int64_t steady_now_ns();

struct alignas(64) EndpointLoad {
  std::atomic<int64_t> active_requests{0};
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
