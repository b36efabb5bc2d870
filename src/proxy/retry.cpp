#include "switchyard/proxy/retry.h"

#include <algorithm>

namespace switchyard::proxy {

bool should_retry(const config::Retries& policy, RetryReason reason, unsigned status) {
  auto on = [&](config::RetryOn flag) {
    return (policy.on_mask & static_cast<uint32_t>(flag)) != 0;
  };
  switch (reason) {
    case RetryReason::kConnectFailure:
      return on(config::RetryOn::kConnectFailure);
    case RetryReason::kReset:
      return on(config::RetryOn::kReset);
    case RetryReason::kTimeout:
      return on(config::RetryOn::kTimeout);
    case RetryReason::kStatus:
      return std::find(policy.on_status.begin(), policy.on_status.end(), status) !=
             policy.on_status.end();
  }
  return false;
}

}  // namespace switchyard::proxy
