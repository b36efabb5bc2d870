#pragma once

#include <cstdint>

#include "switchyard/config/config.h"

namespace switchyard::proxy {

// Why an upstream try failed, in the terms of routes[].retries.on.
enum class RetryReason { kConnectFailure, kReset, kTimeout, kStatus };

// Whether the route's policy retries this failure (status: the response code for kStatus).
bool should_retry(const config::Retries& policy, RetryReason reason, unsigned status);

// The retry budget: retries in flight in a cluster may not exceed 20% of its active upstream
// tries, but kMinRetryConcurrency are always allowed, so that a quiet cluster can still retry.
// It keeps retries from multiplying the load of an outage (Envoy's retry budget, same numbers).
constexpr int64_t kMinRetryConcurrency = 3;
bool retry_budget_allows(int64_t active_tries, int64_t active_retries);

}  // namespace switchyard::proxy
