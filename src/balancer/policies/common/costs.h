#pragma once

// The costs more than one policy prices an endpoint by, and the load model shows for every
// endpoint (admin, metrics, explain): the latency cost of peak_ewma (and of resource_aware's
// fused pick) and resource_aware's load factor. Pure; any thread.

#include <cstdint>

namespace switchyard::balancer {

// The cost of sending one more request to an endpoint: its latency estimate (ms; an
// unmeasured one borrows `unmeasured_ms`, so that a new endpoint competes on its in-flight
// count) to the power 1.5, times (active + 1), per unit of weight (the slow-start weight,
// effective_weight()). Why the 1.5th power: policies/peak_ewma/peak_ewma.h.
double latency_cost(double estimate_ms, double unmeasured_ms, int64_t active, double weight);

// Load scores are clamped to [kMinShareScore, kMaxShareScore] before they are turned into
// headroom (resource_aware.h, share_weight).
constexpr double kMinShareScore = 0.01;
constexpr double kMaxShareScore = 0.99;

// The load part of the fused cost: 1 / headroom^2 = (s / (1 - s))^2, s the load score clamped
// (the seed's weight, inverted: 0.0625 at 0.2, 1 at 0.5, 81 at 0.9).
double load_factor(double score);

// What /admin/clusters shows as fused_cost: the latency cost times the load factor.
double fused_cost(double latency_cost, double score);

}  // namespace switchyard::balancer
