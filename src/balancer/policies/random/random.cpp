#include "random.h"

namespace switchyard::balancer::random {
namespace {
class Policy final : public balancer::Policy {
 public:
  std::string_view name() const override { return "random"; }
  std::unique_ptr<PolicyTable> build(const config::Cluster&, const Members& members,
                                     const ClusterState&) const override {
    return std::make_unique<Table>(members);
  }
};
}  // namespace

std::unique_ptr<balancer::Policy> make() { return std::make_unique<Policy>(); }

}  // namespace switchyard::balancer::random
