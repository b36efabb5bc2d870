#include "switchyard/balancer/least_request.h"

namespace switchyard::balancer {

const Endpoint* LeastRequest::pick(const PickContext& ctx, WorkerLbState& state) const {
  const Endpoint* a = draw_.draw(ctx, state, nullptr);
  if (a == nullptr) return nullptr;
  const Endpoint* b = draw_.draw(ctx, state, a);  // distinct from a
  if (b == nullptr) return a;
  // Compare (active + 1) / weight without division: the +1 counts the request being placed,
  // so that an idle heavy endpoint beats an idle light one.
  int64_t load_a = a->state->active_requests.load(std::memory_order_relaxed) + 1;
  int64_t load_b = b->state->active_requests.load(std::memory_order_relaxed) + 1;
  return load_b * a->weight < load_a * b->weight ? b : a;
}

}  // namespace switchyard::balancer
