#include "downstream/session.h"

#include <sys/socket.h>

#include <boost/asio/write.hpp>

#include "downstream/h2_session.h"
#include "downstream/request_plan.h"
#include "downstream/tunnel.h"
#include "switchyard/common/ascii.h"
#include "switchyard/common/logging.h"
#include "switchyard/http/response_rules.h"

namespace switchyard::proxy {
namespace {

using boost::system::error_code;

constexpr auto kErrorWriteTimeout = std::chrono::seconds(5);
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

}  // namespace

Session::Session(Worker& worker, size_t listener_index, Socket socket,
                 std::shared_ptr<const tls::ServerContext> tls)
    : worker_(worker),
      listener_index_(listener_index),
      client_(std::move(socket)),
      tls_(std::move(tls)),
      ex_(worker),
      body_(worker) {
  error_code ec;
  auto remote = client_.socket().remote_endpoint(ec);
  id_.ip = ec ? "unknown" : remote.address().to_string();
  if (!ec) {
    if (auto ip = IpAddress::parse(id_.ip)) id_.addr = *ip;
  }
  listener_stats_ = worker_.view()->stats->listeners[listener_index_];
  slot_ = ConnectionSlot(&worker_.shared(), listener_index_, listener_stats_);
  worker_.link(this);
}

Session::~Session() {
  ex_.attempt.cancel();
  worker_.unlink(this);
}

void Session::start() {
  if (tls_) return handshake();
  wait_request();
}

// --- request heads ---------------------------------------------------------------------------

// Between requests: wait for the first byte of the next one under idle_timeout, so that the
// header_timeout measures only how long the head itself takes to arrive.
void Session::wait_request() {
  phase_ = Phase::kIdle;
  if (close_after_response_ || worker_.draining()) return close_gracefully();
  // Nothing of the last request may show in this one's log line or error.
  ex_.begin(worker_.view(), listener_index_, worker_.now());
  ex_.head.method_text = {};
  ex_.head.target = {};
  ex_.head.fields.clear();
  scanned_ = 0;
  timed_out_ = false;
  client_region_ = {};
  response_started_ = false;
  awaiting_body_ = false;
  ex_.attempt.clear();
  if (!in_.empty()) {  // pipelined bytes already here
    begin_head();
    return try_head();
  }
  in_.shrink();
  set_deadline(limits().idle_timeout);
  read_head();
}

void Session::read_head() {
  in_.prepare(kHeadReadRoom, limits().max_request_header_bytes + kHeadReadRoom);
  client_.async_read_some(
      asio::buffer(in_.tail(), in_.room()),
      [self = shared_from_this()](error_code ec, size_t bytes) { self->on_head_bytes(ec, bytes); });
}

void Session::on_head_bytes(error_code ec, size_t bytes) {
  if (ec) {
    if (phase_ == Phase::kHead && timed_out_) {
      client_keep_alive_ = false;
      return respond_error(408, "request header timeout", true);
    }
    return close_now();  // peer closed, idle timeout or drain: the connection just ends
  }
  in_.commit(bytes);
  if (phase_ == Phase::kIdle) begin_head();
  try_head();
}

// The first bytes of a head: from here the request uses the snapshot current now (a reload
// between two requests of a keep-alive connection applies to the second).
void Session::begin_head() {
  phase_ = Phase::kHead;
  ex_.begin(worker_.view(), listener_index_, Clock::now());
  head_deadline_ = ex_.start + limits().header_timeout;
}

void Session::try_head() {
  const auto& lim = limits();
  if (fresh_ && !client_.tls() && ex_.listener->config->speaks(config::ListenerProtocol::kH2)) {
    // h2c with prior knowledge (RFC 9113 §3.3): the connection starts with the preface.
    constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    const std::string_view got = in_.view().substr(0, kPreface.size());
    if (kPreface.starts_with(got)) {
      if (got.size() < kPreface.size()) return read_head();
      return become_h2();
    }
    if (!ex_.listener->config->speaks(config::ListenerProtocol::kHttp1)) return close_now();
  }
  size_t end = http::http1::find_head_end(in_.view(), &scanned_);
  client_version_ = 11;
  client_keep_alive_ = false;  // until a head says otherwise, errors close the connection
  if (end == SIZE_MAX) return respond_error(400, "malformed request", true);
  if (end == 0 || end > lim.max_request_header_bytes) {
    if (in_.size() >= lim.max_request_header_bytes) {
      unsigned status = http::oversized_head_status(in_.view(), lim);
      return respond_error(
          status, status == 414 ? "request target too long" : "request header too large", true);
    }
    return read_head();
  }
  on_head(end);
}

void Session::on_head(size_t head_size) {
  const auto& lim = limits();
  fresh_ = false;
  phase_ = Phase::kRequest;
  std::string_view raw = in_.view().substr(0, head_size);
  if (http::has_obs_fold(raw)) return respond_error(400, "obsolete line folding in header", true);
  parser_.start(lim.max_request_header_bytes,
                lim.max_request_body_bytes == 0
                    ? std::nullopt
                    : std::optional<uint64_t>(lim.max_request_body_bytes));
  auto parsed = parser_.parse_head(raw, ex_.head);
  in_.consume(head_size);  // the head's bytes stay in place until the request ends
  if (parsed == http::http1::ParseStatus::kBodyLimit) {
    return respond_error(413, "request body too large", true);
  }
  if (parsed != http::http1::ParseStatus::kOk) return respond_error(400, "malformed request", true);
  client_version_ = ex_.head.version == 10 ? 10 : 11;
  client_keep_alive_ = ex_.head.keep_alive;
  ex_.verdict = http::check_request_head(ex_.head, lim);
  ex_.has_body = ex_.verdict.framing == http::Framing::kContentLength ||
                 ex_.verdict.framing == http::Framing::kChunked;
  if (ex_.verdict.status != 0) return respond_error(ex_.verdict.status, ex_.verdict.reason, true);
  auto expect = ex_.head.fields.value(http::FieldId::kExpect);
  expect_continue_ = ex_.has_body && iequals(trim_ows(expect), "100-continue");
  continue_sent_ = false;
  if (!ex_.plan_request(id_, client_.tls())) {
    return respond_error(ex_.plan.status, ex_.plan.reason, ex_.plan.close);
  }
  client_region_ = ex_.plan.pick.client_region;
  // A body announced and none of it here yet: no endpoint is claimed until it starts to flow.
  if (ex_.has_body && !parser_.done() && in_.empty()) return await_body();
  start_attempt();
}

void Session::start_attempt() {
  ex_.attempt.start(ex_.attempt_request(), this, shared_from_this());
}

// A client that announces a body and sends none must not hold an endpoint, a pooled connection
// or a slot of the cluster's max_pending_requests: the attempt starts with the body's first
// bytes, which must come within request_body_timeout (else 408). A client that asked for
// 100-continue gets it at once (as NGINX and HAProxy do), then the same wait.
void Session::await_body() {
  awaiting_body_ = true;
  if (expect_continue_ && !continue_sent_) {
    continue_sent_ = true;
    set_deadline(limits().request_body_timeout);
    asio::async_write(client_, asio::buffer(kContinue.data(), kContinue.size()),
                      [self = shared_from_this()](error_code ec, size_t) {
                        if (ec) return self->close_now();
                        self->read_first_body_bytes();
                      });
    return;
  }
  read_first_body_bytes();
}

void Session::read_first_body_bytes() {
  auto room = body_.room(parser_);
  if (room.empty()) return respond_error(400, "malformed request body", true);
  set_deadline(limits().request_body_timeout);
  client_.async_read_some(
      asio::buffer(room.data(), room.size()),
      [self = shared_from_this()](error_code ec, size_t bytes) { self->on_body_bytes(ec, bytes); });
}

// --- request body ----------------------------------------------------------------------------

void Session::want_request_body() {
  if (expect_continue_ && !continue_sent_) {
    // The client waits for this before sending a body (RFC 9110 §10.1.1). The endpoint never
    // sees Expect: by the time its connection is ready, the proxy streams the body itself.
    continue_sent_ = true;
    set_deadline(limits().idle_timeout);
    asio::async_write(client_, asio::buffer(kContinue.data(), kContinue.size()),
                      [self = shared_from_this()](error_code ec, size_t) {
                        if (ec) {
                          self->ex_.attempt.cancel();
                          return self->close_now();
                        }
                        self->produce_body();
                      });
    return;
  }
  produce_body();
}

// Hands the attempt the next body pieces: first those that came with the head (views into
// in_), then what the client sends (read into a body buffer, views into it).
void Session::produce_body() {
  const auto st = body_.next(parser_, in_);
  if (st == http::http1::ParseStatus::kBodyLimit)
    return respond_error(413, "request body too large", true);
  if (st == http::http1::ParseStatus::kBad)
    return respond_error(400, "malformed request body", true);
  const bool last = parser_.done();
  if (body_.pieces().count > 0 || last) return ex_.attempt.send_body(body_.pieces(), last);
  read_body();
}

void Session::read_body() {
  auto room = body_.room(parser_);
  if (room.empty())
    return respond_error(400, "malformed request body", true);  // a 64 KiB chunk header
  set_deadline(limits().idle_timeout);
  client_.async_read_some(
      asio::buffer(room.data(), room.size()),
      [self = shared_from_this()](error_code ec, size_t bytes) { self->on_body_bytes(ec, bytes); });
}

void Session::on_body_bytes(error_code ec, size_t bytes) {
  if (phase_ != Phase::kRequest) return;  // answered meanwhile (the attempt failed)
  if (awaiting_body_) {
    awaiting_body_ = false;
    if (ec) {
      if (!timed_out_) return close_now();
      client_keep_alive_ = false;
      return respond_error(408, "request body timeout", true);
    }
    body_.commit(bytes);
    return start_attempt();
  }
  if (ec) {
    // The client failed mid-body: the endpoint got a truncated request, so that connection
    // cannot be reused; nobody is left to answer.
    ex_.attempt.cancel();
    return close_now();
  }
  body_.commit(bytes);
  produce_body();
}

// --- responses -------------------------------------------------------------------------------

void Session::on_response_head(http::ResponseHead& head, http::http1::BodyPieces& body, bool last) {
  phase_ = Phase::kResponse;
  const bool keep_alive =
      client_keep_alive_ && !close_after_response_ && !worker_.draining() && !body_unread();
  auto plan = http::plan_response(head, client_version_, keep_alive);
  const registry::Endpoint* ep = ex_.attempt.endpoint();
  extra_.clear();
  if (ex_.listener->config->debug_headers) {
    extra_.append("x-switchyard-endpoint: ").append(ep->address_text).append("\r\n");
    if (!ep->region.empty())
      extra_.append("x-switchyard-region: ").append(ep->region).append("\r\n");
    if (!client_region_.empty()) {
      extra_.append("x-switchyard-client-region: ").append(client_region_).append("\r\n");
    }
  }
  ex_.status = head.status;
  client_keep_alive_ = plan.keep_alive;
  http::http1::ResponseWrite w;
  w.version = client_version_;
  w.mode = plan.mode;
  w.content_length = plan.content_length;
  w.keep_alive = plan.keep_alive;
  w.extra = extra_;
  http::http1::write_response_head(out_head_, head, w);
  framer_.reset(plan.mode);
  response_started_ = true;
  write_response(body, last, true);
}

void Session::on_response_body(http::http1::BodyPieces& body, bool last) {
  write_response(body, last, false);
}

void Session::write_response(http::http1::BodyPieces& body, bool last, bool with_head) {
  framer_.begin(with_head ? std::string_view(out_head_) : std::string_view());
  for (size_t i = 0; i < body.count; ++i) framer_.add(body.data[i]);
  if (last) {
    trailer_lines_.clear();
    if (framer_.mode() == http::http1::BodyMode::kChunked && body.trailers != nullptr) {
      http::http1::write_trailers(trailer_lines_, *body.trailers);
    }
    framer_.finish(trailer_lines_);
  }
  ex_.response_bytes += body.bytes;
  set_deadline(limits().idle_timeout);
  asio::async_write(client_, iov_.fill(framer_),
                    [self = shared_from_this(), last](error_code ec, size_t) {
                      self->on_response_written(ec, last);
                    });
}

void Session::on_response_written(error_code ec, bool last) {
  if (ec) {
    ex_.attempt.cancel();  // the client left mid-response; the endpoint's stream is mid-message
    log_request(ex_.status);
    return close_now();
  }
  if (!last) return ex_.attempt.resume();
  ex_.attempt.done();
  finish_request();
}

// The body goes to the client unchanged when its framing here is the endpoint's own
// (Content-Length): then the kernel can move it.
Socket* Session::splice_target() {
  if (client_.tls()) return nullptr;  // the bytes must be encrypted on their way
  return framer_.mode() == http::http1::BodyMode::kLength ? &client_.socket() : nullptr;
}

void Session::on_response_spliced(uint64_t bytes, bool last) {
  ex_.response_bytes += bytes;
  set_deadline(limits().idle_timeout);
  if (!last) return;
  ex_.attempt.done();
  finish_request();
}

void Session::on_attempt_failed(unsigned status, std::string_view reason) {
  respond_error(status, reason, body_unread());
}

void Session::on_response_broken(unsigned, std::string_view) {
  log_request(ex_.status);
  close_now();
}

void Session::on_upgraded(http::ResponseHead& head, std::unique_ptr<UpstreamConnection> conn,
                          std::string_view early) {
  http::http1::ResponseWrite w;
  w.version = client_version_;
  w.upgrade = true;
  w.upgrade_protocol = head.fields.value(http::FieldId::kUpgrade);
  for (auto& f : head.fields.items) {
    if (f.id == http::FieldId::kUpgrade) f.drop = true;  // written once, by the writer
  }
  http::http1::write_response_head(out_head_, head, w);
  ex_.status = 101;
  log_request(101);
  phase_ = Phase::kClosing;
  auto tunnel = std::make_shared<Tunnel>(worker_, std::move(client_), std::move(conn->stream),
                                         std::move(slot_), limits().idle_timeout);
  tunnel->start(out_head_, early, in_.view());
  in_.consume(in_.size());
}

// The connection speaks HTTP/2 from here (ALPN h2, or the h2c preface): an H2Session takes
// the socket, its listener slot and what was read, and this session ends.
void Session::become_h2() {
  phase_ = Phase::kClosing;
  ClientIdentity id{id_.ip, id_.addr, id_.uris, id_.cert};
  auto h2 = std::make_shared<H2Session>(worker_, listener_index_, std::move(client_),
                                        std::move(slot_), std::move(id));
  const std::string early(in_.view());
  in_.consume(in_.size());
  h2->start(early);
}

void Session::finish_request() {
  log_request(ex_.status);
  body_.finish(in_, limits().max_request_header_bytes + kHeadReadRoom);  // pipelined bytes
  in_.compact();
  if (!client_keep_alive_) return close_gracefully();
  wait_request();
}

// --- errors and closing ----------------------------------------------------------------------

void Session::respond_error(unsigned status, std::string_view reason, bool close) {
  ex_.attempt.cancel();
  if (response_started_) {
    log_request(ex_.status);
    return close_now();
  }
  phase_ = Phase::kResponse;
  if (close || close_after_response_ || worker_.draining()) client_keep_alive_ = false;
  ex_.status = status;
  const bool head_request = ex_.head.method == http::Method::kHead && !ex_.head.method_text.empty();
  ex_.response_bytes = http::http1::write_error_response(out_head_, client_version_, status, reason,
                                                         client_keep_alive_, head_request);
  response_started_ = true;
  log_request(status);
  deadline_ = worker_.now() + kErrorWriteTimeout;
  timed_out_ = false;
  asio::async_write(client_, asio::buffer(out_head_),
                    [self = shared_from_this()](error_code ec, size_t) {
                      if (ec) return self->close_now();
                      self->finish_request();
                    });
}

void Session::log_request(unsigned status) {
  if (ex_.logged) return;
  ex_.logged = true;
  ex_.record(status, client_version_, id_.ip, *listener_stats_, worker_.access_log());
}

}  // namespace switchyard::proxy
