#pragma once

// The HTTP/1.1 wire writer: heads serialized into one reused string and bodies framed by hand,
// so that every write is a single gather of a head, body pieces and their chunk framing. Pure:
// no I/O; the caller turns the slices into its socket's buffer type.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "switchyard/http/framing.h"
#include "switchyard/http/message.h"
#include "switchyard/http/request_rules.h"

namespace switchyard::http::http1 {

// The request head sent to an endpoint: `METHOD origin-target HTTP/1.1`, Host (out.host, else
// fallback_host), every field not marked dropped, the forwarding fields, the upgrade offer, and
// the framing fields from out.framing, nothing else. Appends to `out` after clearing it.
void write_request_head(std::string& out, const RequestHead& head, const RequestForward& fwd,
                        bool origin_needs_slash, std::string_view fallback_host);

// How a body leaves switchyard.
enum class BodyMode : uint8_t {
  kNone,        // no body
  kLength,      // Content-Length (the pieces as they are)
  kChunked,     // re-chunked: one chunk per piece
  kUntilClose,  // delimited by closing the connection (HTTP/1.0 clients)
};

// A response head for the client: `HTTP/1.x status reason`, every field not marked dropped,
// `extra` fields (already formatted "Name: value\r\n" lines), framing per mode (Content-Length
// for kLength, Transfer-Encoding: chunked for kChunked), and Connection: close / keep-alive as
// needed for the client's version.
struct ResponseWrite {
  unsigned version = 11;  // the client's
  BodyMode mode = BodyMode::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;
  std::string_view extra;  // pre-formatted extra lines
  bool upgrade = false;    // a 101: Connection: Upgrade
  std::string_view upgrade_protocol;
};
void write_response_head(std::string& out, const ResponseHead& head, const ResponseWrite& w);

struct Slice {  // trivial: a framer's slices are written before they are read
  const char* data;
  size_t size;
};

// Frames body pieces for one write. Holds the chunk-size lines, so it must outlive the write.
// kMaxSlices covers a head, 32 pieces as chunks (3 slices each) and the last-chunk with
// trailers.
class BodyFramer {
 public:
  static constexpr size_t kMaxPieces = 32;
  static constexpr size_t kMaxSlices = 2 + 3 * kMaxPieces + 2;

  void reset(BodyMode mode) { mode_ = mode; }
  BodyMode mode() const { return mode_; }

  // Starts a write: optional head, then add() pieces, then optionally finish(); slices() is
  // then the gather list.
  void begin(std::string_view head);
  void add(std::string_view piece);
  // The end of the body: for chunked, the last chunk and the (already serialized) trailer
  // lines, "Name: value\r\n" each.
  void finish(std::string_view trailer_lines = {});

  const Slice* slices() const { return slices_.data(); }
  size_t count() const { return count_; }
  uint64_t bytes() const { return bytes_; }

 private:
  BodyMode mode_ = BodyMode::kNone;
  // Not zeroed: an attempt carries a framer it may never use (HTTP/2), and every slice and
  // chunk-size line is written before it is read.
  std::array<Slice, kMaxSlices> slices_;
  std::array<std::array<char, 20>, kMaxPieces> sizes_;
  size_t count_ = 0;
  size_t pieces_ = 0;
  uint64_t bytes_ = 0;
};

// The reason phrase switchyard writes for a status it generates ("" for unknown codes).
std::string_view reason_phrase(unsigned status);

// A response switchyard generates itself (404, 413, 502, 503...): a short plain-text body (the
// reason and a newline; only its length for a HEAD request), Retry-After: 1 on a 503, and
// Connection: close or keep-alive as the client's version needs. Head and body go to `out`
// after clearing it; returns the body's size as sent.
size_t write_error_response(std::string& out, unsigned version, unsigned status,
                            std::string_view reason, bool keep_alive, bool head_request);

// Trailer fields as "Name: value\r\n" lines, minus those that must not be trailers (framing,
// routing and hop-by-hop fields: RFC 9110 §6.5.1).
void write_trailers(std::string& out, const FieldList& trailers);

}  // namespace switchyard::http::http1
