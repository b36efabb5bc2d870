#include <gtest/gtest.h>

#include "switchyard/admin/admin_server.h"

namespace switchyard::admin {
namespace {

const char* kToken = "0123456789abcdef0123";

// Without a token, only loopback may change state; with one, only its bearer, wherever it is.
TEST(AdminAuth, WithoutATokenOnlyLoopbackMayChangeState) {
  EXPECT_EQ(authorize_change("", "", true), std::nullopt);
  auto refused = authorize_change("", "", false);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->first, 403u);
  EXPECT_NE(refused->second.find("admin.token_file"), std::string::npos);
  // A bearer header does not help when no token is configured.
  EXPECT_EQ(authorize_change("Bearer anything", "", false)->first, 403u);
}

TEST(AdminAuth, WithATokenOnlyItsBearer) {
  for (bool loopback : {true, false}) {
    EXPECT_EQ(authorize_change("", kToken, loopback)->first, 401u);
    EXPECT_EQ(authorize_change("Basic dXNlcjpwYXNz", kToken, loopback)->first, 401u);
    EXPECT_EQ(authorize_change("Bearer", kToken, loopback)->first, 401u);
    EXPECT_EQ(authorize_change("Bearer wrong", kToken, loopback)->first, 403u);
    EXPECT_EQ(authorize_change("Bearer 0123456789abcdef012", kToken, loopback)->first, 403u);
    EXPECT_EQ(authorize_change("Bearer 0123456789abcdef01234", kToken, loopback)->first, 403u);
    EXPECT_EQ(authorize_change(std::string("Bearer ") + kToken, kToken, loopback), std::nullopt);
    EXPECT_EQ(authorize_change(std::string("bearer ") + kToken + " ", kToken, loopback),
              std::nullopt);  // the scheme is case-insensitive (RFC 9110 §11.1)
  }
}

}  // namespace
}  // namespace switchyard::admin
