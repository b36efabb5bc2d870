#include "switchyard/proxy/retry.h"

#include <gtest/gtest.h>

namespace switchyard::proxy {
namespace {

// Each reason is retried only when the route lists it; statuses by exact code.
TEST(Retry, PolicyDecides) {
  config::Retries p;  // default: connect_failure only
  EXPECT_TRUE(should_retry(p, RetryReason::kConnectFailure, 0));
  EXPECT_FALSE(should_retry(p, RetryReason::kReset, 0));
  EXPECT_FALSE(should_retry(p, RetryReason::kTimeout, 0));
  EXPECT_FALSE(should_retry(p, RetryReason::kStatus, 503));
  p.on_mask = static_cast<uint32_t>(config::RetryOn::kReset) |
              static_cast<uint32_t>(config::RetryOn::kTimeout);
  p.on_status = {503};
  EXPECT_FALSE(should_retry(p, RetryReason::kConnectFailure, 0));
  EXPECT_TRUE(should_retry(p, RetryReason::kReset, 0));
  EXPECT_TRUE(should_retry(p, RetryReason::kTimeout, 0));
  EXPECT_TRUE(should_retry(p, RetryReason::kStatus, 503));
  EXPECT_FALSE(should_retry(p, RetryReason::kStatus, 500));
}

// Three retries are always allowed; beyond that, at most 20% of active tries.
TEST(Retry, BudgetIsTwentyPercentWithFloorOfThree) {
  EXPECT_TRUE(retry_budget_allows(0, 0));
  EXPECT_TRUE(retry_budget_allows(1, 2));
  EXPECT_FALSE(retry_budget_allows(10, 3));
  EXPECT_TRUE(retry_budget_allows(100, 19));
  EXPECT_FALSE(retry_budget_allows(100, 20));
  EXPECT_TRUE(retry_budget_allows(1000, 199));
}

}  // namespace
}  // namespace switchyard::proxy
