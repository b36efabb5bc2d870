#pragma once

// The reload transaction (SIGHUP and POST /admin/reload): read and validate the file, refuse
// listener changes (listeners are bound once), build the new snapshot through the Runtime
// (discovery sources move over only when it builds: Runtime::apply commits or rolls back), and
// hand it to `publish`. Any failure keeps the running configuration and snapshot. Counted in
// switchyard_config_reloads_total. Control thread.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "switchyard/config/config.h"
#include "switchyard/control/runtime.h"

namespace switchyard::control {

struct ReloadResult {
  bool ok = false;
  uint64_t version = 0;                          // the snapshot serving after it
  std::vector<std::string> errors;               // FILE:LINE:COL: key: what is wrong
  std::shared_ptr<const config::Config> config;  // the new configuration when ok
};

// Why `next` cannot be applied to listeners bound for `running` (empty: it can): their set,
// names and addresses must stay.
std::string listeners_changed(const config::Config& running, const config::Config& next);

// Reloads `path` over `running`; `publish` gets the new snapshot when it builds.
ReloadResult reload_file(const std::string& path, const config::Config& running, Runtime& runtime,
                         const std::function<void(std::shared_ptr<const Snapshot>)>& publish);

}  // namespace switchyard::control
