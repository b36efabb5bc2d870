#include "switchyard/common/siphash.h"

#include <gtest/gtest.h>

#include <string>

namespace switchyard {
namespace {

// The reference vectors of the SipHash paper (key 00 01 .. 0f, message 00 01 .. len-1).
TEST(SipHash, ReferenceVectors24) {
  SipKey key{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
  std::string msg;
  EXPECT_EQ(siphash24(key, msg), 0x726fdb47dd0e0e31ULL);
  for (int i = 0; i < 15; ++i) msg.push_back(static_cast<char>(i));
  EXPECT_EQ(siphash24(key, msg), 0xa129ca6149be45e5ULL);
  EXPECT_EQ(siphash24(key, msg.substr(0, 8)), 0x93f5f5799a932462ULL);
}

TEST(SipHash, SaltIsAppendedBytes) {
  SipKey key = SipKey::from_seed("s");
  std::string data = "endpoint-1.2.3.4:80";
  std::string salted = data;
  for (int i = 0; i < 8; ++i)
    salted.push_back(static_cast<char>((0x0102030405060708ULL >> (8 * i)) & 0xff));
  EXPECT_EQ(siphash13(key, data, 0x0102030405060708ULL), siphash13(key, salted));
  // Split points inside the 8-byte blocks agree with the one-piece hash at every length.
  for (size_t n = 0; n < 20; ++n) {
    std::string d(n, 'x');
    std::string s2 = d + std::string(8, '\0');
    EXPECT_EQ(siphash13(key, d, 0), siphash13(key, s2)) << n;
  }
}

TEST(SipHash, SeedChangesEverything) {
  SipKey a = SipKey::from_seed("alpha");
  SipKey b = SipKey::from_seed("beta");
  EXPECT_EQ(SipKey::from_seed("alpha").k0, a.k0);
  int equal = 0;
  for (int i = 0; i < 1000; ++i) {
    std::string k = "key-" + std::to_string(i);
    equal += (siphash13(a, k) % 10) == (siphash13(b, k) % 10) ? 1 : 0;
  }
  EXPECT_LT(equal, 150);  // unrelated mappings agree ~10% of the time
  EXPECT_GT(equal, 50);
}

}  // namespace
}  // namespace switchyard
