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

// Below three retries in flight a retry is always allowed and spends nothing.
TEST(RetryBudget, FloorOfThreeInFlight) {
  RetryBudget b;
  b.set_tokens(0);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(b.allow(2));
  EXPECT_FALSE(b.allow(3));
  EXPECT_EQ(b.tokens(), 0);
}

// Beyond the floor, retries are paid with tokens that requests earn at 0.2 each: sustained,
// retries are at most 20% of requests.
TEST(RetryBudget, TwentyPercentOfRequests) {
  RetryBudget b;
  b.set_tokens(0);
  int allowed = 0;
  for (int i = 0; i < 1000; ++i) {
    b.on_request();
    if (b.allow(10)) ++allowed;  // every request fails and wants a retry
  }
  EXPECT_GE(allowed, 199);
  EXPECT_LE(allowed, 200);
}

// Tokens saved while all is well absorb a burst (one backend of three dying under load), up to
// kMaxTokens.
TEST(RetryBudget, SavedBurstIsCapped) {
  RetryBudget b;
  EXPECT_EQ(b.tokens(), RetryBudget::kInitialTokens);
  for (int i = 0; i < 100000; ++i) b.on_request();
  EXPECT_EQ(b.tokens(), RetryBudget::kMaxTokens);
  int burst = 0;
  while (b.allow(50) && burst < 1000) ++burst;
  EXPECT_EQ(burst, static_cast<int>(RetryBudget::kMaxTokens));
}

}  // namespace
}  // namespace switchyard::proxy
