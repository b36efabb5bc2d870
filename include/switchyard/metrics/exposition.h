#pragma once

#include <string>

#include "switchyard/metrics/metrics.h"
#include "switchyard/registry/registry.h"

namespace switchyard::metrics {

// The Prometheus text exposition (format 0.0.4) of every family, for the listeners, clusters
// and endpoints of `snapshot` only. Gauges are sampled from live state now. Any thread that
// may read the snapshot (the admin thread); takes no lock the request path takes.
std::string render(const registry::RuntimeSnapshot& snapshot, const Metrics& metrics);

}  // namespace switchyard::metrics
