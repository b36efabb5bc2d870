#include "switchyard/common/siphash.h"

#include <cstring>

namespace switchyard {
namespace {

inline uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

struct State {
  uint64_t v0, v1, v2, v3;
  explicit State(const SipKey& k)
      : v0(k.k0 ^ 0x736f6d6570736575ULL),
        v1(k.k1 ^ 0x646f72616e646f6dULL),
        v2(k.k0 ^ 0x6c7967656e657261ULL),
        v3(k.k1 ^ 0x7465646279746573ULL) {}
  void round() {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
  }
  void compress(uint64_t m, int c) {
    v3 ^= m;
    for (int i = 0; i < c; ++i) round();
    v0 ^= m;
  }
  uint64_t finish(uint64_t last, int c, int d) {
    compress(last, c);
    v2 ^= 0xff;
    for (int i = 0; i < d; ++i) round();
    return v0 ^ v1 ^ v2 ^ v3;
  }
};

inline uint64_t load_le64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;  // little-endian hosts only (x86-64, aarch64), like the rest of the daemon
}

// Hashes `a` followed by `b` (b may be empty) with C compression and D finalization rounds.
template <int C = 1, int D = 3>
uint64_t hash_parts(const SipKey& key, std::string_view a, std::string_view b) {
  State s(key);
  const size_t total = a.size() + b.size();
  unsigned char block[8];
  size_t filled = 0;
  for (std::string_view part : {a, b}) {
    const auto* p = reinterpret_cast<const unsigned char*>(part.data());
    size_t n = part.size();
    if (n == 0) continue;  // an empty part (its data() may be null) adds nothing
    if (filled > 0) {
      size_t take = std::min(n, 8 - filled);
      std::memcpy(block + filled, p, take);
      filled += take;
      p += take;
      n -= take;
      if (filled < 8) continue;
      s.compress(load_le64(block), C);
      filled = 0;
    }
    for (; n >= 8; n -= 8, p += 8) s.compress(load_le64(p), C);
    std::memcpy(block, p, n);
    filled = n;
  }
  uint64_t last = static_cast<uint64_t>(total & 0xff) << 56;
  for (size_t i = 0; i < filled; ++i) last |= static_cast<uint64_t>(block[i]) << (8 * i);
  return s.finish(last, C, D);
}

}  // namespace

SipKey SipKey::from_seed(std::string_view seed) {
  SipKey zero;
  return SipKey{hash_parts(zero, "switchyard-seed-0:", seed),
                hash_parts(zero, "switchyard-seed-1:", seed)};
}

uint64_t siphash13(const SipKey& key, std::string_view data) { return hash_parts(key, data, {}); }

uint64_t siphash24(const SipKey& key, std::string_view data) {
  return hash_parts<2, 4>(key, data, {});
}

uint64_t siphash13(const SipKey& key, std::string_view data, uint64_t salt) {
  unsigned char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(salt >> (8 * i));
  return hash_parts(key, data, std::string_view(reinterpret_cast<const char*>(bytes), 8));
}

}  // namespace switchyard
