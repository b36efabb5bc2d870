// libFuzzer target: arbitrary bytes as an endpoint-load-metrics header. The parser must never
// crash; whatever it accepts must hold only finite values in [0, 1]; and an independent reading
// of a JSON report (Boost.JSON's DOM parser, not the SAX handler under test) must agree on the
// limits: a report it cannot parse, or one with a key (the whole "outer.inner" path) over 128
// bytes or an item count over 64, is never accepted. The parser also aborts by itself if a key
// over its 128-byte slot ever reaches the duplicate table (the bug this would have caught).
// Build: cmake -DSWITCHYARD_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++.
#include <boost/json.hpp>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "switchyard/balancer/load_report.h"

namespace {

constexpr size_t kMaxKeyBytes = 128;
constexpr size_t kMaxItems = 64;

void check(const std::optional<double>& v) {
  if (v && !(std::isfinite(*v) && *v >= 0 && *v <= 1)) std::abort();
}

// Whatever is accepted holds only finite values in [0, 1]; a rejected report leaves nothing.
void check_report(switchyard::balancer::LoadReportResult result,
                  const switchyard::balancer::LoadReport& report) {
  if (result == switchyard::balancer::LoadReportResult::kOk) {
    check(report.cpu);
    check(report.memory);
    check(report.application);
    check(report.rps_fractional);
    check(report.eps);
  } else if (report.cpu || report.memory || report.application) {
    std::abort();
  }
}

// What the reference reading says about a JSON report's shape: false if it breaks a limit the
// parser promises to enforce.
bool within_limits(const boost::json::object& root) {
  size_t items = 0;
  for (const auto& [key, value] : root) {
    if (key.size() > kMaxKeyBytes || ++items > kMaxItems) return false;
    if (const auto* inner = value.if_object()) {
      for (const auto& [k, v] : *inner) {
        if (key.size() + 1 + k.size() > kMaxKeyBytes || ++items > kMaxItems) return false;
        (void)v;
      }
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace switchyard::balancer;
  std::string_view header(reinterpret_cast<const char*>(data), size);
  LoadReport report;
  auto result = parse_load_report(header, report);
  check_report(result, report);
  // The reference reading, for JSON reports the parser accepted.
  std::string_view body = header;
  while (!body.empty() && (body.front() == ' ' || body.front() == '\t')) body.remove_prefix(1);
  if (result == LoadReportResult::kOk && body.starts_with("JSON ")) {
    boost::json::error_code ec;
    auto doc = boost::json::parse(body.substr(5), ec);
    if (ec || !doc.is_object()) std::abort();  // accepted what a JSON parser refuses
    if (!within_limits(doc.as_object())) std::abort();
  }
  // The same bytes as endpoint-load-metrics-bin (a base64 OrcaLoadReport), and raw bytes
  // base64-encoded so that the protobuf decoder itself sees arbitrary input.
  auto check_bin = [](std::string_view value) {
    LoadReport bin;
    check_report(parse_load_report_bin(value, bin), bin);
  };
  check_bin(header);
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string encoded;
  for (size_t i = 0; i < size && i < 3000; i += 3) {
    uint32_t v = static_cast<uint32_t>(data[i]) << 16;
    if (i + 1 < size) v |= static_cast<uint32_t>(data[i + 1]) << 8;
    if (i + 2 < size) v |= data[i + 2];
    encoded.push_back(kAlphabet[(v >> 18) & 63]);
    encoded.push_back(kAlphabet[(v >> 12) & 63]);
    if (i + 1 < size) encoded.push_back(kAlphabet[(v >> 6) & 63]);
    if (i + 2 < size) encoded.push_back(kAlphabet[v & 63]);
  }
  check_bin(encoded);
  return 0;
}
