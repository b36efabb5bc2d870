#include "switchyard/common/logging.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <memory>

namespace switchyard::logs {
namespace {

std::shared_ptr<spdlog::logger> make(const char* name) {
  // All module loggers share one stderr sink so that their lines never interleave.
  static auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(name, sink);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ [%n] %v", spdlog::pattern_time_type::utc);
  logger->set_level(spdlog::get_level());
  return logger;
}

struct Loggers {
  std::shared_ptr<spdlog::logger> main = make("main");
  std::shared_ptr<spdlog::logger> config = make("config");
  std::shared_ptr<spdlog::logger> registry = make("registry");
  std::shared_ptr<spdlog::logger> proxy = make("proxy");
  std::shared_ptr<spdlog::logger> admin = make("admin");
};

Loggers& loggers() {
  static Loggers instance;
  return instance;
}

}  // namespace

bool init(std::string_view level) {
  auto parsed = spdlog::level::from_str(std::string(level));
  // from_str maps unknown names to "off"; only the five documented levels are accepted.
  if (level != "trace" && level != "debug" && level != "info" && level != "warn" &&
      level != "error") {
    return false;
  }
  spdlog::set_level(parsed);
  auto& l = loggers();
  for (auto* logger : {&l.main, &l.config, &l.registry, &l.proxy, &l.admin}) {
    (*logger)->set_level(parsed);
    (*logger)->flush_on(spdlog::level::info);
  }
  return true;
}

spdlog::logger& main() { return *loggers().main; }
spdlog::logger& config() { return *loggers().config; }
spdlog::logger& registry() { return *loggers().registry; }
spdlog::logger& proxy() { return *loggers().proxy; }
spdlog::logger& admin() { return *loggers().admin; }

}  // namespace switchyard::logs
