#include "switchyard/http/grpc.h"

#include <gtest/gtest.h>

namespace switchyard::http::grpc {
namespace {

using namespace std::chrono;

TEST(Grpc, ContentType) {
  EXPECT_TRUE(is_grpc("application/grpc"));
  EXPECT_TRUE(is_grpc("application/grpc+proto"));
  EXPECT_TRUE(is_grpc("Application/GRPC;charset=utf-8"));
  EXPECT_FALSE(is_grpc("application/grpc-web"));
  EXPECT_FALSE(is_grpc("application/json"));
  EXPECT_FALSE(is_grpc(""));
}

TEST(Grpc, Timeout) {
  EXPECT_EQ(parse_timeout("300m"), nanoseconds(milliseconds(300)));
  EXPECT_EQ(parse_timeout("2S"), nanoseconds(seconds(2)));
  EXPECT_EQ(parse_timeout("1H"), nanoseconds(hours(1)));
  EXPECT_EQ(parse_timeout("5M"), nanoseconds(minutes(5)));
  EXPECT_EQ(parse_timeout("7u"), nanoseconds(microseconds(7)));
  EXPECT_EQ(parse_timeout("99999999n"), nanoseconds(99999999));
  EXPECT_FALSE(parse_timeout("123456789S"));  // more than 8 digits
  // 8 digits of hours would overflow nanoseconds: capped at 200 years, still positive.
  EXPECT_EQ(parse_timeout("99999999H"), nanoseconds(hours(24 * 365 * 200)));
  EXPECT_EQ(parse_timeout("99999999M"), nanoseconds(minutes(99999999)));
  EXPECT_FALSE(parse_timeout("S"));
  EXPECT_FALSE(parse_timeout("10x"));
  EXPECT_FALSE(parse_timeout("-1S"));
  EXPECT_FALSE(parse_timeout("1 S"));
}

TEST(Grpc, StatusForProxyErrors) {
  EXPECT_EQ(status_for_http(503), Status::kUnavailable);
  EXPECT_EQ(status_for_http(502), Status::kUnavailable);
  EXPECT_EQ(status_for_http(504), Status::kDeadlineExceeded);
  EXPECT_EQ(status_for_http(431), Status::kResourceExhausted);
  EXPECT_EQ(status_for_http(404), Status::kUnimplemented);
  EXPECT_EQ(status_for_http(400), Status::kInternal);
}

TEST(Grpc, MessageIsPercentEncoded) {
  std::string out;
  append_message(out, "no healthy endpoint: 100%\n\xc3\xa9");
  EXPECT_EQ(out, "no healthy endpoint: 100%25%0A%C3%A9");
}

}  // namespace
}  // namespace switchyard::http::grpc
