// libFuzzer target: arbitrary bytes as an endpoint-load-metrics header. The parser must never
// crash, and whatever it accepts must hold only finite values in [0, 1].
// Build: cmake -DSWITCHYARD_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "switchyard/balancer/load_report.h"

namespace {

void check(const std::optional<double>& v) {
  if (v && !(std::isfinite(*v) && *v >= 0 && *v <= 1)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace switchyard::balancer;
  LoadReport report;
  auto result =
      parse_load_report(std::string_view(reinterpret_cast<const char*>(data), size), report);
  if (result == LoadReportResult::kOk) {
    check(report.cpu);
    check(report.memory);
    check(report.application);
    check(report.rps_fractional);
    check(report.eps);
  } else if (report.cpu || report.memory || report.application) {
    std::abort();  // a rejected report leaves nothing behind
  }
  return 0;
}
