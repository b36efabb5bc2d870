#pragma once

// JSON pieces /admin/clusters and /admin/explain share (clusters_json.cpp).

#include <boost/json/value.hpp>

#include "switchyard/balancer/front_door.h"

namespace switchyard::admin {

// resource_aware's weights as a score uses them now: {mode, cpu, memory, connections} and,
// with `weights: adaptive`, the fit behind them {r2, samples, confidence}.
boost::json::value resource_weights_json(const balancer::ClusterBalancer& cluster);
// A region's prediction (locality.predictive), or null when prediction is off.
boost::json::value region_prediction(const balancer::RegionStatus& r);

}  // namespace switchyard::admin
