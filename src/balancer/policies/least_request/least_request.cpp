#include "least_request.h"

namespace switchyard::balancer::least_request {
namespace {
class Policy final : public balancer::Policy {
 public:
  std::string_view name() const override { return "least_request"; }
  std::unique_ptr<PolicyTable> build(const config::Cluster&,
                                     const Members& members) const override {
    return std::make_unique<Table>(members);
  }
};
}  // namespace

std::unique_ptr<balancer::Policy> make() { return std::make_unique<Policy>(); }

uint32_t Table::pick(const PickInput&, const Filter& filter, WorkerLbState& lb) const {
  const uint32_t a = draw_.draw(filter, lb, kNone);
  if (a == kNone) return kNone;
  const uint32_t b = draw_.draw(filter, lb, a);  // distinct from a
  if (b == kNone) return a;
  // Keep the lower active/weight (cross-multiplied, no division).
  const int64_t active_a = members_[a].load->active_requests.load(std::memory_order_relaxed);
  const int64_t active_b = members_[b].load->active_requests.load(std::memory_order_relaxed);
  return active_b * members_[a].endpoint->weight < active_a * members_[b].endpoint->weight ? b : a;
}

}  // namespace switchyard::balancer::least_request
