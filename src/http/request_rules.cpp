#include "switchyard/http/request_rules.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "switchyard/common/ascii.h"

namespace switchyard::http {
namespace {

// A Connection header may name at most this many options: each one is compared with every
// field, so an unbounded list would make a 16 KiB head cost quadratic time.
constexpr size_t kMaxConnectionTokens = 32;

// Calls f(token) for each comma-separated, trimmed, non-empty element of value.
template <typename F>
void for_each_token(std::string_view value, F&& f) {
  while (!value.empty()) {
    auto comma = value.find(',');
    std::string_view token = trim_ows(value.substr(0, comma));
    if (!token.empty()) f(token);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

bool names_framing(std::string_view token) {
  return iequals(token, "content-length") || iequals(token, "transfer-encoding") ||
         iequals(token, "host");
}

bool is_asserted(std::string_view name, std::span<const std::string> asserted) {
  for (const auto& a : asserted) {
    if (a.size() == name.size() && iequals(a, name)) return true;
  }
  return false;
}

}  // namespace

size_t max_target_bytes(const config::Limits& limits) {
  return std::min<size_t>(kMaxTargetBytes, limits.max_request_header_bytes / 2);
}

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

unsigned oversized_head_status(std::string_view received, const config::Limits& limits) {
  // method SP target SP HTTP/1.1: the line is the target plus at most a few dozen bytes.
  size_t eol = received.find('\n');
  size_t line = eol == std::string_view::npos ? received.size() : eol;
  return line > max_target_bytes(limits) ? 414 : 431;
}

HeadVerdict check_request_head(const RequestHead& head, const config::Limits& limits) {
  // Beast's parser tolerates some framing that another parser could read differently
  // (Content-Length with Transfer-Encoding, "xchunked"...). Framing is decided here, before a
  // body byte is read, and anything ambiguous is refused; the caller then closes the
  // connection, so the bytes after the head are never taken for a second request.
  std::array<std::string_view, 8> lengths;
  std::array<std::string_view, 8> codings;
  size_t n_lengths = 0;
  size_t n_codings = 0;
  size_t n_hosts = 0;
  size_t n_tokens = 0;
  bool names_framing_field = false;
  for (const auto& field : head.fields.items) {
    switch (field.id) {
      case FieldId::kHost:
        // RFC 9112 §3.2: more than one Host, or an invalid one, is a 400.
        if (++n_hosts > 1) return {400, "more than one Host header"};
        if (!valid_host(field.value)) return {400, "invalid Host header"};
        break;
      case FieldId::kContentLength:
        if (n_lengths == lengths.size()) return {400, "too many Content-Length fields"};
        lengths[n_lengths++] = field.value;
        break;
      case FieldId::kTransferEncoding:
        if (n_codings == codings.size()) return {400, "too many Transfer-Encoding fields"};
        codings[n_codings++] = field.value;
        break;
      case FieldId::kConnection:
        for_each_token(field.value, [&](std::string_view token) {
          ++n_tokens;
          names_framing_field |= names_framing(token);
        });
        break;
      default:
        break;
    }
  }
  if (names_framing_field) return {400, "Connection header names a framing field"};
  if (n_tokens > kMaxConnectionTokens) return {400, "too many Connection options"};
  auto framing = decide_framing(head.version, std::span(lengths.data(), n_lengths),
                                std::span(codings.data(), n_codings));
  if (framing.framing == Framing::kBadRequest) return {400, framing.reason};
  if (framing.framing == Framing::kNotImplemented) return {501, framing.reason};
  if (head.version >= 11 && n_hosts == 0) return {400, "missing Host header"};
  if (head.target.size() > max_target_bytes(limits)) return {414, "request target too long"};
  return {0, "", framing.framing, framing.content_length};
}

void plan_request_forward(RequestHead& head, const HeadVerdict& verdict,
                          const RequestTarget& target, const ForwardContext& ctx,
                          RequestForward& out) {
  out.target = target.origin;
  out.host = target.authority;
  out.framing = verdict.framing;
  out.content_length = verdict.content_length;
  out.upgrade = {};
  out.forwarded_proto = ctx.scheme;
  out.region_header = ctx.region_header;
  out.region_value = ctx.region_value;
  out.zone_header = ctx.zone_header;
  out.zone_value = ctx.zone_value;
  out.client_cert = ctx.client_cert;
  out.forwarded_for.clear();
  const bool trusted = ctx.peer_trusted;

  // Upgrade: offered only for a request without a body, for a protocol the listener allows,
  // and never h2c (an h2c connection would bypass routing, limits and metrics).
  if (head.upgrade && !ctx.has_body) {
    std::string_view wanted = trim_ows(head.fields.value(FieldId::kUpgrade));
    for (const auto& p : ctx.upgrade_protocols) {
      if (!wanted.empty() && iequals(wanted, p) && !iequals(wanted, "h2c")) out.upgrade = wanted;
    }
  }

  for (auto& field : head.fields.items) {
    switch (field.id) {
      case FieldId::kHost:           // written from out.host
      case FieldId::kContentLength:  // written from the framing switchyard decided
      case FieldId::kTrailer:
      case FieldId::kExpect:  // 100-continue is answered by switchyard
        field.drop = true;
        break;
      case FieldId::kXForwardedFor:
        if (trusted) {
          if (!out.forwarded_for.empty()) out.forwarded_for.append(", ");
          out.forwarded_for.append(field.value);
        }
        field.drop = true;
        break;
      case FieldId::kXForwardedProto:
        if (trusted) {
          out.forwarded_proto = {};  // the trusted peer's own is kept
        } else {
          field.drop = true;
        }
        break;
      case FieldId::kForwarded:
      case FieldId::kXForwardedHost:
        field.drop = !trusted;  // an untrusted client's claims are not passed on
        break;
      default:  // Upgrade is written again from out.upgrade
        if (is_hop_by_hop(field.id)) field.drop = true;
        break;
    }
    if (field.drop || field.id != FieldId::kOther) continue;
    if (!ctx.region_header.empty() && iequals(field.name, ctx.region_header)) {
      field.drop = true;  // replaced by switchyard's decision
    } else if (!ctx.zone_header.empty() && iequals(field.name, ctx.zone_header)) {
      field.drop = true;
    } else if (!trusted && is_asserted(field.name, ctx.asserted_headers)) {
      field.drop = true;
    } else if ((!trusted || !ctx.client_cert.empty()) &&
               iequals(field.name, "x-forwarded-client-cert")) {
      field.drop = true;  // switchyard's own, or an untrusted client's claim
    }
  }
  // Every field the Connection header names is hop-by-hop too (check_request_head bounded
  // their number and refused names of framing fields).
  for (const auto& field : head.fields.items) {
    if (field.id != FieldId::kConnection) continue;
    for_each_token(field.value, [&](std::string_view token) {
      for (auto& other : head.fields.items) {
        if (!other.drop && other.name.size() == token.size() && iequals(other.name, token)) {
          other.drop = true;
        }
      }
    });
  }
  if (!out.forwarded_for.empty()) out.forwarded_for.append(", ");
  out.forwarded_for.append(ctx.client_ip);
}

}  // namespace switchyard::http
