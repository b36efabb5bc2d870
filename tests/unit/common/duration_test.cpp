#include "switchyard/common/duration.h"

#include <gtest/gtest.h>

namespace switchyard {
namespace {

// Durations need a unit and accept ms, s, m, h and fractions.
TEST(Duration, ParsesUnits) {
  EXPECT_EQ(parse_duration("250ms"), Duration(250));
  EXPECT_EQ(parse_duration("2s"), Duration(2000));
  EXPECT_EQ(parse_duration("1.5s"), Duration(1500));
  EXPECT_EQ(parse_duration("1m"), Duration(60000));
  EXPECT_EQ(parse_duration("1h"), Duration(3600000));
  EXPECT_EQ(parse_duration("0s"), Duration(0));
}

// Anything without a known unit, or not a number, is rejected.
TEST(Duration, RejectsMalformed) {
  for (const char* bad : {"", "10", "s", "5 s", "-1s", "1d", "1.2.3s", "ms", "nans", "1e3s"}) {
    EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace switchyard
