#include "peak_ewma.h"

#include <algorithm>
#include <cmath>

namespace switchyard::balancer::peak_ewma {
namespace {

class Policy final : public balancer::Policy {
 public:
  std::string_view name() const override { return "peak_ewma"; }
  PolicyTraits traits(const config::Cluster&) const override {
    PolicyTraits t;
    t.weighs_slow_start = true;
    t.uses_latency = true;
    return t;
  }
  std::unique_ptr<PolicyTable> build(const config::Cluster&, const Members& members,
                                     const ClusterState&) const override {
    return std::make_unique<Table>(members);
  }
};

}  // namespace

std::unique_ptr<balancer::Policy> make() { return std::make_unique<Policy>(); }

uint32_t Table::pick(const PickInput& in, const Filter& filter, WorkerLbState& lb) const {
  const uint32_t a = draw_.draw(filter, lb, kNone);
  if (a == kNone) return kNone;
  const uint32_t b = draw_.draw(filter, lb, a);
  if (b == kNone) return a;
  const int64_t now = in.now();
  const auto& ma = members_[a];
  const auto& mb = members_[b];
  const int64_t active_a = ma.load->active_requests.load(std::memory_order_relaxed);
  const int64_t active_b = mb.load->active_requests.load(std::memory_order_relaxed);
  const double ea = ma.load->latency_estimate(now);
  const double eb = mb.load->latency_estimate(now);
  // An unmeasured endpoint borrows the other's estimate: in-flight counts decide.
  const double ca = latency_cost(ea, eb < 0 ? 0 : eb, active_a, effective_weight(ma));
  const double cb = latency_cost(eb, ea < 0 ? 0 : ea, active_b, effective_weight(mb));
  return cb < ca ? b : a;
}

}  // namespace switchyard::balancer::peak_ewma
