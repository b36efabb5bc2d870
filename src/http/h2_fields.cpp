#include "switchyard/http/h2_fields.h"

#include <charconv>
#include <cstring>

#include "switchyard/common/ascii.h"

namespace switchyard::http {
namespace {

// Not forwarded into an HTTP/2 head: the hop-by-hop fields, Host (the :authority is written
// instead) and load reports (for the proxy, never forwarded).
bool connection_specific(FieldId id) {
  if (is_hop_by_hop(id)) return true;
  switch (id) {
    case FieldId::kHost:
    case FieldId::kEndpointLoadMetrics:
    case FieldId::kEndpointLoadMetricsBin:
      return true;
    default:
      return false;
  }
}

}  // namespace

H2Fields& H2Fields::scratch() {
  static thread_local H2Fields fields;
  fields.clear();
  return fields;
}

void H2Fields::clear() {
  store_.clear();
  spans_.clear();
}

void H2Fields::add(std::string_view name, std::string_view value) {
  const size_t at = store_.size();
  spans_.push_back(Span{static_cast<uint32_t>(at), static_cast<uint32_t>(name.size()),
                        static_cast<uint32_t>(at + name.size()),
                        static_cast<uint32_t>(value.size())});
  store_.resize(at + name.size() + value.size());
  char* out = store_.data() + at;
  for (char c : name) *out++ = ascii_lower(c);
  std::memcpy(out, value.data(), value.size());
}

void H2Fields::add_number(std::string_view name, uint64_t value) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  add(name, std::string_view(digits, static_cast<size_t>(end - digits)));
}

void H2Fields::status(unsigned code) { add_number(":status", code); }

void H2Fields::add_kept(const FieldList& fields) {
  for (const auto& f : fields.items) {
    if (f.drop || connection_specific(f.id) || f.name.empty() || f.name[0] == ':') continue;
    add(f.name, f.value);
  }
}

void H2Fields::add_trailers(const FieldList& fields) {
  for (const auto& f : fields.items) {
    if (f.drop || connection_specific(f.id) || f.id == FieldId::kContentLength ||
        f.id == FieldId::kTrailer || f.id == FieldId::kExpect || f.name.empty() ||
        f.name[0] == ':') {
      continue;
    }
    add(f.name, f.value);
  }
}

void H2Fields::add_request(const RequestHead& head, const RequestForward& fwd,
                           bool origin_needs_slash, std::string_view fallback_host,
                           std::string_view scheme) {
  add(":method", head.method_text);
  add(":scheme", scheme);
  add(":authority", fwd.host.empty() ? fallback_host : fwd.host);
  if (origin_needs_slash) {
    std::string path = "/";
    path.append(fwd.target);
    add(":path", path);
  } else {
    add(":path", fwd.target.empty() ? std::string_view("/") : fwd.target);
  }
  bool te_trailers = false;
  for (const auto& f : head.fields.items) {
    if (f.id == FieldId::kTe && trim_ows(f.value) == "trailers") te_trailers = true;
  }
  add_kept(head.fields);
  if (te_trailers) add("te", "trailers");
  add("x-forwarded-for", fwd.forwarded_for);
  if (!fwd.forwarded_proto.empty()) add("x-forwarded-proto", fwd.forwarded_proto);
  if (!fwd.region_header.empty() && !fwd.region_value.empty())
    add(fwd.region_header, fwd.region_value);
  if (!fwd.zone_header.empty() && !fwd.zone_value.empty()) add(fwd.zone_header, fwd.zone_value);
  if (!fwd.client_cert.empty()) add("x-forwarded-client-cert", fwd.client_cert);
  if (fwd.framing == Framing::kContentLength) add_number("content-length", fwd.content_length);
}

const nghttp2_nv* H2Fields::nv() {
  nv_.clear();
  auto* base = reinterpret_cast<uint8_t*>(store_.data());
  for (const auto& s : spans_) {
    nv_.push_back(
        nghttp2_nv{base + s.name, base + s.value, s.name_len, s.value_len, NGHTTP2_NV_FLAG_NONE});
  }
  return nv_.data();
}

}  // namespace switchyard::http
