#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace switchyard::logs {

// One spdlog logger per module, all writing to stderr (the access log goes to stdout, see
// proxy/access_log.h). Call init() once from main before any thread starts.
bool init(std::string_view level);  // false if level is not trace|debug|info|warn|error

spdlog::logger& main();
spdlog::logger& config();
spdlog::logger& registry();
spdlog::logger& proxy();
spdlog::logger& admin();

}  // namespace switchyard::logs
