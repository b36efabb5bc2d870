#include "least_request.h"

namespace switchyard::balancer::least_request {
namespace {
class Policy final : public balancer::Policy {
 public:
  std::string_view name() const override { return "least_request"; }
  PolicyTraits traits(const config::Cluster&) const override {
    PolicyTraits t;
    t.weighs_slow_start = true;
    return t;
  }
  std::unique_ptr<PolicyTable> build(const config::Cluster&, const Members& members,
                                     const ClusterState&) const override {
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
  // Keep the lower active/weight (cross-multiplied, no division); the weight is the slow-start
  // one (effective_weight: the configured weight while nothing warms up).
  const auto active_a =
      static_cast<double>(members_[a].load->active_requests.load(std::memory_order_relaxed));
  const auto active_b =
      static_cast<double>(members_[b].load->active_requests.load(std::memory_order_relaxed));
  return active_b * effective_weight(members_[a]) < active_a * effective_weight(members_[b]) ? b
                                                                                             : a;
}

}  // namespace switchyard::balancer::least_request
