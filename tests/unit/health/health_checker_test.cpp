#include "switchyard/health/health_checker.h"

#include <gtest/gtest.h>

namespace switchyard::health {
namespace {

TEST(PassiveConnectCheck, MarksDownAfterTheLimitInARowOnce) {
  EndpointHealth h;
  h.passive_limit = 3;
  EXPECT_FALSE(record_connect_failure(h));
  EXPECT_FALSE(record_connect_failure(h));
  EXPECT_TRUE(h.healthy.load());
  EXPECT_TRUE(record_connect_failure(h));  // the third in a row
  EXPECT_FALSE(h.healthy.load());
  EXPECT_TRUE(h.marked_down.load());
  EXPECT_FALSE(record_connect_failure(h));  // already down: logged once
}

TEST(PassiveConnectCheck, ASuccessfulConnectStartsTheRunAgain) {
  EndpointHealth h;
  h.passive_limit = 3;
  record_connect_failure(h);
  record_connect_failure(h);
  record_connect_success(h);
  EXPECT_FALSE(record_connect_failure(h));
  EXPECT_FALSE(record_connect_failure(h));
  EXPECT_TRUE(h.healthy.load());
  EXPECT_TRUE(record_connect_failure(h));
}

TEST(PassiveConnectCheck, OffOrUncheckedNeverMarksDown) {
  EndpointHealth h;  // passive_limit 0: off, or nobody checks the endpoint
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(record_connect_failure(h));
  EXPECT_TRUE(h.healthy.load());
  EXPECT_FALSE(h.marked_down.load());
}

TEST(PassiveConnectCheck, AnEndpointTheChecksHoldDownIsNotMarkedAgain) {
  EndpointHealth h;
  h.passive_limit = 1;
  h.healthy = false;
  EXPECT_FALSE(record_connect_failure(h));
  EXPECT_FALSE(h.marked_down.load());
}

}  // namespace
}  // namespace switchyard::health
