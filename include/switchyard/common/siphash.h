#pragma once

#include <cstdint>
#include <string_view>

namespace switchyard {

// SipHash-1-3 (Aumasson & Bernstein; the variant Rust's HashMap and Python's str hash use):
// a keyed 64-bit hash, fast on short inputs (one compression round per 8 bytes, three
// finalization rounds), and unpredictable without the key, so that clients cannot choose keys
// that all land on one endpoint.
struct SipKey {
  uint64_t k0 = 0;
  uint64_t k1 = 0;
  // The key for a configured seed string: the same seed gives the same key everywhere.
  static SipKey from_seed(std::string_view seed);
};

uint64_t siphash13(const SipKey& key, std::string_view data);
// The same over the concatenation data || le64(salt), without building it.
uint64_t siphash13(const SipKey& key, std::string_view data, uint64_t salt);
// SipHash-2-4, the paper's reference variant: same code with more rounds, checked against the
// paper's test vectors to prove the shared implementation.
uint64_t siphash24(const SipKey& key, std::string_view data);

}  // namespace switchyard
