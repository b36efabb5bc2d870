#pragma once

// HTTP/1.1 message parsing without copies: Beast's basic_parser (the well-kept grammar and
// framing checks) driven so that every name, value and body piece it reports is a view into
// the caller's own buffer. A head is handed to the parser only once it is complete (see
// find_head_end), so Beast reports each field exactly once and the views stay valid as long as
// the caller keeps those bytes. Beast stays in the .cpp: this header is plain C++.

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "switchyard/http/message.h"

namespace switchyard::http::http1 {

enum class ParseStatus : uint8_t {
  kOk,
  kNeedMore,     // feed more bytes (after the ones not consumed)
  kPiecesFull,   // BodyPieces is full: hand its pieces on, clear it, then feed again
  kHeaderLimit,  // head over the header limit (431 for requests)
  kTargetLimit,  // request line over the target limit (414)
  kBodyLimit,    // body over the body limit (413)
  kBad,          // malformed (400 for requests, 502 for responses)
};

// Where a head ends: scans buf from *scanned (bytes before it were scanned by an earlier call
// and are not read again) for the blank line that ends a head. Returns the head's length
// including that line, 0 while it is incomplete, or SIZE_MAX on a bare LF (RFC 9112 §2.2: a
// recipient may accept it, but two parsers can disagree on it, so switchyard refuses it).
size_t find_head_end(std::string_view buf, size_t* scanned);

// Body bytes found by one feed, as views into the input, plus the trailer fields of a chunked
// body. Owned by the caller; cleared by it after each hand-off.
struct BodyPieces {
  static constexpr size_t kCapacity = 32;
  std::array<std::string_view, kCapacity> data;
  size_t count = 0;
  uint64_t bytes = 0;
  FieldList* trailers = nullptr;  // where trailer fields go; nullptr drops them

  void clear() {
    count = 0;
    bytes = 0;
  }
  bool full() const { return count == kCapacity; }
};

// One HTTP/1.x message at a time (request or response), reused for every message of a
// connection: start() begins the next one. Single thread.
template <bool IsRequest>
class Parser {
 public:
  using Head = std::conditional_t<IsRequest, RequestHead, ResponseHead>;

  Parser();
  ~Parser();
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  // A new message. body_limit: nullopt = unlimited. skip_body: a response to HEAD.
  void start(uint32_t header_limit, std::optional<uint64_t> body_limit, bool skip_body = false);
  // head: exactly the bytes of a complete head (find_head_end). Fills out (views into head).
  ParseStatus parse_head(std::string_view head, Head& out);
  // Body bytes: appends the body pieces found in `in` to pieces and returns how many bytes of
  // `in` were consumed (the rest must be fed again, with more after it, on kNeedMore).
  size_t parse_body(std::string_view in, BodyPieces& pieces, ParseStatus* status);
  // The input ended (a close-delimited body is then complete; anything else is truncated).
  ParseStatus parse_eof();
  bool done() const;
  // The unread rest of a Content-Length body (nullopt for other framings).
  std::optional<uint64_t> remaining() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

using RequestParser = Parser<true>;
using ResponseParser = Parser<false>;

}  // namespace switchyard::http::http1
