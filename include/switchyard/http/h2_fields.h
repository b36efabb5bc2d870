#pragma once

// HTTP/2 field translation: a header block for nghttp2 (nghttp2_nv entries) built from the
// protocol-neutral heads: names lower-cased (HTTP/2 requires it), connection-specific fields
// left out (RFC 9113 §8.2.2), pseudo-headers first. nghttp2 copies a block when it is
// submitted, so one scratch block per thread is reused for every submit (no allocation once
// warm). Worker thread.

#include <nghttp2/nghttp2.h>

#include <string>
#include <string_view>
#include <vector>

#include "switchyard/http/message.h"
#include "switchyard/http/request_rules.h"

namespace switchyard::http {

class H2Fields {
 public:
  // The calling thread's scratch block, emptied.
  static H2Fields& scratch();

  void clear();
  void status(unsigned code);
  void add(std::string_view name, std::string_view value);
  void add_number(std::string_view name, uint64_t value);
  // A response's fields that are forwarded (not marked drop, not connection-specific).
  void add_kept(const FieldList& fields);
  // Trailer fields that may be forwarded (no framing, routing or load-report fields).
  void add_trailers(const FieldList& fields);
  // An upstream request: pseudo-headers, then what the forwarding rules kept and added
  // (http1::write_request_head's HTTP/2 twin). te: trailers is kept when the client sent it
  // (gRPC servers require it).
  void add_request(const RequestHead& head, const RequestForward& fwd, bool origin_needs_slash,
                   std::string_view fallback_host, std::string_view scheme);

  const nghttp2_nv* nv();
  size_t size() const { return spans_.size(); }

 private:
  struct Span {
    uint32_t name, name_len, value, value_len;
  };
  std::string store_;
  std::vector<Span> spans_;
  std::vector<nghttp2_nv> nv_;
};

}  // namespace switchyard::http
