#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace switchyard {

using Duration = std::chrono::milliseconds;

// Parses "250ms", "2s", "1.5s", "1m", "1h". A unit is required; the value must be finite and
// >= 0 and is rounded to whole milliseconds. Returns nullopt on anything else.
std::optional<Duration> parse_duration(std::string_view text);

// "1500ms" -> "1.5s"; used in logs and the admin JSON.
std::string format_duration(Duration d);

}  // namespace switchyard
