#include "request_head.h"

#include <array>
#include <cctype>

namespace switchyard::proxy {

bool has_obs_fold(std::string_view head) {
  for (size_t i = head.find("\r\n"); i != std::string_view::npos && i + 2 < head.size();
       i = head.find("\r\n", i + 2)) {
    if (head[i + 2] == ' ' || head[i + 2] == '\t') return true;
  }
  return false;
}

bool valid_host(std::string_view host) {
  for (unsigned char c : host) {
    bool ok =
        std::isalnum(c) ||
        std::string_view("-._~!$&'()*+;=:[]%").find(static_cast<char>(c)) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

HeadVerdict check_request_head(Request& req, const config::Limits& limits) {
  // Beast's parser tolerates some framing that another parser could read differently
  // (Content-Length with Transfer-Encoding, "xchunked"...). Framing is decided here, before a
  // body byte is read, and anything ambiguous is refused; the caller then closes the
  // connection, so the bytes after the head are never taken for a second request.
  std::array<std::string_view, 8> lengths;
  std::array<std::string_view, 8> codings;
  size_t n_lengths = 0;
  size_t n_codings = 0;
  size_t n_hosts = 0;
  for (const auto& field : req) {
    if (field.name() == http::field::host) {
      // RFC 9112 §3.2: more than one Host, or an invalid one, is a 400.
      if (++n_hosts > 1) return {400, "more than one Host header"};
      if (!valid_host(field.value())) return {400, "invalid Host header"};
    } else if (field.name() == http::field::content_length) {
      if (n_lengths == lengths.size()) return {400, "too many Content-Length fields"};
      lengths[n_lengths++] = field.value();
    } else if (field.name() == http::field::transfer_encoding) {
      if (n_codings == codings.size()) return {400, "too many Transfer-Encoding fields"};
      codings[n_codings++] = field.value();
    }
  }
  auto framing = decide_framing(req.version(), std::span(lengths.data(), n_lengths),
                                std::span(codings.data(), n_codings));
  if (framing.framing == Framing::kBadRequest) return {400, framing.reason};
  if (framing.framing == Framing::kNotImplemented) return {501, framing.reason};
  if (n_lengths > 1) req.content_length(framing.content_length);  // one field, not duplicates
  if (req.version() >= 11 && n_hosts == 0) return {400, "missing Host header"};
  if (req.target().size() >
      std::min<size_t>(kMaxTargetBytes, limits.max_request_header_bytes / 2)) {
    return {414, "request target too long"};
  }
  return {0, "", framing.framing};
}

}  // namespace switchyard::proxy
