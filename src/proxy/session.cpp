#include "session.h"

#include <sys/socket.h>

#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <charconv>

#include "request_head.h"
#include "switchyard/balancer/resource_aware.h"
#include "switchyard/common/asio_endpoint.h"
#include "switchyard/common/logging.h"
#include "switchyard/proxy/framing.h"
#include "switchyard/proxy/retry.h"
#include "switchyard/routing/client_region.h"
#include "switchyard/routing/hash_key.h"

namespace switchyard::proxy {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint32_t kResponseHeaderLimit = 64 * 1024;
constexpr size_t kFirstReadSize = 4096;
constexpr auto kLingerTimeout = std::chrono::seconds(2);
// A session keeps a replay buffer this large between requests; a larger one is freed.
constexpr size_t kKeptReplayCapacity = 8 * 1024;
// Hash keys are hashed on at most this prefix.
constexpr size_t kMaxHashKeyBytes = 256;
constexpr std::string_view kLoadReportHeader = "endpoint-load-metrics";
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

bool is_timeout(const beast::error_code& ec) { return ec == beast::error::timeout; }

}  // namespace

Session::Session(Worker& worker, size_t listener_index, Socket socket)
    : worker_(worker), listener_index_(listener_index), client_(std::move(socket)) {
  beast::error_code ec;
  auto remote = client_.socket().remote_endpoint(ec);
  client_ip_ = ec ? "unknown" : remote.address().to_string();
  if (!ec) {
    auto ip = IpAddress::parse(client_ip_);
    if (ip) client_addr_ = *ip;
  }
  listener_metrics_ = worker_.view()->snapshot->listeners[listener_index_]->metrics;
  listener_metrics_->connections_active.Increment();
  worker_.link(this);
}

Session::~Session() {
  release_endpoint();
  release_retry();
  if (body_buffer_) worker_.release_buffer(std::move(body_buffer_));
  if (tunnel_buffer_) worker_.release_buffer(std::move(tunnel_buffer_));
  listener_metrics_->connections_active.Decrement();
  worker_.shared().listener_connections[listener_index_].fetch_sub(1, std::memory_order_relaxed);
  worker_.unlink(this);
}

void Session::start() { do_wait_request(); }

void Session::on_drain() {
  close_after_response_ = true;
  if (phase_ == Phase::kIdle) {
    beast::error_code ec;
    client_.socket().shutdown(Socket::shutdown_both, ec);
    client_.cancel();
  }
}

void Session::abort() {
  close_after_response_ = true;
  client_.close();
  if (upstream_) upstream_->stream.close();
}

// Between requests: wait for the first byte of the next one under idle_timeout, so that the
// header_timeout below measures only how long the head itself takes to arrive.
void Session::do_wait_request() {
  phase_ = Phase::kIdle;
  if (close_after_response_ || worker_.draining()) return close_gracefully();
  if (client_buffer_.size() > 0) return do_read_head();  // pipelined bytes already here
  const auto& limits = worker_.view()->snapshot->listeners[listener_index_]->config->limits;
  client_.expires_after(limits.idle_timeout);
  client_.async_read_some(client_buffer_.prepare(kFirstReadSize),
                          beast::bind_front_handler(&Session::on_first_bytes, shared_from_this()));
}

void Session::on_first_bytes(beast::error_code ec, size_t bytes) {
  if (ec) return;  // peer closed, idle timeout or drain: the connection just ends
  client_buffer_.commit(bytes);
  do_read_head();
}

void Session::do_read_head() {
  phase_ = Phase::kHead;
  view_ = worker_.view();
  listener_ = view_->snapshot->listeners[listener_index_].get();
  const auto& limits = listener_->config->limits;
  route_ = nullptr;
  cluster_ = nullptr;
  endpoint_ = nullptr;
  tried_count_ = 0;
  retries_done_ = 0;
  response_bytes_ = 0;
  response_head_sent_ = false;
  head_timed_out_ = false;
  logged_ = false;
  request_.emplace();
  request_->header_limit(limits.max_request_header_bytes);
  if (limits.max_request_body_bytes == 0) {
    request_->body_limit(boost::none);
  } else {
    request_->body_limit(limits.max_request_body_bytes);
  }
  start_ = Clock::now();
  // header_timeout is enforced by the worker's sweep (on_sweep), not by the
  // stream's timer: a timed-out stream is closed, and the client is owed a 408 first.
  head_deadline_ = start_ + limits.header_timeout;
  client_.expires_never();
  parse_head();
}

// Offers the buffered bytes to the parser. Beast parses a head only once it is complete and
// contiguous, so until then nothing is consumed; once it is, the raw head bytes are still in
// the buffer for the checks Beast does not make.
void Session::parse_head() {
  beast::error_code ec;
  size_t used = request_->put(client_buffer_.data(), ec);
  if (ec == http::error::need_more) {
    client_.async_read_some(client_buffer_.prepare(kFirstReadSize),
                            beast::bind_front_handler(&Session::on_head_bytes, shared_from_this()));
    return;
  }
  phase_ = Phase::kRequest;
  if (ec) {
    client_keep_alive_ = false;
    client_version_ = 11;
    if (ec == http::error::header_limit)
      return respond_error(431, "request header too large", true);
    if (ec == http::error::body_limit) return respond_error(413, "request body too large", true);
    return respond_error(400, "malformed request", true);
  }
  const char* head = static_cast<const char*>(client_buffer_.data().data());
  bool folded = has_obs_fold(std::string_view(head, used));
  client_buffer_.consume(used);
  if (folded) {
    client_keep_alive_ = false;
    return respond_error(400, "obsolete line folding in header", true);
  }
  on_head_complete();
}

void Session::on_head_bytes(beast::error_code ec, size_t bytes) {
  if (ec) {
    if (head_timed_out_) {
      phase_ = Phase::kRequest;
      client_keep_alive_ = false;
      return respond_error(408, "request header timeout", true);
    }
    return;  // the client went away mid-head: nobody to answer
  }
  client_buffer_.commit(bytes);
  parse_head();
}

void Session::on_sweep(Clock::time_point now) {
  if (phase_ == Phase::kTunnel) {
    if (now - tunnel_activity_ > listener_->config->limits.idle_timeout) end_tunnel();
    return;
  }
  if (phase_ != Phase::kHead || now < head_deadline_ || head_timed_out_) return;
  head_timed_out_ = true;
  beast::error_code ignored;
  client_.socket().cancel(ignored);  // on_head_bytes sees operation_aborted and answers 408
}

void Session::on_head_complete() {
  auto& req = request_->get();
  client_version_ = req.version() == 10 ? 10 : 11;
  client_keep_alive_ = request_->keep_alive();
  const auto& limits = listener_->config->limits;
  auto verdict = check_request_head(req, limits);
  if (verdict.status != 0) return respond_error(verdict.status, verdict.reason, true);
  request_has_body_ = verdict.framing != Framing::kNone;
  auto expect = req[http::field::expect];
  expect_continue_ = !expect.empty() && iequals(expect, "100-continue");
  auto host = req[http::field::host];
  auto target = routing::parse_target(req.target(), host);
  if (!target.valid) return respond_error(400, "invalid request target", true);
  route_ = listener_->router.match(target.host, target.path);
  if (route_ == nullptr) return respond_error(404, "no route for this request", request_has_body_);
  cluster_ = view_->snapshot->clusters[route_->cluster_index].get();
  peer_trusted_ = routing::peer_trusted(*listener_->config, client_addr_);
  client_region_ = {};
  client_zone_ = {};
  if (const auto& locality = cluster_->config->locality) {
    client_region_ = routing::client_region(*listener_->config, req[locality->client_region_header],
                                            peer_trusted_, client_addr_);
    if (!locality->client_zone_header.empty()) {
      client_zone_ = routing::client_zone(*listener_->config, req[locality->client_zone_header],
                                          peer_trusted_);
    }
  }
  if (!extract_hash_key(req, target.path)) {
    return respond_error(400, "request has no hash key", request_has_body_);
  }
  prepare_upstream_request();
  // A body is kept for a replay only while it fits retries.max_body_bytes.
  const auto& retries = route_->retries;
  auto length = request_->content_length();
  replay_.clear();
  replaying_ = false;
  body_touched_ = false;
  replay_ok_ = request_has_body_ && retries.attempts > 0 && retries.max_body_bytes > 0 &&
               (!length || *length <= retries.max_body_bytes);
  deadline_ = Clock::now() + route_->timeout;
  pick_endpoint();
}

// For consistent_hash and maglev: the key per hash.key, copied (its source headers are
// rewritten before the pick). False when it is missing and on_missing_key is reject.
bool Session::extract_hash_key(const http::request<http::buffer_body>& req, std::string_view path) {
  has_hash_key_ = false;
  const auto& cc = *cluster_->config;
  if (cc.strategy != config::Strategy::kConsistentHash &&
      cc.strategy != config::Strategy::kMaglev) {
    return true;
  }
  const auto& hk = cc.hash.key;
  routing::HashKeyInputs in;
  in.target = req.target();
  in.path = path;
  if (hk.source == config::HashKeySource::kHeader) in.header = req[hk.name];
  if (hk.source == config::HashKeySource::kCookie) in.cookie = req[http::field::cookie];
  in.client_ip = client_ip_;
  if (peer_trusted_) in.forwarded_for = req["X-Forwarded-For"];
  auto key = routing::hash_key(hk, in);
  if (!key) return cc.hash.on_missing_key != config::OnMissingKey::kReject;
  hash_key_.assign(key->data(), std::min(key->size(), kMaxHashKeyBytes));
  has_hash_key_ = true;
  return true;
}

void Session::prepare_upstream_request() {
  auto& req = request_->get();
  // An upgrade (WebSocket, h2c...) is offered to the endpoint only for a request without a
  // body; the two hop-by-hop fields it needs are put back after stripping.
  upgrade_requested_ = request_->upgrade() && !request_has_body_;
  if (upgrade_requested_) upgrade_protocol_ = std::string(req[http::field::upgrade]);
  strip_hop_by_hop(req, hop_scratch_);
  if (upgrade_requested_) {
    req.set(http::field::upgrade, upgrade_protocol_);
    req.set(http::field::connection, "Upgrade");
  }
  req.erase(http::field::expect);  // answered here (100 Continue), not by the endpoint
  const bool trusted = peer_trusted_;
  auto xff = req["X-Forwarded-For"];
  if (trusted && !xff.empty()) {
    forwarded_for_.assign(xff.data(), xff.size());
    forwarded_for_.append(", ");
    forwarded_for_.append(client_ip_);
    req.set("X-Forwarded-For", forwarded_for_);
  } else {
    req.set("X-Forwarded-For", client_ip_);
  }
  if (!trusted || req.find("X-Forwarded-Proto") == req.end()) {
    req.set("X-Forwarded-Proto", "http");
  }
  req.version(11);  // upstream connections are HTTP/1.1 keep-alive
}

void Session::pick_endpoint() {
  auto& cluster_state = *cluster_->state;
  // max_pending_requests: requests in flight to the cluster beyond it get 503 at once, not a
  // queue. Counted before picking so that concurrent workers cannot overshoot.
  int64_t others_in_flight = cluster_state.active_tries.fetch_add(1, std::memory_order_relaxed);
  if (others_in_flight >= cluster_->config->circuit_breaker.max_pending_requests) {
    cluster_state.active_tries.fetch_sub(1, std::memory_order_relaxed);
    cluster_->metrics->overflow.Increment();
    std::string reason = "cluster '" + cluster_->config->name + "' is overloaded";
    return respond_error(503, reason, request_has_body_ && !request_->is_done());
  }
  if (tried_count_ == 0) view_->retry_budgets[cluster_->index].on_request();
  balancer::PickContext ctx;
  ctx.client_region = client_region_;
  ctx.client_zone = client_zone_;
  ctx.cross_region = route_->cross_region;
  ctx.hash_key = hash_key_;
  ctx.has_hash_key = has_hash_key_;
  ctx.cluster_in_flight = others_in_flight;
  ctx.usable_endpoints = cluster_state.usable_endpoints.load(std::memory_order_relaxed);
  // A half-open endpoint takes one request (its trial); a pick that lands on one whose trial
  // another request holds picks again without it.
  for (int round = 0;; ++round) {
    ctx.attempt = tried_count_;
    ctx.tried = std::span<const uint32_t>(tried_.data(), tried_count_);
    endpoint_ = cluster_->strategy->pick(ctx, view_->lb[cluster_->index]);
    if (endpoint_ == nullptr) break;
    if (tried_count_ < tried_.size()) tried_[tried_count_++] = endpoint_->index;
    auto& state = *endpoint_->state;
    if (state.breaker.load(std::memory_order_relaxed) != registry::Breaker::kHalfOpen) break;
    if (breaker::claim_trial(state)) {
      trial_ = true;
      break;
    }
    if (round == 2 || tried_count_ >= tried_.size()) {
      endpoint_ = nullptr;
      break;
    }
  }
  if (endpoint_ == nullptr) {
    cluster_state.active_tries.fetch_sub(1, std::memory_order_relaxed);
    cluster_->metrics->no_endpoint.Increment();
    std::string reason = ctx.locality == balancer::LocalityOutcome::kDenied
                             ? "no healthy endpoint in region '" + std::string(client_region_) +
                                   "' of cluster '" + cluster_->config->name +
                                   "', and this route denies cross-region traffic"
                             : "no healthy endpoint in cluster '" + cluster_->config->name + "'";
    return respond_error(503, reason, request_has_body_ && !request_->is_done());
  }
  if (ctx.locality == balancer::LocalityOutcome::kLocal) {
    cluster_->metrics->picks_local->Increment();
  } else if (ctx.locality == balancer::LocalityOutcome::kFallback) {
    cluster_->metrics->picks_fallback->Increment();
  }
  endpoint_->state->active_requests.fetch_add(1, std::memory_order_relaxed);
  active_counted_ = true;
  outcome_recorded_ = false;
  upstream_start_ = Clock::now();
  upstream_ = worker_.take_idle(endpoint_->state->id);
  reused_connection_ = upstream_ != nullptr;
  if (upstream_) return send_request();
  do_connect();
}

// Feeds the circuit breaker and the health score: success is any response below 500.
void Session::record_outcome(bool success) {
  if (!active_counted_ || outcome_recorded_) return;
  outcome_recorded_ = true;
  auto& state = *endpoint_->state;
  bool notify = success
                    ? breaker::record_success(state, trial_)
                    : breaker::record_failure(
                          state, cluster_->config->circuit_breaker.consecutive_failures, trial_);
  trial_ = false;
  if (notify && worker_.shared().outliers != nullptr) {
    worker_.shared().outliers->notify(endpoint_->state);
  }
}

void Session::do_connect() {
  upstream_ = std::make_unique<UpstreamConnection>(worker_.ioc());
  upstream_->endpoint_id = endpoint_->state->id;
  upstream_->stream.expires_after(cluster_->config->upstream.connect_timeout);
  upstream_->stream.async_connect(
      to_endpoint(endpoint_->address),
      beast::bind_front_handler(&Session::on_connect, shared_from_this()));
}

void Session::on_connect(beast::error_code ec) {
  if (ec) {
    endpoint_->state->metrics->connect_failures.Increment();
    record_outcome(false);
    if (logs::proxy().should_log(spdlog::level::debug)) {
      logs::proxy().debug("connect to {} failed: {}", endpoint_->address_text, ec.message());
    }
    if (try_retry(RetryReason::kConnectFailure, 0)) return;
    upstream_.reset();
    return respond_error(502, "upstream connect failed", request_has_body_);
  }
  upstream_->stream.socket().set_option(tcp::no_delay(true), ec);
  send_request();
}

void Session::send_request() {
  auto& req = request_->get();
  serialize_request_head(req);
  out_framing_ = !request_has_body_    ? BodyFraming::kNone
                 : request_->chunked() ? BodyFraming::kChunked
                                       : BodyFraming::kLength;
  upstream_->stream.expires_at(deadline_);
  if (replaying_) {
    // A retry of a request whose whole body was kept: head and body in one write.
    asio::async_write(upstream_->stream, frame_piece(replay_.data(), replay_.size(), true),
                      beast::bind_front_handler(&Session::on_request_written, shared_from_this()));
    return;
  }
  if (request_has_body_) {
    if (!body_buffer_) body_buffer_ = worker_.acquire_buffer();
    // Body bytes that came with the head go out in the same write as the head (one syscall);
    // otherwise the head goes first, so the endpoint can start while the body streams in.
    if (client_buffer_.size() > 0 && !expect_continue_) return do_read_request_body();
  }
  asio::async_write(upstream_->stream, frame_piece(nullptr, 0, !request_has_body_),
                    beast::bind_front_handler(&Session::on_request_written, shared_from_this()));
}

void Session::on_request_written(beast::error_code ec, size_t) {
  if (ec) return upstream_failed(ec, "write");
  if (!request_has_body_ || replaying_) return do_read_response_head();
  if (expect_continue_) return do_send_continue();
  do_read_request_body();
}

// The client waits for this before sending a body (RFC 9110 §10.1.1). The endpoint never sees
// the Expect header: by the time it gets the request head, the proxy is already streaming.
void Session::do_send_continue() {
  expect_continue_ = false;
  client_.expires_after(listener_->config->limits.idle_timeout);
  asio::async_write(client_, asio::buffer(kContinue.data(), kContinue.size()),
                    [self = shared_from_this()](beast::error_code ec, size_t) {
                      if (ec) {
                        self->upstream_.reset();
                        return;
                      }
                      self->do_read_request_body();
                    });
}

void Session::do_read_request_body() {
  body_touched_ = true;
  auto& body = request_->get().body();
  body.data = body_buffer_.get();
  body.size = kBodyBufferSize;
  client_.expires_after(listener_->config->limits.idle_timeout);
  http::async_read_some(
      client_, client_buffer_, *request_,
      beast::bind_front_handler(&Session::on_request_body_read, shared_from_this()));
}

void Session::on_request_body_read(beast::error_code ec, size_t) {
  if (ec == http::error::need_buffer) ec = {};
  if (ec) {
    // The client failed mid-body: the endpoint got a truncated request, so that connection
    // cannot be reused.
    upstream_.reset();
    if (ec == http::error::body_limit) return respond_error(413, "request body too large", true);
    if (ec == http::error::end_of_stream || ec == http::error::partial_message || is_timeout(ec) ||
        ec == asio::error::operation_aborted) {
      return;
    }
    return respond_error(400, "malformed request body", true);
  }
  size_t filled = kBodyBufferSize - request_->get().body().size;
  bool last = request_->is_done();
  if (filled == 0 && !last) return do_read_request_body();  // only framing was parsed
  if (replay_ok_) {
    if (replay_.size() + filled > route_->retries.max_body_bytes) {
      replay_ok_ = false;  // too large to keep (a chunked body of unknown length)
      replay_.clear();
    } else {
      replay_.append(body_buffer_.get(), filled);
    }
  }
  upstream_->stream.expires_at(deadline_);
  asio::async_write(upstream_->stream, frame_piece(body_buffer_.get(), filled, last),
                    [self = shared_from_this(), last](beast::error_code ec, size_t) {
                      if (ec) return self->upstream_failed(ec, "write");
                      if (last) return self->do_read_response_head();
                      self->do_read_request_body();
                    });
}

void Session::do_read_response_head() {
  response_.emplace();
  response_->header_limit(kResponseHeaderLimit);
  response_->body_limit(boost::none);
  if (request_->get().method() == http::verb::head) response_->skip(true);
  upstream_->stream.expires_at(deadline_);
  http::async_read_header(
      upstream_->stream, upstream_->buffer, *response_,
      beast::bind_front_handler(&Session::on_response_head, shared_from_this()));
}

void Session::on_response_head(beast::error_code ec, size_t) {
  if (ec) return upstream_failed(ec, "read");
  unsigned status = response_->get().result_int();
  if (status >= 100 && status < 200) {
    // Interim responses (103 Early Hints, a stray 100) are not forwarded in this version; the
    // final response follows on the same connection. 101 only answers an upgrade we offered.
    if (status == 101) {
      if (!upgrade_requested_) return upstream_failed(http::error::bad_version, "upgrade");
      endpoint_->state->metrics->upstream_requests.increment(status);
      record_outcome(true);
      return start_tunnel();
    }
    return do_read_response_head();
  }
  endpoint_->state->metrics->upstream_requests.increment(status);
  endpoint_->state->observe_latency(
      std::chrono::duration<double, std::milli>(Clock::now() - upstream_start_).count());
  record_outcome(status < 500);
  if (try_retry(RetryReason::kStatus, status)) return;
  prepare_response();
  serialize_response_head(response_->get());
  client_.expires_after(listener_->config->limits.idle_timeout);
  if (response_->is_done() || out_framing_ == BodyFraming::kNone) {
    response_head_sent_ = true;
    asio::async_write(client_, frame_piece(nullptr, 0, true),
                      beast::bind_front_handler(&Session::on_response_written, shared_from_this()));
    return;
  }
  if (!body_buffer_) body_buffer_ = worker_.acquire_buffer();
  // As for requests: body bytes already read with the head share its write; if none are
  // here yet, the head goes out alone now (a streaming endpoint may take its time).
  if (upstream_->buffer.size() > 0) return do_read_response_body();
  response_head_sent_ = true;
  asio::async_write(client_, frame_piece(nullptr, 0, false),
                    beast::bind_front_handler(&Session::on_response_written, shared_from_this()));
}

void Session::consume_load_report() {
  auto& res = response_->get();
  // Load reports are for the proxy, never for the client (DESIGN.md, Backend load reports).
  // Only the first header counts; any repeat is dropped with it.
  auto it = res.find(kLoadReportHeader);
  if (it == res.end()) return;
  auto result = balancer::receive_load_report(*endpoint_->state, it->value());
  cluster_->metrics->load_reports[static_cast<size_t>(result)]->Increment();
  res.erase(kLoadReportHeader);
}

void Session::prepare_response() {
  auto& res = response_->get();
  strip_hop_by_hop(res, hop_scratch_);
  consume_load_report();
  if (listener_->config->debug_headers) {
    res.set("x-switchyard-endpoint", endpoint_->address_text);
    if (!endpoint_->region.empty()) res.set("x-switchyard-region", endpoint_->region);
    if (!client_region_.empty()) res.set("x-switchyard-client-region", client_region_);
  }
  unsigned status = res.result_int();
  bool has_body = request_->get().method() != http::verb::head && status != 204 && status != 304 &&
                  !(status >= 100 && status < 200);
  bool keep_alive = client_keep_alive_ && !close_after_response_ && !worker_.draining();
  if (!has_body) {
    out_framing_ = BodyFraming::kNone;
  } else if (response_->content_length().has_value() && !response_->chunked()) {
    out_framing_ = BodyFraming::kLength;
  } else if (client_version_ == 11) {
    // Chunked from the endpoint, or close-delimited (an HTTP/1.0 endpoint): chunked to 1.1.
    res.chunked(true);
    out_framing_ = BodyFraming::kChunked;
  } else {
    res.chunked(false);  // 1.0 clients do not know chunked: delimit by closing
    out_framing_ = BodyFraming::kUntilClose;
    keep_alive = false;
  }
  res.version(client_version_);
  res.keep_alive(keep_alive);
  client_keep_alive_ = keep_alive;
}

void Session::do_read_response_body() {
  auto& body = response_->get().body();
  body.data = body_buffer_.get();
  body.size = kBodyBufferSize;
  upstream_->stream.expires_at(deadline_);
  http::async_read_some(
      upstream_->stream, upstream_->buffer, *response_,
      beast::bind_front_handler(&Session::on_response_body_read, shared_from_this()));
}

void Session::on_response_body_read(beast::error_code ec, size_t) {
  if (ec == http::error::need_buffer) ec = {};
  if (ec && !response_head_sent_) return upstream_failed(ec, "read");
  if (ec) {
    // The head is already on its way to the client: the only honest signal left is to close
    // the connection so that the truncation is visible.
    if (logs::proxy().should_log(spdlog::level::debug)) {
      logs::proxy().debug("response body from {} failed: {}", endpoint_->address_text,
                          ec.message());
    }
    upstream_.reset();
    log_request(response_->get().result_int());
    release_endpoint();
    client_.close();
    return;
  }
  size_t filled = kBodyBufferSize - response_->get().body().size;
  bool last = response_->is_done();
  if (filled == 0 && !last) return do_read_response_body();
  response_bytes_ += filled;
  response_head_sent_ = true;
  client_.expires_after(listener_->config->limits.idle_timeout);
  asio::async_write(client_, frame_piece(body_buffer_.get(), filled, last),
                    beast::bind_front_handler(&Session::on_response_written, shared_from_this()));
}

void Session::on_response_written(beast::error_code ec, size_t) {
  if (ec) {
    upstream_.reset();  // the client left mid-response; the endpoint's stream is mid-message
    log_request(response_->get().result_int());
    release_endpoint();
    return;
  }
  if (!response_->is_done()) return do_read_response_body();
  finish_request();
}

// --- upgrade tunnel ----------------------------------------------------------------------
// After a 101 the connection is a byte pipe in both directions: each direction reads into its
// own buffer and writes to the other side, and an end of stream is passed on as a half-close,
// so either side may finish sending first. Inactivity beyond idle_timeout (in either
// direction) is enforced by the worker's sweep, not by stream timers: one Beast stream carries
// a read and a write at once here, and their timeouts would interfere.

void Session::start_tunnel() {
  auto& res = response_->get();
  std::string upgrade(res[http::field::upgrade]);
  strip_hop_by_hop(res, hop_scratch_);
  consume_load_report();
  res.set(http::field::upgrade, upgrade);
  res.set(http::field::connection, "Upgrade");
  serialize_response_head(res);
  out_framing_ = BodyFraming::kLength;  // raw bytes from here on
  phase_ = Phase::kTunnel;
  tunnel_activity_ = Clock::now();
  tunnel_open_ = 2;
  response_head_sent_ = true;
  log_request(101);
  client_.expires_never();
  upstream_->stream.expires_never();
  if (!body_buffer_) body_buffer_ = worker_.acquire_buffer();
  tunnel_buffer_ = worker_.acquire_buffer();
  // Bytes the endpoint sent right after its 101 go out with the head.
  size_t early = std::min(upstream_->buffer.size(), kBodyBufferSize);
  asio::buffer_copy(asio::buffer(body_buffer_.get(), early), upstream_->buffer.data());
  upstream_->buffer.consume(early);
  asio::async_write(client_, frame_piece(body_buffer_.get(), early, false),
                    [self = shared_from_this()](beast::error_code ec, size_t) {
                      self->on_tunnel_written(false, ec);
                    });
  // Bytes the client sent after its request head go to the endpoint first.
  size_t pending = std::min(client_buffer_.size(), kBodyBufferSize);
  asio::buffer_copy(asio::buffer(tunnel_buffer_.get(), pending), client_buffer_.data());
  client_buffer_.consume(pending);
  asio::async_write(upstream_->stream.socket(), asio::buffer(tunnel_buffer_.get(), pending),
                    [self = shared_from_this()](beast::error_code ec, size_t) {
                      self->on_tunnel_written(true, ec);
                    });
}

// to_upstream: the client -> endpoint direction (tunnel_buffer_), else endpoint -> client
// (body_buffer_).
void Session::tunnel_read(bool to_upstream) {
  auto& from = to_upstream ? client_.socket() : upstream_->stream.socket();
  char* buffer = to_upstream ? tunnel_buffer_.get() : body_buffer_.get();
  from.async_read_some(asio::buffer(buffer, kBodyBufferSize),
                       [self = shared_from_this(), to_upstream](beast::error_code ec, size_t n) {
                         self->on_tunnel_read(to_upstream, ec, n);
                       });
}

void Session::on_tunnel_read(bool to_upstream, beast::error_code ec, size_t n) {
  auto& to = to_upstream ? upstream_->stream.socket() : client_.socket();
  if (ec) {
    beast::error_code ignored;
    if (ec == asio::error::eof) {
      to.shutdown(Socket::shutdown_send, ignored);  // pass the end of stream on
      if (--tunnel_open_ == 0) end_tunnel();
    } else {
      end_tunnel();
    }
    return;
  }
  tunnel_activity_ = Clock::now();
  if (!to_upstream) response_bytes_ += n;
  char* buffer = to_upstream ? tunnel_buffer_.get() : body_buffer_.get();
  asio::async_write(to, asio::buffer(buffer, n),
                    [self = shared_from_this(), to_upstream](beast::error_code ec, size_t) {
                      self->on_tunnel_written(to_upstream, ec);
                    });
}

void Session::on_tunnel_written(bool to_upstream, beast::error_code ec) {
  if (ec) return end_tunnel();
  tunnel_read(to_upstream);
}

void Session::end_tunnel() {
  if (phase_ != Phase::kTunnel) return;
  phase_ = Phase::kIdle;
  close_after_response_ = true;
  beast::error_code ignored;
  client_.socket().close(ignored);
  if (upstream_) upstream_->stream.socket().close(ignored);
  release_endpoint();
}

// --- outgoing messages ---------------------------------------------------------------------
// Heads are serialized into one reused string and bodies framed by hand, so that each write is
// a single gather of at most five buffers (Beast's serializer walks one buffer per header
// field, which showed in profiles at proxy request rates).

void Session::serialize_request_head(const http::request<http::buffer_body>& req) {
  out_head_.clear();
  out_head_.append(req.method_string());
  out_head_.push_back(' ');
  out_head_.append(req.target());
  out_head_.append(" HTTP/1.1\r\n");
  append_fields(req);
}

void Session::serialize_response_head(const http::response<http::buffer_body>& res) {
  out_head_.clear();
  out_head_.append(client_version_ == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  unsigned status = res.result_int();
  char code[4] = {static_cast<char>('0' + status / 100 % 10),
                  static_cast<char>('0' + status / 10 % 10), static_cast<char>('0' + status % 10),
                  ' '};
  out_head_.append(code, 4);
  std::string_view reason = res.reason();
  if (reason.empty()) reason = http::obsolete_reason(res.result());
  out_head_.append(reason);
  out_head_.append("\r\n");
  append_fields(res);
}

template <typename Fields>
void Session::append_fields(const Fields& fields) {
  for (const auto& field : fields) {
    out_head_.append(field.name_string());
    out_head_.append(": ");
    out_head_.append(field.value());
    out_head_.append("\r\n");
  }
  out_head_.append("\r\n");
  out_head_pending_ = true;
}

const std::array<asio::const_buffer, 5>& Session::frame_piece(const char* data, size_t size,
                                                              bool last) {
  size_t n = 0;
  if (out_head_pending_) {
    out_buffers_[n++] = asio::buffer(out_head_);
    out_head_pending_ = false;
  }
  if (out_framing_ == BodyFraming::kChunked) {
    if (size > 0) {
      auto [end, ec] = std::to_chars(chunk_line_, chunk_line_ + sizeof(chunk_line_) - 2, size, 16);
      end[0] = '\r';
      end[1] = '\n';
      out_buffers_[n++] = asio::buffer(chunk_line_, static_cast<size_t>(end + 2 - chunk_line_));
      out_buffers_[n++] = asio::buffer(data, size);
      out_buffers_[n++] = asio::buffer("\r\n", 2);
    }
    if (last) out_buffers_[n++] = asio::buffer("0\r\n\r\n", 5);
  } else if (size > 0) {
    out_buffers_[n++] = asio::buffer(data, size);
  }
  while (n < out_buffers_.size()) out_buffers_[n++] = asio::const_buffer();
  return out_buffers_;
}

void Session::finish_request() {
  unsigned status = response_->get().result_int();
  auto elapsed = Clock::now() - upstream_start_;
  cluster_->metrics->upstream_duration.Observe(std::chrono::duration<double>(elapsed).count());
  log_request(status);
  release_endpoint();
  if (upstream_ && response_->keep_alive() && upstream_->buffer.size() == 0) {
    const auto& up = cluster_->config->upstream;
    worker_.put_idle(std::move(upstream_), up.idle_timeout, up.max_idle_per_endpoint);
  }
  upstream_.reset();
  response_.reset();
  request_.reset();
  if (body_buffer_) worker_.release_buffer(std::move(body_buffer_));
  if (replay_.capacity() > kKeptReplayCapacity) replay_ = std::string();
  view_.reset();
  if (!client_keep_alive_) return close_gracefully();
  do_wait_request();
}

void Session::upstream_failed(beast::error_code ec, const char* what) {
  if (logs::proxy().should_log(spdlog::level::debug)) {
    logs::proxy().debug("upstream {} to {} failed: {}", what, endpoint_->address_text,
                        ec.message());
  }
  bool closed = ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
                ec == asio::error::eof || ec == asio::error::broken_pipe;
  // A pooled connection that the endpoint closed while it sat idle fails before the first
  // response byte. A request without a body is replayed once, on a fresh connection.
  if (closed && reused_connection_ && can_replay() && upstream_ && upstream_->buffer.size() == 0) {
    reused_connection_ = false;
    replaying_ = body_touched_;
    response_.reset();
    return do_connect();
  }
  record_outcome(false);
  if (try_retry(is_timeout(ec) ? RetryReason::kTimeout : RetryReason::kReset, 0)) return;
  upstream_.reset();
  bool body_unread = request_has_body_ && !request_->is_done();
  if (is_timeout(ec)) return respond_error(504, "upstream timeout", body_unread);
  if (closed) return respond_error(502, "upstream connection closed", body_unread);
  if (std::string_view(ec.category().name()) == "beast.http") {
    return respond_error(502, "invalid response from upstream", body_unread);
  }
  respond_error(502, "upstream failure", body_unread);
}

void Session::respond_error(unsigned status, std::string_view reason, bool close) {
  upstream_.reset();
  release_endpoint();
  if (response_head_sent_) {
    client_.close();
    return;
  }
  if (close) client_keep_alive_ = false;
  if (close_after_response_ || worker_.draining()) client_keep_alive_ = false;
  error_response_.emplace(static_cast<http::status>(status), client_version_);
  auto& res = *error_response_;
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  if (status == 503) res.set(http::field::retry_after, "1");
  res.body().assign(reason.data(), reason.size());
  res.body().push_back('\n');
  res.keep_alive(client_keep_alive_);
  res.prepare_payload();
  response_bytes_ = res.body().size();
  log_request(status);
  client_.expires_after(std::chrono::seconds(5));
  http::async_write(client_, res,
                    beast::bind_front_handler(&Session::on_error_written, shared_from_this()));
}

void Session::on_error_written(beast::error_code ec, size_t) {
  error_response_.reset();
  response_.reset();
  request_.reset();
  if (body_buffer_) worker_.release_buffer(std::move(body_buffer_));
  view_.reset();
  if (ec || !client_keep_alive_) return close_gracefully();
  do_wait_request();
}

// A request can go to another connection if it has no body, if none of its body was read yet
// (a connect failure), or if all of it was read and kept (retries.max_body_bytes).
bool Session::can_replay() const {
  return !request_has_body_ || !body_touched_ || (replay_ok_ && request_->is_done());
}

// Retries (routes[].retries): only before any response byte went to the client, only for a
// request that can be replayed (can_replay), at most `attempts` times, within the cluster's
// retry budget. The next try avoids the endpoints already tried while another is usable, and
// gets the full route timeout again.
bool Session::try_retry(RetryReason reason, unsigned status) {
  if (!can_replay() || response_head_sent_ || upgrade_requested_ ||
      retries_done_ >= route_->retries.attempts || !should_retry(route_->retries, reason, status)) {
    return false;
  }
  auto& cluster_state = *cluster_->state;
  if (!view_->retry_budgets[cluster_->index].allow(
          cluster_state.active_retries.load(std::memory_order_relaxed))) {
    cluster_->metrics->retry_budget_exhausted.Increment();
    return false;
  }
  if (!retry_counted_) {
    cluster_state.active_retries.fetch_add(1, std::memory_order_relaxed);
    retry_counted_ = true;
  }
  ++retries_done_;
  cluster_->metrics->retries.Increment();
  if (logs::proxy().should_log(spdlog::level::debug)) {
    logs::proxy().debug("retrying after a failure on {} (try {})", endpoint_->address_text,
                        retries_done_ + 1);
  }
  upstream_.reset();  // mid-message or failed: never reused
  response_.reset();
  release_endpoint();
  replaying_ = body_touched_;
  deadline_ = Clock::now() + route_->timeout;
  pick_endpoint();
  return true;
}

void Session::release_retry() {
  if (!retry_counted_) return;
  retry_counted_ = false;
  cluster_->state->active_retries.fetch_sub(1, std::memory_order_relaxed);
}

void Session::release_endpoint() {
  if (!active_counted_) return;
  active_counted_ = false;
  if (trial_) {
    trial_ = false;
    breaker::abandon_trial(*endpoint_->state);  // no outcome: the next request is the trial
  }
  endpoint_->state->active_requests.fetch_sub(1, std::memory_order_relaxed);
  cluster_->state->active_tries.fetch_sub(1, std::memory_order_relaxed);
}

void Session::log_request(unsigned status) {
  release_retry();  // the request is answered: it no longer counts against the budget
  if (logged_) return;
  logged_ = true;
  listener_metrics_->downstream_requests.increment(status);
  const auto& cfg = *view_->snapshot->config;
  if (!cfg.access_log.enabled) return;
  AccessEntry entry;
  entry.listener = listener_->config->name;
  entry.client = client_ip_;
  if (request_ && request_->is_header_done()) {
    entry.method = request_->get().method_string();
    entry.target = request_->get().target();
  } else {
    entry.method = "-";
    entry.target = "-";
  }
  entry.version = client_version_;
  entry.status = status;
  entry.bytes_sent = response_bytes_;
  if (cluster_) entry.cluster = cluster_->config->name;
  if (endpoint_) entry.endpoint = endpoint_->address_text;
  entry.duration = Clock::now() - start_;
  worker_.access_log().append(entry, cfg.access_log.format);
}

// Half-close, then read and discard what the client still sends for a short while before
// closing: closing a socket with unread input makes the kernel send RST, which can destroy the
// error response we just wrote before the client reads it.
void Session::close_gracefully() {
  phase_ = Phase::kIdle;
  beast::error_code ec;
  client_.socket().shutdown(Socket::shutdown_send, ec);
  if (ec) return;
  if (!body_buffer_) body_buffer_ = worker_.acquire_buffer();
  client_.expires_after(kLingerTimeout);
  client_.async_read_some(
      asio::buffer(body_buffer_.get(), kBodyBufferSize),
      beast::bind_front_handler(&Session::on_lingering_read, shared_from_this()));
}

void Session::on_lingering_read(beast::error_code ec, size_t) {
  if (ec) return;  // EOF, timeout or error: done, the destructor closes the socket
  client_.async_read_some(
      asio::buffer(body_buffer_.get(), kBodyBufferSize),
      beast::bind_front_handler(&Session::on_lingering_read, shared_from_this()));
}

}  // namespace switchyard::proxy
