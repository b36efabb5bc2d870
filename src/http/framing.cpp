#include "switchyard/http/framing.h"

#include "switchyard/common/ascii.h"

namespace switchyard::http {
namespace {

// Calls f(token) for each comma-separated, trimmed element of every value (empty ones too).
template <typename F>
void for_each_token(std::span<const std::string_view> values, F&& f) {
  for (std::string_view value : values) {
    while (true) {
      auto comma = value.find(',');
      f(trim_ows(value.substr(0, comma)));
      if (comma == std::string_view::npos) break;
      value = value.substr(comma + 1);
    }
  }
}

FramingResult bad(const char* reason) { return {Framing::kBadRequest, 0, reason}; }

}  // namespace

FramingResult decide_framing(unsigned version, std::span<const std::string_view> content_length,
                             std::span<const std::string_view> transfer_encoding) {
  if (!transfer_encoding.empty()) {
    if (!content_length.empty()) return bad("both Content-Length and Transfer-Encoding");
    if (version < 11) return bad("Transfer-Encoding in an HTTP/1.0 request");
    size_t tokens = 0;
    bool last_chunked = false;
    bool chunked_elsewhere = false;
    bool empty = false;
    for_each_token(transfer_encoding, [&](std::string_view token) {
      if (token.empty()) empty = true;
      if (last_chunked) chunked_elsewhere = true;
      last_chunked = iequals(token, "chunked");
      ++tokens;
    });
    if (empty || chunked_elsewhere || !last_chunked) {
      return bad("Transfer-Encoding must end with chunked, once");
    }
    if (tokens > 1) {
      return {Framing::kNotImplemented, 0, "transfer codings other than chunked"};
    }
    return {Framing::kChunked, 0, ""};
  }
  if (content_length.empty()) return {Framing::kNone, 0, ""};
  std::optional<uint64_t> length;
  bool ok = true;
  for_each_token(content_length, [&](std::string_view token) {
    if (token.empty() || token.size() > 18) {
      ok = false;
      return;
    }
    uint64_t v = 0;
    for (char c : token) {
      if (c < '0' || c > '9') {
        ok = false;
        return;
      }
      v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    if (length && *length != v) ok = false;
    length = v;
  });
  if (!ok) return bad("invalid or conflicting Content-Length");
  if (*length == 0) return {Framing::kNone, 0, ""};
  return {Framing::kContentLength, *length, ""};
}

}  // namespace switchyard::http
