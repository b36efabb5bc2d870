#include "switchyard/balancer/least_request.h"

namespace switchyard::balancer {

const Endpoint* LeastRequest::pick(const PickContext& ctx, WorkerLbState& state) const {
  const Endpoint* a = draw_.draw(ctx, state, nullptr);
  if (a == nullptr) return nullptr;
  const Endpoint* b = draw_.draw(ctx, state, a);  // distinct from a
  if (b == nullptr) return a;
  // Keep the lower active/weight (cross-multiplied, no division). A tie keeps `a`, the first
  // weighted draw: when both are idle, the split then follows the weights (3:1 stays 3:1)
  // instead of always favouring the heavier endpoint.
  int64_t active_a = a->state->active_requests.load(std::memory_order_relaxed);
  int64_t active_b = b->state->active_requests.load(std::memory_order_relaxed);
  return active_b * a->weight < active_a * b->weight ? b : a;
}

}  // namespace switchyard::balancer
