#include "switchyard/control/reload.h"

#include "switchyard/balancer/policy.h"
#include "switchyard/common/logging.h"
#include "switchyard/config/loader.h"

namespace switchyard::control {

std::string listeners_changed(const config::Config& a, const config::Config& b) {
  if (a.listeners.size() != b.listeners.size()) return "the number of listeners changed";
  for (size_t i = 0; i < a.listeners.size(); ++i) {
    if (a.listeners[i].name != b.listeners[i].name ||
        a.listeners[i].listen_text != b.listeners[i].listen_text) {
      return "listener '" + b.listeners[i].name + "' changed its name, address or position";
    }
  }
  return "";
}

ReloadResult reload_file(const std::string& path, const config::Config& running, Runtime& runtime,
                         const std::function<void(std::shared_ptr<const Snapshot>)>& publish) {
  ReloadResult out;
  auto failed = [&] {
    // Counted before it is said, as a success is: whoever reads "reload failed" and then
    // scrapes /metrics sees the failure counted.
    runtime.count_reload(false);
    logs::config().error("reload failed: keeping the running configuration");
    out.version = runtime.current()->version;
    return out;
  };
  auto result = config::load_file(path, balancer::schema());
  if (result.ok()) {
    if (auto why = listeners_changed(running, *result.config); !why.empty()) {
      result.errors.push_back(
          {path, 1, 1, "listeners", why + "; restart switchyard to change listeners"});
      result.config.reset();
    }
  }
  if (!result.ok()) {
    for (const auto& e : result.errors) {
      logs::config().error("{}", e.to_string());
      out.errors.push_back(e.to_string());
    }
    return failed();
  }
  if (result.config->workers != running.workers ||
      !(result.config->admin.listen == running.admin.listen) ||
      result.config->admin.probe_listen_text != running.admin.probe_listen_text) {
    logs::config().warn(
        "workers, admin.listen and admin.probe_listen take effect only after a restart");
  }
  std::string why;
  auto snapshot = runtime.apply(result.config, &why);
  if (!snapshot) {
    logs::config().error("{}: {}", path, why);
    out.errors.push_back(path + ": " + why);
    return failed();
  }
  publish(snapshot);
  runtime.count_reload(true);
  logs::config().info("reload succeeded");
  out.ok = true;
  out.version = snapshot->version;
  out.config = std::move(result.config);
  return out;
}

}  // namespace switchyard::control
