#pragma once

// Private to the proxy module. What both ends of switchyard's HTTP/2 (H2Session towards
// clients, H2Client towards endpoints) do the same way with nghttp2. No Asio.

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>

#include "switchyard/http/http1_parser.h"

namespace switchyard::proxy::h2 {

// Output gathered before a write is started.
inline constexpr size_t kMaxOutput = 256 * 1024;

// Appends what nghttp2 has to send to out, until it has nothing more or out holds kMaxOutput.
// False on a fatal session error (the connection must close).
inline bool gather_output(nghttp2_session* ng, std::string& out) {
  for (;;) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(ng, &data);
    if (n < 0) return false;
    if (n == 0) return true;
    out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    if (out.size() >= kMaxOutput) return true;
  }
}

// The options both ends use: windows given back by hand (a peer's bytes count against its
// window until they were taken on), at most 32 settings per frame, 16 CONTINUATION frames per
// header block (CVE-2024-27316), 1000 queued control-frame ACKs (PING/SETTINGS floods), and
// nghttp2's stream reset rate limit (CVE-2023-44487). Caller deletes it.
inline nghttp2_option* new_options() {
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_settings(opt, 32);
  nghttp2_option_set_max_outbound_ack(opt, 1000);
  nghttp2_option_set_max_continuations(opt, 16);
  nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);
  return opt;
}

// A body source for nghttp2's data providers: copies from pieces, resuming at piece/offset,
// into buf (at most length bytes). Returns the bytes copied; drained tells whether every piece
// has been taken.
inline size_t copy_pieces(const http::http1::BodyPieces* pieces, size_t& piece, size_t& offset,
                          uint8_t* buf, size_t length, bool* drained) {
  size_t n = 0;
  while (pieces != nullptr && piece < pieces->count && n < length) {
    std::string_view p = pieces->data[piece].substr(offset);
    const size_t take = std::min(p.size(), length - n);
    std::memcpy(buf + n, p.data(), take);
    n += take;
    offset += take;
    if (offset == pieces->data[piece].size()) {
      ++piece;
      offset = 0;
    }
  }
  *drained = pieces == nullptr || piece == pieces->count;
  return n;
}

}  // namespace switchyard::proxy::h2
