#include "switchyard/balancer/cluster_state.h"

#include "weight_learner.h"

namespace switchyard::balancer {

ClusterState::ClusterState() = default;
ClusterState::~ClusterState() = default;

}  // namespace switchyard::balancer
