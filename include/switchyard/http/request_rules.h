#pragma once

// What switchyard checks in a request head and what it changes before forwarding it. Pure
// functions over the protocol-neutral RequestHead (http/message.h): no I/O, no allocation
// beyond the reused strings of RequestForward. The HTTP/1.1 session uses them, the request
// fuzzer (tests/fuzz/request_fuzz.cpp) checks them, and an HTTP/2 stream will use them too.

#include <span>
#include <string>
#include <string_view>

#include "switchyard/config/config.h"
#include "switchyard/http/framing.h"
#include "switchyard/http/message.h"
#include "switchyard/http/target.h"

namespace switchyard::http {

// A request target may use at most this much, or half of max_request_header_bytes if that is
// smaller; a longer one is a 414.
constexpr size_t kMaxTargetBytes = 8192;
size_t max_target_bytes(const config::Limits& limits);

// obs-fold (RFC 9112 §5.2): a line break inside the raw head followed by a space or tab. Two
// parsers can disagree on folded values, so switchyard refuses them (before Beast would unfold
// them into a buffer of its own).
bool has_obs_fold(std::string_view raw_head);

// Host = uri-host [ ":" port ] (RFC 9110 §7.2): reg-name, IPv4 or [IPv6] characters only.
bool valid_host(std::string_view host);

// The status for a head that did not fit max_request_header_bytes: 414 when the request line
// alone is over the target limit (or has no end within the bytes received), else 431.
unsigned oversized_head_status(std::string_view received, const config::Limits& limits);

struct HeadVerdict {
  unsigned status = 0;  // 0: acceptable; else the error status to answer
  const char* reason = "";
  Framing framing = Framing::kNone;
  uint64_t content_length = 0;
};

// Framing (decide_framing: exactly one way to find the body's end), a Connection header that
// names a framing field or Host (RFC 9110 §7.6.1 lets a sender name any field; a proxy that
// honoured it would forward a body it no longer frames), Host (required on HTTP/1.1, at most
// one, valid) and the target length.
HeadVerdict check_request_head(const RequestHead& head, const config::Limits& limits);

// What the forwarding rules decided; its strings keep their capacity from request to request.
struct ForwardContext {
  std::string_view client_ip;
  bool peer_trusted = false;
  std::string_view scheme = "http";  // X-Forwarded-Proto for untrusted peers
  // Headers switchyard asserts (the client-region and client-zone headers of the listener's
  // clusters): never believed from an untrusted peer, and set to switchyard's own decision
  // when the routed cluster has a locality block (empty value: removed).
  std::span<const std::string> asserted_headers;
  std::string_view region_header;
  std::string_view region_value;
  std::string_view zone_header;
  std::string_view zone_value;
  // Upgrade protocols this listener tunnels (listeners[].upgrade_protocols); h2c never is.
  std::span<const std::string> upgrade_protocols;
  bool has_body = false;
  // X-Forwarded-Client-Cert (TLS listeners): switchyard's own value for a client that showed
  // a certificate (replaces any received); a received one passes only from a trusted peer.
  std::string_view client_cert;
};

struct RequestForward {
  std::string_view target;  // origin-form
  std::string_view host;    // Host to send; empty: none was received (HTTP/1.0)
  std::string forwarded_for;
  std::string_view forwarded_proto;  // empty: the trusted peer's own is kept
  std::string_view upgrade;          // the protocol offered to the endpoint, or empty
  std::string_view region_header, region_value;
  std::string_view zone_header, zone_value;
  std::string_view client_cert;  // X-Forwarded-Client-Cert to add, or empty
  Framing framing = Framing::kNone;
  uint64_t content_length = 0;
};

// Marks the fields that are not forwarded (hop-by-hop ones, every field Connection names,
// framing fields, which the writer sets from `framing` itself, Expect, forwarding headers that
// are rewritten, asserted headers) and fills out. Call after check_request_head passed.
void plan_request_forward(RequestHead& head, const HeadVerdict& verdict,
                          const RequestTarget& target, const ForwardContext& ctx,
                          RequestForward& out);

}  // namespace switchyard::http
