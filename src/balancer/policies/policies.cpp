// The built-in policies, one line each, in the order `--check` lists them. A new policy is a
// folder under policies/ (its table, its Policy, its YAML block if it has one), a test file
// under tests/unit/balancer/policies/, and one line here.
#include "consistent_hash/ring.h"
#include "least_request/least_request.h"
#include "maglev/maglev.h"
#include "peak_ewma/peak_ewma.h"
#include "random/random.h"
#include "resource_aware/resource_aware.h"
#include "round_robin/round_robin.h"

namespace switchyard::balancer {

const PolicyRegistry& policies() {
  static const PolicyRegistry registry = [] {
    PolicyRegistry r;
    r.add(round_robin::make());
    r.add(least_request::make());
    r.add(random::make());
    r.add(resource_aware::make());
    r.add(peak_ewma::make());
    r.add(hashing::make());  // consistent_hash
    r.add(maglev::make());
    return r;
  }();
  return registry;
}

}  // namespace switchyard::balancer
