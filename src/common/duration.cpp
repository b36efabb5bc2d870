#include "switchyard/common/duration.h"

#include <charconv>
#include <cmath>

namespace switchyard {

std::optional<Duration> parse_duration(std::string_view text) {
  size_t unit_pos = 0;
  while (unit_pos < text.size() &&
         ((text[unit_pos] >= '0' && text[unit_pos] <= '9') || text[unit_pos] == '.')) {
    ++unit_pos;
  }
  if (unit_pos == 0 || unit_pos == text.size()) return std::nullopt;
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + unit_pos, value);
  if (ec != std::errc{} || end != text.data() + unit_pos || !std::isfinite(value)) {
    return std::nullopt;
  }
  std::string_view unit = text.substr(unit_pos);
  double ms_per_unit = 0;
  if (unit == "ms") {
    ms_per_unit = 1;
  } else if (unit == "s") {
    ms_per_unit = 1000;
  } else if (unit == "m") {
    ms_per_unit = 60'000;
  } else if (unit == "h") {
    ms_per_unit = 3'600'000;
  } else {
    return std::nullopt;
  }
  double ms = std::round(value * ms_per_unit);
  if (ms > 1e12) return std::nullopt;  // ~31 years: a typo, not a timeout
  return Duration(static_cast<int64_t>(ms));
}

std::string format_duration(Duration d) {
  auto ms = d.count();
  if (ms % 1000 != 0) return std::to_string(ms) + "ms";
  return std::to_string(ms / 1000) + "s";
}

}  // namespace switchyard
