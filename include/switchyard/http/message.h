#pragma once

// Protocol-neutral views of HTTP message heads as received. Every string_view points into the
// connection's own input buffer (HTTP/1.1) or a stream's header storage (HTTP/2), which outlives
// the request; nothing here owns or allocates per message (the field list's capacity is reused
// by the connection that owns it). Pure types: no Asio, no Beast.

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace switchyard::http {

enum class Method : uint8_t {
  kGet,
  kHead,
  kPost,
  kPut,
  kDelete,
  kOptions,
  kTrace,
  kPatch,
  kConnect,
  kOther,
};

// RFC 9110 §9.2.2: GET, HEAD, OPTIONS, TRACE, PUT and DELETE may be sent again automatically.
constexpr bool idempotent(Method m) {
  return m == Method::kGet || m == Method::kHead || m == Method::kOptions || m == Method::kTrace ||
         m == Method::kPut || m == Method::kDelete;
}

// The fields switchyard itself acts on, recognised once by the parser so that the rules below
// compare small integers instead of names. Everything else is kOther.
enum class FieldId : uint8_t {
  kOther,
  kHost,
  kContentLength,
  kTransferEncoding,
  kConnection,
  kKeepAlive,
  kProxyConnection,
  kTe,
  kTrailer,
  kUpgrade,
  kExpect,
  kCookie,
  kXForwardedFor,
  kXForwardedProto,
  kXForwardedHost,
  kForwarded,
  kHttp2Settings,
  kEndpointLoadMetrics,
  kEndpointLoadMetricsBin,  // ORCA's protobuf form (gRPC binary metadata, base64)
  kContentType,
  kGrpcTimeout,
};

// The one list of hop-by-hop fields: they belong to one connection and are never forwarded as
// they came (RFC 9110 §7.6.1, RFC 9113 §8.2.2: Connection, the fields it names, Keep-Alive,
// Proxy-Connection, TE, Transfer-Encoding, Upgrade; HTTP2-Settings belongs to an h2c
// upgrade, RFC 7540 §3.2.1). Each direction adds its own (Host, framing, load reports).
constexpr bool is_hop_by_hop(FieldId id) {
  constexpr auto bit = [](FieldId f) { return uint32_t{1} << static_cast<unsigned>(f); };
  constexpr uint32_t kHopByHop = bit(FieldId::kConnection) | bit(FieldId::kKeepAlive) |
                                 bit(FieldId::kProxyConnection) | bit(FieldId::kTe) |
                                 bit(FieldId::kTransferEncoding) | bit(FieldId::kUpgrade) |
                                 bit(FieldId::kHttp2Settings);
  return static_cast<unsigned>(id) < 32 && ((kHopByHop >> static_cast<unsigned>(id)) & 1u) != 0;
}

// Recognises a field name (ASCII case-insensitive). Pure; any thread.
FieldId classify_field(std::string_view name);
// A method token (case-sensitive, RFC 9110 §9.1); kOther for an extension method.
Method parse_method(std::string_view text);

struct Field {
  std::string_view name;  // as received (case preserved)
  std::string_view value;
  FieldId id = FieldId::kOther;
  bool drop = false;  // set by the forwarding rules: not passed on
};

// The fields of one head, in order. The vector's capacity is kept across messages by its owner.
struct FieldList {
  std::vector<Field> items;

  void clear() { items.clear(); }
  size_t size() const { return items.size(); }
  // The first field with this id / this name (case-insensitive), or nullptr.
  const Field* find(FieldId id) const;
  const Field* find(std::string_view name) const;
  // The value of the first such field, or "".
  std::string_view value(FieldId id) const;
  std::string_view value(std::string_view name) const;
  size_t count(FieldId id) const;
};

struct RequestHead {
  Method method = Method::kGet;
  std::string_view method_text;
  std::string_view target;  // the request-target as received
  unsigned version = 11;    // 10 or 11 (HTTP/1.x); 20 for HTTP/2
  FieldList fields;
  bool keep_alive = true;  // HTTP/1.x connection semantics of this request
  bool upgrade = false;    // Connection: upgrade was present
  bool chunked = false;    // Transfer-Encoding ends in chunked
  std::optional<uint64_t> content_length;
};

struct ResponseHead {
  unsigned status = 0;
  std::string_view reason;
  unsigned version = 11;
  FieldList fields;
  bool keep_alive = true;
  bool chunked = false;
  std::optional<uint64_t> content_length;
  bool close_delimited = false;  // the body runs until the connection closes
  bool has_body = true;          // false: HEAD, 1xx, 204, 304
};

}  // namespace switchyard::http
