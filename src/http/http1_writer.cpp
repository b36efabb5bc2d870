#include "switchyard/http/http1_writer.h"

#include <charconv>

namespace switchyard::http::http1 {
namespace {

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ", 2);
  out.append(value);
  out.append("\r\n", 2);
}

void append_number(std::string& out, uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, static_cast<size_t>(end - buf));
}

void append_kept(std::string& out, const FieldList& fields) {
  for (const auto& f : fields.items) {
    if (!f.drop) append_field(out, f.name, f.value);
  }
}

}  // namespace

void write_request_head(std::string& out, const RequestHead& head, const RequestForward& fwd,
                        bool origin_needs_slash, std::string_view fallback_host) {
  out.clear();
  out.append(head.method_text);
  out.push_back(' ');
  if (origin_needs_slash) out.push_back('/');
  out.append(fwd.target);
  out.append(" HTTP/1.1\r\n", 11);
  std::string_view host = fwd.host.empty() ? fallback_host : fwd.host;
  if (!host.empty()) append_field(out, "Host", host);
  append_kept(out, head.fields);
  append_field(out, "X-Forwarded-For", fwd.forwarded_for);
  if (!fwd.forwarded_proto.empty()) append_field(out, "X-Forwarded-Proto", fwd.forwarded_proto);
  if (!fwd.region_header.empty() && !fwd.region_value.empty()) {
    append_field(out, fwd.region_header, fwd.region_value);
  }
  if (!fwd.zone_header.empty() && !fwd.zone_value.empty()) {
    append_field(out, fwd.zone_header, fwd.zone_value);
  }
  if (!fwd.client_cert.empty()) append_field(out, "X-Forwarded-Client-Cert", fwd.client_cert);
  if (!fwd.upgrade.empty()) {
    out.append("Connection: Upgrade\r\n");
    append_field(out, "Upgrade", fwd.upgrade);
  }
  if (fwd.framing == Framing::kContentLength) {
    out.append("Content-Length: ");
    append_number(out, fwd.content_length);
    out.append("\r\n", 2);
  } else if (fwd.framing == Framing::kChunked) {
    out.append("Transfer-Encoding: chunked\r\n");
  }
  out.append("\r\n", 2);
}

void write_response_head(std::string& out, const ResponseHead& head, const ResponseWrite& w) {
  out.clear();
  out.append(w.version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ", 9);
  const unsigned status = head.status;
  const char code[4] = {static_cast<char>('0' + status / 100 % 10),
                        static_cast<char>('0' + status / 10 % 10),
                        static_cast<char>('0' + status % 10), ' '};
  out.append(code, 4);
  out.append(head.reason.empty() ? reason_phrase(status) : head.reason);
  out.append("\r\n", 2);
  append_kept(out, head.fields);
  out.append(w.extra);
  if (w.mode == BodyMode::kLength) {
    out.append("Content-Length: ");
    append_number(out, w.content_length);
    out.append("\r\n", 2);
  } else if (w.mode == BodyMode::kChunked) {
    out.append("Transfer-Encoding: chunked\r\n");
  }
  if (w.upgrade) {
    out.append("Connection: Upgrade\r\n");
    if (!w.upgrade_protocol.empty()) append_field(out, "Upgrade", w.upgrade_protocol);
  } else if (!w.keep_alive) {
    out.append("Connection: close\r\n");
  } else if (w.version == 10) {
    out.append("Connection: keep-alive\r\n");
  }
  out.append("\r\n", 2);
}

void BodyFramer::begin(std::string_view head) {
  count_ = 0;
  pieces_ = 0;
  bytes_ = 0;
  if (!head.empty()) slices_[count_++] = Slice{head.data(), head.size()};
}

void BodyFramer::add(std::string_view piece) {
  if (piece.empty()) return;
  bytes_ += piece.size();
  if (mode_ != BodyMode::kChunked) {
    slices_[count_++] = Slice{piece.data(), piece.size()};
    return;
  }
  auto& line = sizes_[pieces_++];
  auto [end, ec] = std::to_chars(line.data(), line.data() + line.size() - 2, piece.size(), 16);
  end[0] = '\r';
  end[1] = '\n';
  slices_[count_++] = Slice{line.data(), static_cast<size_t>(end + 2 - line.data())};
  slices_[count_++] = Slice{piece.data(), piece.size()};
  slices_[count_++] = Slice{"\r\n", 2};
}

void BodyFramer::finish(std::string_view trailer_lines) {
  if (mode_ != BodyMode::kChunked) return;
  if (trailer_lines.empty()) {
    slices_[count_++] = Slice{"0\r\n\r\n", 5};
    return;
  }
  slices_[count_++] = Slice{"0\r\n", 3};
  slices_[count_++] = Slice{trailer_lines.data(), trailer_lines.size()};
  slices_[count_++] = Slice{"\r\n", 2};
}

std::string_view reason_phrase(unsigned status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 417:
      return "Expectation Failed";
    case 421:
      return "Misdirected Request";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "";
  }
}

void write_trailers(std::string& out, const FieldList& trailers) {
  out.clear();
  for (const auto& f : trailers.items) {
    if (is_hop_by_hop(f.id)) continue;
    switch (f.id) {
      case FieldId::kHost:
      case FieldId::kContentLength:
      case FieldId::kTrailer:
      case FieldId::kExpect:
      case FieldId::kEndpointLoadMetrics:  // for the proxy (DESIGN.md, Backend load reports)
      case FieldId::kEndpointLoadMetricsBin:
        continue;
      default:
        append_field(out, f.name, f.value);
    }
  }
}

size_t write_error_response(std::string& out, unsigned version, unsigned status,
                            std::string_view reason, bool keep_alive, bool head_request) {
  out.clear();
  out.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  out.append(std::to_string(status)).push_back(' ');
  out.append(reason_phrase(status));
  out.append("\r\nContent-Type: text/plain; charset=utf-8\r\n");
  if (status == 503) out.append("Retry-After: 1\r\n");
  out.append("Content-Length: ").append(std::to_string(reason.size() + 1)).append("\r\n");
  if (!keep_alive) {
    out.append("Connection: close\r\n");
  } else if (version == 10) {
    out.append("Connection: keep-alive\r\n");
  }
  out.append("\r\n");
  if (head_request) return 0;  // HEAD: the length only
  out.append(reason).push_back('\n');
  return reason.size() + 1;
}

}  // namespace switchyard::http::http1
