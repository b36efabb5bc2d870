#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace switchyard::balancer {

// One `endpoint-load-metrics` header (ORCA's load report, DESIGN.md "Backend load reports"):
//   TEXT cpu_utilization=0.31, mem_utilization=0.52, named_metrics.queue=3
//   JSON {"cpu_utilization":0.31,"mem_utilization":0.52,"named_metrics":{"queue":3}}
// Every value is finite and >= 0, clamped to 1. Fields switchyard does not use
// (rps_fractional, eps, named_metrics.*, utilization.*, request_cost.*) are validated and
// counted, then dropped; unknown well-formed keys are ignored, so a backend that reports a
// newer ORCA field is not rejected.
struct LoadReport {
  std::optional<double> cpu;          // cpu_utilization
  std::optional<double> memory;       // mem_utilization
  std::optional<double> application;  // application_utilization (preferred over cpu, as Envoy)
  std::optional<double> rps_fractional;
  std::optional<double> eps;
  uint32_t other_metrics = 0;  // named_metrics.*, utilization.*, request_cost.*

  // The CPU figure the score uses: application_utilization when the backend sends a positive
  // one, else cpu_utilization.
  std::optional<double> cpu_for_score() const {
    if (application && *application > 0) return application;
    return cpu;
  }
};

// Outcome of parsing, also the `result` label of switchyard_load_reports_total.
enum class LoadReportResult : uint8_t {
  kOk,
  kMalformed,     // unknown format (BIN included), bad syntax, too long, too many items
  kInvalidValue,  // NaN, +-inf, negative, not a number
  kDuplicate,     // a key given twice
};

std::string_view to_string(LoadReportResult result);

// Pure; no allocation for TEXT, a bounded stack buffer for JSON. Headers over 4 KiB or with
// more than 64 items are malformed.
LoadReportResult parse_load_report(std::string_view header, LoadReport& out);

// `endpoint-load-metrics-bin` (gRPC binary metadata: base64, padding optional): a protobuf
// OrcaLoadReport, decoded by hand, strictly: fields 1 cpu, 2 mem, 6 rps_fractional, 7 eps,
// 9 application_utilization (doubles), 4/5/8 maps of string to double (counted), others
// skipped by wire type; a known field of the wrong wire type, a truncated field, a group or a
// repeated scalar is refused. At most 4 KiB decoded and 64 items. Pure, no allocation.
LoadReportResult parse_load_report_bin(std::string_view value, LoadReport& out);

// The two ways a report arrives (response headers or trailers).
enum class LoadReportFormat : uint8_t { kHeader, kBinary };

}  // namespace switchyard::balancer
