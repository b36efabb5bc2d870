#include "switchyard/balancer/endpoint_load.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace switchyard::balancer {
namespace {

constexpr double kSlopeAlpha = 0.2;
constexpr double kMaxSlope = 0.1;  // 10 requests in flight = a full CPU, at most

// Moves from toward to by at most kMaxStepPerReport.
double step_toward(double from, double to) {
  return from + std::clamp(to - from, -kMaxStepPerReport, kMaxStepPerReport);
}

}  // namespace

int64_t steady_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void apply_load_report(EndpointLoad& s, const LoadReport& report, int64_t now_ns) {
  const int64_t active = s.active_requests.load(std::memory_order_relaxed);
  const bool first = s.report_at_ns.load(std::memory_order_relaxed) == 0;
  if (auto cpu = report.cpu_for_score()) {
    const double before = s.report_cpu.load(std::memory_order_relaxed);
    if (!first) {
      const int64_t moved = active - s.report_active.load(std::memory_order_relaxed);
      if (moved >= 2 || moved <= -2) {
        double sample = std::clamp((*cpu - before) / static_cast<double>(moved), 0.0, kMaxSlope);
        double slope = s.cpu_per_request.load(std::memory_order_relaxed);
        slope = slope < 0 ? sample : slope + kSlopeAlpha * (sample - slope);
        s.cpu_per_request.store(slope, std::memory_order_relaxed);
      }
    }
    s.report_cpu.store(first ? *cpu : step_toward(before, *cpu), std::memory_order_relaxed);
  }
  if (report.memory) {
    const double before = s.report_memory.load(std::memory_order_relaxed);
    s.report_memory.store(first ? *report.memory : step_toward(before, *report.memory),
                          std::memory_order_relaxed);
  }
  if (first && !report.memory) {
    s.report_memory.store(0.5, std::memory_order_relaxed);  // unknown: neutral
  }
  if (first && !report.cpu_for_score()) s.report_cpu.store(0.5, std::memory_order_relaxed);
  s.report_active.store(active, std::memory_order_relaxed);
  s.report_at_ns.store(now_ns, std::memory_order_relaxed);
  s.reports.fetch_add(1, std::memory_order_relaxed);
}

LoadReportResult receive_load_report(EndpointLoad& load, std::string_view header,
                                     LoadReportFormat format) {
  LoadReport report;
  const auto result = format == LoadReportFormat::kBinary ? parse_load_report_bin(header, report)
                                                          : parse_load_report(header, report);
  if (result == LoadReportResult::kOk) apply_load_report(load, report, steady_now_ns());
  return result;
}

}  // namespace switchyard::balancer
