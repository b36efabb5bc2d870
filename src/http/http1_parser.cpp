#include "switchyard/http/http1_parser.h"

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <cstring>
#include <optional>

#include "switchyard/common/ascii.h"

namespace switchyard::http {
namespace {

namespace beast_http = boost::beast::http;
using boost::beast::error_code;
using bsv = boost::beast::string_view;
using http1::BodyPieces;
using http1::ParseStatus;

std::string_view sv(bsv s) { return std::string_view(s.data(), s.size()); }

FieldId from_beast(beast_http::field f, std::string_view name) {
  switch (f) {
    case beast_http::field::host:
      return FieldId::kHost;
    case beast_http::field::content_length:
      return FieldId::kContentLength;
    case beast_http::field::transfer_encoding:
      return FieldId::kTransferEncoding;
    case beast_http::field::connection:
      return FieldId::kConnection;
    case beast_http::field::keep_alive:
      return FieldId::kKeepAlive;
    case beast_http::field::proxy_connection:
      return FieldId::kProxyConnection;
    case beast_http::field::te:
      return FieldId::kTe;
    case beast_http::field::trailer:
      return FieldId::kTrailer;
    case beast_http::field::upgrade:
      return FieldId::kUpgrade;
    case beast_http::field::expect:
      return FieldId::kExpect;
    case beast_http::field::cookie:
      return FieldId::kCookie;
    case beast_http::field::forwarded:
      return FieldId::kForwarded;
    case beast_http::field::http2_settings:
      return FieldId::kHttp2Settings;
    case beast_http::field::content_type:
      return FieldId::kContentType;
    case beast_http::field::unknown:
      return classify_field(name);  // the x-forwarded-* family is not in Beast's table
    default:
      return FieldId::kOther;
  }
}

Method from_beast(beast_http::verb v) {
  switch (v) {
    case beast_http::verb::get:
      return Method::kGet;
    case beast_http::verb::head:
      return Method::kHead;
    case beast_http::verb::post:
      return Method::kPost;
    case beast_http::verb::put:
      return Method::kPut;
    case beast_http::verb::delete_:
      return Method::kDelete;
    case beast_http::verb::options:
      return Method::kOptions;
    case beast_http::verb::trace:
      return Method::kTrace;
    case beast_http::verb::patch:
      return Method::kPatch;
    case beast_http::verb::connect:
      return Method::kConnect;
    default:
      return Method::kOther;
  }
}

// Beast's parser with every callback writing views into the caller's structures.
template <bool IsRequest>
class ViewParser final : public beast_http::basic_parser<IsRequest> {
 public:
  using Head = std::conditional_t<IsRequest, RequestHead, ResponseHead>;
  Head* head = nullptr;
  BodyPieces* pieces = nullptr;
  bool in_trailers = false;

 private:
  void on_request_impl(beast_http::verb method, bsv method_str, bsv target, int version,
                       error_code&) override {
    if constexpr (IsRequest) {
      head->method = from_beast(method);
      head->method_text = sv(method_str);
      head->target = sv(target);
      head->version = static_cast<unsigned>(version);
    }
  }
  void on_response_impl(int code, bsv reason, int version, error_code&) override {
    if constexpr (!IsRequest) {
      head->status = static_cast<unsigned>(code);
      head->reason = sv(reason);
      head->version = static_cast<unsigned>(version);
    }
  }
  void on_field_impl(beast_http::field f, bsv name_b, bsv value_b, error_code&) override {
    std::string_view name = sv(name_b);
    std::string_view value = sv(value_b);
    if (in_trailers) {
      if (pieces != nullptr && pieces->trailers != nullptr) {
        pieces->trailers->items.push_back(Field{name, value, from_beast(f, name), false});
      }
      return;
    }
    head->fields.items.push_back(Field{name, value, from_beast(f, name), false});
  }
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  size_t on_body_impl(bsv body, error_code& ec) override { return take(sv(body), ec); }
  void on_chunk_header_impl(std::uint64_t size, bsv, error_code&) override {
    if (size == 0) in_trailers = true;  // the last chunk: trailer fields follow
  }
  size_t on_chunk_body_impl(std::uint64_t, bsv body, error_code& ec) override {
    return take(sv(body), ec);
  }
  void on_finish_impl(error_code&) override {}

  size_t take(std::string_view body, error_code& ec) {
    if (body.empty()) return 0;
    if (pieces->full()) {
      ec = beast_http::error::need_buffer;  // stops put(); the caller hands the pieces on
      return 0;
    }
    pieces->data[pieces->count++] = body;
    pieces->bytes += body.size();
    return body.size();
  }
};

ParseStatus map_error(const error_code& ec) {
  if (!ec) return ParseStatus::kOk;
  if (ec == beast_http::error::need_more) return ParseStatus::kNeedMore;
  if (ec == beast_http::error::need_buffer) return ParseStatus::kPiecesFull;
  if (ec == beast_http::error::header_limit) return ParseStatus::kHeaderLimit;
  if (ec == beast_http::error::body_limit) return ParseStatus::kBodyLimit;
  return ParseStatus::kBad;
}

}  // namespace

Method parse_method(std::string_view text) {
  return from_beast(beast_http::string_to_verb(bsv(text.data(), text.size())));
}

FieldId classify_field(std::string_view name) {
  switch (name.size()) {
    case 2:
      if (iequals(name, "te")) return FieldId::kTe;
      break;
    case 4:
      if (iequals(name, "host")) return FieldId::kHost;
      break;
    case 6:
      if (iequals(name, "expect")) return FieldId::kExpect;
      if (iequals(name, "cookie")) return FieldId::kCookie;
      break;
    case 7:
      if (iequals(name, "upgrade")) return FieldId::kUpgrade;
      if (iequals(name, "trailer")) return FieldId::kTrailer;
      break;
    case 9:
      if (iequals(name, "forwarded")) return FieldId::kForwarded;
      break;
    case 10:
      if (iequals(name, "connection")) return FieldId::kConnection;
      if (iequals(name, "keep-alive")) return FieldId::kKeepAlive;
      break;
    case 12:
      if (iequals(name, "content-type")) return FieldId::kContentType;
      if (iequals(name, "grpc-timeout")) return FieldId::kGrpcTimeout;
      break;
    case 14:
      if (iequals(name, "content-length")) return FieldId::kContentLength;
      if (iequals(name, "http2-settings")) return FieldId::kHttp2Settings;
      break;
    case 15:
      if (iequals(name, "x-forwarded-for")) return FieldId::kXForwardedFor;
      break;
    case 16:
      if (iequals(name, "proxy-connection")) return FieldId::kProxyConnection;
      if (iequals(name, "x-forwarded-host")) return FieldId::kXForwardedHost;
      break;
    case 17:
      if (iequals(name, "transfer-encoding")) return FieldId::kTransferEncoding;
      if (iequals(name, "x-forwarded-proto")) return FieldId::kXForwardedProto;
      break;
    case 21:
      if (iequals(name, "endpoint-load-metrics")) return FieldId::kEndpointLoadMetrics;
      break;
    case 25:
      if (iequals(name, "endpoint-load-metrics-bin")) return FieldId::kEndpointLoadMetricsBin;
      break;
    default:
      break;
  }
  return FieldId::kOther;
}

const Field* FieldList::find(FieldId id) const {
  for (const auto& f : items) {
    if (f.id == id) return &f;
  }
  return nullptr;
}

const Field* FieldList::find(std::string_view name) const {
  for (const auto& f : items) {
    if (f.name.size() == name.size() && iequals(f.name, name)) return &f;
  }
  return nullptr;
}

std::string_view FieldList::value(FieldId id) const {
  const Field* f = find(id);
  return f ? f->value : std::string_view{};
}

std::string_view FieldList::value(std::string_view name) const {
  const Field* f = find(name);
  return f ? f->value : std::string_view{};
}

size_t FieldList::count(FieldId id) const {
  size_t n = 0;
  for (const auto& f : items) n += f.id == id ? 1 : 0;
  return n;
}

namespace http1 {

size_t find_head_end(std::string_view buf, size_t* scanned) {
  size_t i = *scanned;
  while (i < buf.size()) {
    const void* hit = std::memchr(buf.data() + i, '\n', buf.size() - i);
    if (hit == nullptr) {
      *scanned = buf.size();
      return 0;
    }
    size_t lf = static_cast<size_t>(static_cast<const char*>(hit) - buf.data());
    if (lf == 0 || buf[lf - 1] != '\r') return SIZE_MAX;
    // CRLF CRLF ends the head; "\r\n" alone at the very start is an (invalid) empty line that
    // Beast rejects when the head is parsed.
    if (lf >= 3 && buf[lf - 2] == '\n' && buf[lf - 3] == '\r') return lf + 1;
    i = lf + 1;
  }
  // A terminator straddling two reads is still found: the check above looks back at bytes
  // of the earlier read, which the caller keeps.
  *scanned = i;
  return 0;
}

template <bool IsRequest>
struct Parser<IsRequest>::Impl {
  std::optional<ViewParser<IsRequest>> parser;
};

template <bool IsRequest>
Parser<IsRequest>::Parser() = default;  // the parser is made by the first start()

template <bool IsRequest>
Parser<IsRequest>::~Parser() = default;

template <bool IsRequest>
void Parser<IsRequest>::start(uint32_t header_limit, std::optional<uint64_t> body_limit,
                              bool skip_body) {
  if (!impl_) impl_ = std::make_unique<Impl>();
  auto& p = impl_->parser.emplace();
  p.header_limit(header_limit);
  if (body_limit) {
    p.body_limit(*body_limit);
  } else {
    p.body_limit(boost::none);
  }
  if (skip_body) p.skip(true);
}

template <bool IsRequest>
ParseStatus Parser<IsRequest>::parse_head(std::string_view head, Head& out) {
  auto& p = *impl_->parser;
  out.fields.clear();
  p.head = &out;
  p.eager(false);
  error_code ec;
  size_t used = p.put(boost::asio::const_buffer(head.data(), head.size()), ec);
  if (!ec && used != head.size()) ec = beast_http::error::bad_line_ending;  // cannot happen
  if (!ec && !p.is_header_done()) ec = beast_http::error::need_more;
  ParseStatus status = map_error(ec);
  if (status == ParseStatus::kNeedMore) status = ParseStatus::kBad;  // the head was complete
  if (status != ParseStatus::kOk) return status;
  out.keep_alive = p.keep_alive();
  out.chunked = p.chunked();
  auto length = p.content_length();
  out.content_length = length ? std::optional<uint64_t>(*length) : std::nullopt;
  if constexpr (IsRequest) {
    out.upgrade = p.upgrade();
  } else {
    out.has_body = !p.is_done();
    out.close_delimited = out.has_body && p.need_eof();
  }
  return ParseStatus::kOk;
}

template <bool IsRequest>
size_t Parser<IsRequest>::parse_body(std::string_view in, BodyPieces& pieces, ParseStatus* status) {
  auto& p = *impl_->parser;
  if (p.is_done()) {
    *status = ParseStatus::kOk;
    return 0;
  }
  p.pieces = &pieces;
  p.eager(true);
  error_code ec;
  size_t used = 0;
  if (in.empty()) {
    ec = beast_http::error::need_more;
  } else {
    used = p.put(boost::asio::const_buffer(in.data(), in.size()), ec);
  }
  if (!ec && !p.is_done()) ec = beast_http::error::need_more;
  *status = map_error(ec);
  return used;
}

template <bool IsRequest>
ParseStatus Parser<IsRequest>::parse_eof() {
  auto& p = *impl_->parser;
  if (p.is_done()) return ParseStatus::kOk;
  error_code ec;
  p.put_eof(ec);
  return ec ? ParseStatus::kBad : ParseStatus::kOk;
}

template <bool IsRequest>
bool Parser<IsRequest>::done() const {
  return impl_ && impl_->parser && impl_->parser->is_done();
}

template <bool IsRequest>
std::optional<uint64_t> Parser<IsRequest>::remaining() const {
  auto r = impl_->parser->content_length_remaining();
  return r ? std::optional<uint64_t>(*r) : std::nullopt;
}

template class Parser<true>;
template class Parser<false>;

}  // namespace http1
}  // namespace switchyard::http
