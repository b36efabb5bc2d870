#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace switchyard::http {

// How a request's body is delimited, decided once from its framing headers (RFC 9112 §6).
// Ambiguous framing is the root of request smuggling, so everything that two parsers could
// read differently is rejected here rather than "repaired".
enum class Framing {
  kNone,           // no body
  kContentLength,  // exactly `content_length` bytes
  kChunked,        // Transfer-Encoding: chunked, alone
  kBadRequest,     // 400: ambiguous or malformed framing
  kNotImplemented  // 501: a transfer coding other than chunked
};

struct FramingResult {
  Framing framing = Framing::kNone;
  uint64_t content_length = 0;
  const char* reason = "";  // for the error body
};

// version: 10 or 11. content_length / transfer_encoding: every value of those fields, in order
// (several fields and comma lists are both allowed). Rules:
//  - Transfer-Encoding with Content-Length -> 400 (RFC 9112 §6.3 allows dropping CL; we refuse).
//  - Transfer-Encoding on HTTP/1.0 -> 400 (§6.1: framing cannot be trusted).
//  - Transfer-Encoding must be exactly one coding, `chunked` (case-insensitive, surrounding
//    spaces/tabs allowed): a final chunked after other codings -> 501; chunked not final, an
//    unknown coding alone (`xchunked`), an empty value or anything else -> 400.
//  - Content-Length values must all be the same run of digits, fitting in 63 bits -> else 400.
// Pure: no I/O, no allocation.
FramingResult decide_framing(unsigned version, std::span<const std::string_view> content_length,
                             std::span<const std::string_view> transfer_encoding);

}  // namespace switchyard::http
