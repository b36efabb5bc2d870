#include "downstream/h2_stream.h"

#include <cstring>

#include "downstream/h2_session.h"
#include "h2/h2_wire.h"
#include "switchyard/common/ascii.h"
#include "switchyard/http/grpc.h"
#include "switchyard/http/h2_fields.h"
#include "switchyard/http/response_rules.h"

namespace switchyard::proxy {
namespace {

ssize_t read_callback(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                      nghttp2_data_source* source, void*) {
  return static_cast<H2Stream*>(source->ptr)->read_data(buf, length, flags);
}

// grpc-status and grpc-message for an error switchyard reports (H2Fields copies the values).
void add_grpc_status(http::H2Fields& out, unsigned http_status, std::string_view reason) {
  out.add_number("grpc-status", static_cast<unsigned>(http::grpc::status_for_http(http_status)));
  std::string message;
  http::grpc::append_message(message, reason);
  out.add("grpc-message", message);
}

}  // namespace

H2Stream::H2Stream(H2Session& session, std::shared_ptr<H2Session> keep, int32_t id)
    : session_(session), keep_(std::move(keep)), id_(id), ex_(session.worker()) {
  ex_.begin(session_.worker().view(), session_.listener_index(), Clock::now());
  last_progress_ = session_.worker().now();
}

H2Stream::~H2Stream() { ex_.attempt.cancel(); }

void H2Stream::touch() { last_progress_ = session_.worker().now(); }

// --- the request -------------------------------------------------------------------------------

bool H2Stream::add_header(std::string_view name, std::string_view value) {
  const size_t cost = name.size() + value.size() + 32;  // RFC 9113 §6.5.2's measure
  if (in_trailers_) {
    if (trailer_store_.size() + cost > limits().max_request_header_bytes) return false;
    trailer_stored_.push_back(Stored{static_cast<uint32_t>(trailer_store_.size()),
                                     static_cast<uint32_t>(name.size()),
                                     static_cast<uint32_t>(trailer_store_.size() + name.size()),
                                     static_cast<uint32_t>(value.size())});
    trailer_store_.append(name).append(value);
    return true;
  }
  head_bytes_ += cost;
  if (stored_.empty()) {  // one allocation each for a usual head, not one per doubling
    stored_.reserve(16);
    store_.reserve(512);
  }
  if (head_bytes_ > limits().max_request_header_bytes) {
    oversized_ = true;  // answered with 431 once the block ends
    return head_bytes_ <= 4 * static_cast<size_t>(limits().max_request_header_bytes);
  }
  stored_.push_back(Stored{static_cast<uint32_t>(store_.size()), static_cast<uint32_t>(name.size()),
                           static_cast<uint32_t>(store_.size() + name.size()),
                           static_cast<uint32_t>(value.size())});
  store_.append(name).append(value);
  return true;
}

void H2Stream::build_head() {
  std::string_view authority, method, path;
  size_t cookies = 0;
  ex_.head.fields.items.reserve(stored_.size() + 2);
  auto text = [this](uint32_t at, uint32_t len) {
    return std::string_view(store_).substr(at, len);
  };
  for (const auto& s : stored_) {
    const auto name = text(s.name, s.name_len);
    const auto value = text(s.value, s.value_len);
    if (!name.empty() && name[0] == ':') {
      if (name == ":method") method = value;
      if (name == ":path") path = value;
      if (name == ":authority") authority = value;
      continue;
    }
    http::Field f{name, value, http::classify_field(name)};
    if (f.id == http::FieldId::kCookie) {
      if (cookies++ > 0) cookie_.append("; ");
      cookie_.append(value);
      continue;
    }
    if (f.id == http::FieldId::kHost && !authority.empty()) continue;  // :authority wins
    ex_.head.fields.items.push_back(f);
  }
  if (!authority.empty())
    ex_.head.fields.items.push_back(http::Field{"host", authority, http::FieldId::kHost});
  if (cookies > 0)
    ex_.head.fields.items.push_back(http::Field{"cookie", cookie_, http::FieldId::kCookie});
  ex_.head.method_text = method;
  ex_.head.method = http::parse_method(method);
  ex_.head.target = path;
  ex_.head.version = 20;
  ex_.head.keep_alive = true;
}

void H2Stream::on_head(bool end_stream) {
  touch();
  in_trailers_ = true;  // a later header block is the trailers
  end_stream_ = end_stream;
  ex_.has_body = !end_stream;
  build_head();
  grpc_ = http::grpc::is_grpc(
      ex_.head.fields.value(http::FieldId::kContentType));  // errors below as gRPC's
  const auto& lim = limits();
  if (oversized_) return respond_error(431, "request header too large");
  if (ex_.head.method == http::Method::kConnect)
    return respond_error(501, "CONNECT over HTTP/2 is not supported");
  if (ex_.head.target.size() > http::max_target_bytes(lim))
    return respond_error(414, "request target too long");
  ex_.verdict = http::check_request_head(ex_.head, lim);
  if (ex_.verdict.status != 0) return respond_error(ex_.verdict.status, ex_.verdict.reason);
  if (ex_.has_body && ex_.verdict.framing == http::Framing::kNone)
    ex_.verdict.framing = http::Framing::kChunked;
  if (lim.max_request_body_bytes != 0 && ex_.verdict.framing == http::Framing::kContentLength &&
      ex_.verdict.content_length > lim.max_request_body_bytes) {
    return respond_error(413, "request body too large");
  }
  if (!ex_.plan_request(session_.client(), session_.tls())) {
    return respond_error(ex_.plan.status, ex_.plan.reason);
  }
  request_ = ex_.attempt_request();
  if (grpc_) {
    if (auto t = http::grpc::parse_timeout(ex_.head.fields.value(http::FieldId::kGrpcTimeout))) {
      auto ms = std::chrono::ceil<Duration>(*t);
      const Duration route = ex_.plan.route->timeout;  // 0: none
      if (route.count() == 0 || ms < route) request_.timeout = std::max(ms, Duration(1));
    }
  }
  planned_ = true;
  waiting_since_ = session_.worker().now();
  maybe_start();
}

// The attempt starts once the request is worth an endpoint: its body has started to flow (or
// there is none), and the connection is under limits.max_requests_in_flight. Until then the
// stream holds no endpoint and no cluster slot (1,100 streams whose bodies never come cost the
// cluster nothing); the sweep ends a wait for the body's first byte after
// request_body_timeout (408), and a wait for a slot after idle_timeout (503).
void H2Stream::maybe_start() {
  if (!planned_ || started_ || closed_ || response_started_) return;
  if (ex_.has_body && !end_stream_ && body_in_.empty()) return;  // the body's first byte
  if (!in_flight_ && !session_.claim_request(this)) return;      // queued; started when one ends
  in_flight_ = true;
  started_ = true;
  ex_.attempt.start(request_, this, shared_from_this());
}

void H2Stream::start_claimed() {
  in_flight_ = true;  // the session counted it already
  if (closed_ || response_started_ || started_) return release_request();
  started_ = true;
  ex_.attempt.start(request_, this, shared_from_this());
}

void H2Stream::release_request() {
  if (!in_flight_) return;
  in_flight_ = false;
  session_.release_request(this);
}

bool H2Stream::waiting_for_body() const {
  return planned_ && !started_ && !closed_ && !response_started_ && ex_.has_body && !end_stream_ &&
         body_in_.empty();
}

void H2Stream::on_trailers() {
  trailers_.clear();
  for (const auto& s : trailer_stored_) {
    auto name = std::string_view(trailer_store_).substr(s.name, s.name_len);
    auto value = std::string_view(trailer_store_).substr(s.value, s.value_len);
    trailers_.items.push_back(http::Field{name, value, http::classify_field(name)});
  }
  on_end_stream();
}

void H2Stream::on_data(const uint8_t* data, size_t size) {
  touch();
  body_received_ += size;
  if (discard_body_ || closed_) {
    nghttp2_session_consume(session_.ng(), id_, size);
    return;
  }
  const auto limit = limits().max_request_body_bytes;
  if (limit != 0 && body_received_ > limit) {
    nghttp2_session_consume(session_.ng(), id_, size);
    return respond_error(413, "request body too large");
  }
  body_in_.append(reinterpret_cast<const char*>(data), size);
  if (!started_) return maybe_start();
  if (want_body_) hand_body();
}

void H2Stream::on_end_stream() {
  end_stream_ = true;
  if (!started_) return maybe_start();
  if (want_body_ && !discard_body_) hand_body();
}

void H2Stream::want_request_body() {
  // The pieces handed over last time are written: their window goes back to the client.
  if (!body_out_.empty()) {
    nghttp2_session_consume(session_.ng(), id_, body_out_.size());
    body_out_.clear();
    session_.flush_soon();
  }
  want_body_ = true;
  if (!body_in_.empty() || end_stream_) hand_body();
}

void H2Stream::hand_body() {
  want_body_ = false;
  body_out_.swap(body_in_);
  pieces_.clear();
  pieces_.trailers = nullptr;
  if (!body_out_.empty()) {
    pieces_.data[0] = body_out_;
    pieces_.count = 1;
    pieces_.bytes = body_out_.size();
  }
  const bool last = end_stream_;
  if (last && !trailers_.items.empty()) pieces_.trailers = &trailers_;
  ex_.attempt.send_body(pieces_, last);
}

// --- the response ------------------------------------------------------------------------------

void H2Stream::submit(const http::FieldList* fields, unsigned status, bool with_body) {
  http::H2Fields& out = http::H2Fields::scratch();
  out.status(status);
  if (fields != nullptr) out.add_kept(*fields);
  if (ex_.status != 0 && ex_.listener->config->debug_headers) {
    if (const auto* ep = ex_.attempt.endpoint()) {
      out.add("x-switchyard-endpoint", ep->address_text);
      if (!ep->region.empty()) out.add("x-switchyard-region", ep->region);
    }
    if (!ex_.plan.pick.client_region.empty())
      out.add("x-switchyard-client-region", ex_.plan.pick.client_region);
  }
  response_started_ = true;
  nghttp2_data_provider provider{};
  provider.source.ptr = this;
  provider.read_callback = read_callback;
  nghttp2_submit_response(session_.ng(), id_, out.nv(), out.size(),
                          with_body ? &provider : nullptr);
  session_.flush_soon();
}

void H2Stream::on_response_head(http::ResponseHead& head, http::http1::BodyPieces& body,
                                bool last) {
  touch();
  auto plan = http::plan_response(head, 11, true);
  ex_.status = head.status;
  http::FieldList& fields = head.fields;
  if (plan.mode == http::http1::BodyMode::kLength) {
    // HTTP/2 keeps Content-Length (the writer of HTTP/1.1 would have added it back).
    for (auto& f : fields.items) {
      if (f.id == http::FieldId::kContentLength) f.drop = false;
    }
  }
  const bool body_follows =
      head.has_body &&
      (!last || body.bytes > 0 || (body.trailers != nullptr && !body.trailers->items.empty()));
  resp_ = &body;
  piece_ = offset_ = 0;
  resp_last_ = last;
  resp_trailers_ = last ? body.trailers : nullptr;
  submit(&fields, head.status, body_follows);
  if (!body_follows) {
    log_request(ex_.status);
    ex_.attempt.done();
  }
}

void H2Stream::on_response_body(http::http1::BodyPieces& body, bool last) {
  touch();
  resp_ = &body;
  piece_ = offset_ = 0;
  resp_last_ = last;
  resp_trailers_ = last ? body.trailers : nullptr;
  waiting_ = false;
  nghttp2_session_resume_data(session_.ng(), id_);
  session_.flush_soon();
}

ssize_t H2Stream::read_data(uint8_t* buf, size_t length, uint32_t* flags) {
  size_t n = 0;
  if (!error_body_.empty()) {  // an error response switchyard made
    n = std::min(length, error_body_.size() - offset_);
    std::memcpy(buf, error_body_.data() + offset_, n);
    offset_ += n;
    if (offset_ == error_body_.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }
  bool drained = false;
  n = h2::copy_pieces(resp_, piece_, offset_, buf, length, &drained);
  ex_.response_bytes += n;
  if (!drained) return static_cast<ssize_t>(n);
  if (resp_last_) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (broken_status_ != 0) {
      http::H2Fields& trailers = http::H2Fields::scratch();
      add_grpc_status(trailers, broken_status_, broken_reason_);
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      nghttp2_submit_trailer(session_.ng(), id_, trailers.nv(), trailers.size());
    } else if (resp_trailers_ != nullptr && !resp_trailers_->items.empty()) {
      http::H2Fields& trailers = http::H2Fields::scratch();
      trailers.add_trailers(*resp_trailers_);
      if (trailers.size() > 0) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        nghttp2_submit_trailer(session_.ng(), id_, trailers.nv(), trailers.size());
      }
    }
    resp_ = nullptr;
    resp_last_ = false;
    log_request(ex_.status);
    ex_.attempt.done();  // everything is copied out of its buffer
    return static_cast<ssize_t>(n);
  }
  if (!waiting_) {
    waiting_ = true;
    resp_ = nullptr;
    session_.resume_after_send(shared_from_this());
  }
  return n > 0 ? static_cast<ssize_t>(n) : static_cast<ssize_t>(NGHTTP2_ERR_DEFERRED);
}

void H2Stream::resume_attempt() {
  if (ex_.attempt.active()) ex_.attempt.resume();
}

void H2Stream::on_attempt_failed(unsigned status, std::string_view reason) {
  respond_error(status, reason);
}

void H2Stream::respond_error(unsigned status, std::string_view reason) {
  ex_.attempt.cancel();
  if (closed_) return;
  if (response_started_) return reset(NGHTTP2_INTERNAL_ERROR);
  discard_body_ = true;
  if (!body_in_.empty()) {
    nghttp2_session_consume(session_.ng(), id_, body_in_.size());
    body_in_.clear();
  }
  ex_.status = status;
  response_started_ = true;
  http::H2Fields& out = http::H2Fields::scratch();
  if (grpc_) {
    // Trailers-only (gRPC over HTTP/2): HTTP 200 and the status in the one header block.
    out.status(200);
    out.add("content-type", "application/grpc");
    add_grpc_status(out, status, reason);
    nghttp2_submit_response(session_.ng(), id_, out.nv(), out.size(), nullptr);
  } else {
    out.status(status);
    out.add("content-type", "text/plain; charset=utf-8");
    const bool head_request = ex_.head.method == http::Method::kHead;
    error_body_.assign(reason).push_back('\n');
    out.add_number("content-length", error_body_.size());
    offset_ = 0;
    nghttp2_data_provider provider{};
    provider.source.ptr = this;
    provider.read_callback = read_callback;
    if (head_request) error_body_.clear();
    nghttp2_submit_response(session_.ng(), id_, out.nv(), out.size(),
                            head_request ? nullptr : &provider);
    ex_.response_bytes = error_body_.size();
  }
  log_request(status);
  session_.flush_soon();
}

// A gRPC call whose endpoint broke off (or ran out of time) after everything that came had
// been sent on ends with a status in trailers, which its client reads as the call's outcome
// (UNAVAILABLE, DEADLINE_EXCEEDED); otherwise the stream is reset, a visible truncation.
void H2Stream::on_response_broken(unsigned status, std::string_view reason) {
  if (!grpc_ || closed_ || !waiting_ || resp_ != nullptr) return reset(NGHTTP2_INTERNAL_ERROR);
  ex_.attempt.cancel();
  broken_status_ = status;
  broken_reason_.assign(reason);
  resp_last_ = true;
  resp_trailers_ = nullptr;
  waiting_ = false;
  nghttp2_session_resume_data(session_.ng(), id_);
  session_.flush_soon();
}

void H2Stream::on_upgraded(http::ResponseHead&, std::unique_ptr<UpstreamConnection>,
                           std::string_view) {
  reset(NGHTTP2_INTERNAL_ERROR);  // never offered: HTTP/2 requests carry no Upgrade
}

void H2Stream::reset(uint32_t error_code) {
  ex_.attempt.cancel();
  if (closed_) return;
  log_request(ex_.status != 0 ? ex_.status : 502);
  nghttp2_submit_rst_stream(session_.ng(), NGHTTP2_FLAG_NONE, id_, error_code);
  session_.flush_soon();
}

void H2Stream::on_sweep(Clock::time_point now) {
  if (closed_) return;
  if (waiting_for_body()) {
    if (now - waiting_since_ >= limits().request_body_timeout)
      respond_error(408, "request body timeout");
    return;
  }
  if (planned_ && !started_ && !response_started_) {  // queued behind the in-flight cap
    if (now - waiting_since_ >= limits().idle_timeout)
      respond_error(503, "too many requests in flight on this connection");
    return;
  }
  if (now - last_progress_ < limits().idle_timeout) return;
  if (ex_.attempt.active() && !response_started_ && end_stream_) return;  // the route timeout's
  reset(NGHTTP2_CANCEL);
}

void H2Stream::on_closed() {
  if (closed_) return;
  closed_ = true;
  ex_.attempt.cancel();
  release_request();
  session_.unqueue(this);
  // Body bytes received and never given back: the connection's window gets them now (the
  // stream's own is gone with it).
  if (const size_t held = body_in_.size() + body_out_.size(); held > 0) {
    nghttp2_session_consume(session_.ng(), id_, held);
    body_in_.clear();
    body_out_.clear();
  }
  if (!ex_.logged && !ex_.head.method_text.empty()) log_request(ex_.status != 0 ? ex_.status : 499);
  keep_.reset();
}

void H2Stream::log_request(unsigned status) {
  if (ex_.logged) return;
  ex_.logged = true;
  // The exchange is over (answered, failed or reset): its place in the connection's in-flight
  // count goes to the next stream waiting.
  release_request();
  ex_.record(status, 20, session_.client().ip, session_.listener_stats(),
             session_.worker().access_log());
}

}  // namespace switchyard::proxy
