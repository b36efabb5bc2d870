#include "upstream/upstream_attempt.h"

#include <boost/asio/write.hpp>
#include <cstring>

#include "switchyard/common/asio_endpoint.h"
#include "switchyard/common/logging.h"
#include "switchyard/http/response_rules.h"
#include "upstream/upstream_pool.h"

namespace switchyard::proxy {
namespace {

using boost::system::error_code;

// A Content-Length body with at least this much still to come after the first read is
// spliced (when the sink allows it): below it, the pipe round trips cost more than the copies.
constexpr uint64_t kSpliceMinBytes = kBodyBufferSize;

bool closed(const error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted ||
         ec == asio::error::not_connected;
}

http::http1::BodyMode mode_for(http::Framing framing) {
  switch (framing) {
    case http::Framing::kContentLength:
      return http::http1::BodyMode::kLength;
    case http::Framing::kChunked:
      return http::http1::BodyMode::kChunked;
    default:
      return http::http1::BodyMode::kNone;
  }
}

}  // namespace

// What the client is told of a failure: the status and the reason.
std::pair<unsigned, std::string_view> UpstreamAttempt::failure_text(Failure kind) {
  switch (kind) {
    case Failure::kConnect:
      return {502, "upstream connect failed"};
    case Failure::kTimeout:
      return {504, "upstream timeout"};
    case Failure::kClosed:
      return {502, "upstream connection closed"};
    case Failure::kInvalid:
      return {502, "invalid response from upstream"};
    case Failure::kOther:
      break;
  }
  return {502, "upstream failure"};
}

// The backup try's sink: what it answers goes to the first try, which decides (the first
// answer wins) and passes it on to the real sink.
class UpstreamAttempt::HedgeSink final : public AttemptSink {
 public:
  explicit HedgeSink(UpstreamAttempt& primary) : primary_(primary) {}
  void want_request_body() override {}  // never: only requests without a body are hedged
  void on_response_head(http::ResponseHead& head, http::http1::BodyPieces& body,
                        bool last) override {
    primary_.hedge_answered(head, body, last);
  }
  void on_response_body(http::http1::BodyPieces& body, bool last) override {
    primary_.sink_->on_response_body(body, last);
  }
  void on_attempt_failed(unsigned status, std::string_view reason) override {
    primary_.hedge_failed(status, reason);
  }
  void on_response_broken(unsigned status, std::string_view reason) override {
    primary_.sink_->on_response_broken(status, reason);
  }
  void on_upgraded(http::ResponseHead&, std::unique_ptr<UpstreamConnection>,
                   std::string_view) override {}  // never: upgrades are not hedged
  Socket* splice_target() override { return primary_.sink_->splice_target(); }
  void on_response_spliced(uint64_t bytes, bool last) override {
    primary_.sink_->on_response_spliced(bytes, last);
  }

 private:
  UpstreamAttempt& primary_;
};

UpstreamAttempt::UpstreamAttempt(Worker& worker)
    : worker_(worker),
      timer_(worker.ioc().get_executor()),
      hedge_timer_(worker.ioc().get_executor()) {}

UpstreamAttempt::~UpstreamAttempt() {
  h2_release();
  end_splice(false);
  release_endpoint();
  release_retry();
  if (buffer_) worker_.release_buffer(std::move(buffer_));
}

void UpstreamAttempt::start(const AttemptRequest& request, AttemptSink* sink,
                            std::shared_ptr<void> owner) {
  req_ = request;
  if (req_.timeout.count() <= 0) req_.timeout = req_.route->timeout;
  sink_ = sink;
  owner_ = std::move(owner);
  active_ = true;
  retries_done_ = 0;
  stale_replayed_ = false;
  head_delivered_ = false;
  head_parsed_ = false;
  broken_after_head_ = false;
  upstream_done_ = false;
  body_done_ = !req_.has_body;
  body_touched_ = false;
  replaying_ = false;
  replay_.clear();
  pieces_ = nullptr;
  const auto& retries = req_.route->retries;
  const auto& fwd = *req_.forward;
  // The body is kept for a replay: for a retry the route allows, and to an HTTP/2 endpoint
  // whatever the method, because a stream it refuses (GOAWAY past it, REFUSED_STREAM) was not
  // processed and goes again (RFC 9113 §8.7).
  const bool h2_upstream = req_.balancer->config().protocol != config::UpstreamProtocol::kHttp1;
  refusals_ = 0;
  refused_on_ = nullptr;
  replay_ok_ = req_.has_body && retries.max_body_bytes > 0 &&
               (h2_upstream || (retries.attempts > 0 &&
                                (http::idempotent(req_.head->method) || retries.non_idempotent))) &&
               (fwd.framing != http::Framing::kContentLength ||
                fwd.content_length <= retries.max_body_bytes);
  stats_ = req_.cluster->stats;
  memo_.reset();
  if (req_.avoid != nullptr) {  // a backup try: not where the first one went
    memo_.tried = req_.avoid->tried;
    memo_.tried_count = req_.avoid->tried_count;
  }
  hedge_state_ = HedgeState::kNone;
  if (!req_.hedged_try) req_.cluster->retry_budget.on_request();
  try_once();
  if (active_ && retries_done_ == 0) arm_hedge();
}

// --- hedging -----------------------------------------------------------------------------------

// A request that may be sent twice (idempotent, no body, no upgrade) on a route with a hedge:
// after the delay, if the first try has not answered, a backup goes to another endpoint.
void UpstreamAttempt::arm_hedge() {
  const auto& hedge = req_.route->hedge;
  if (!hedge || req_.hedged_try || req_.has_body || !req_.forward->upgrade.empty() ||
      !http::idempotent(req_.head->method)) {
    return;
  }
  const Duration delay = hedge_delay(*hedge, req_.cluster->latencies);
  if (delay.count() <= 0) return;
  hedge_state_ = HedgeState::kArmed;
  hedge_timer_.expires_at(try_start_ + delay);
  hedge_timer_.async_wait([this, keep = owner_.lock(), g = ++hedge_generation_](
                              boost::system::error_code ec) { on_hedge_timer(ec, g); });
}

void UpstreamAttempt::on_hedge_timer(boost::system::error_code ec, uint64_t generation) {
  if (ec || generation != hedge_generation_ || !active_ || hedge_state_ != HedgeState::kArmed)
    return;
  if (head_parsed_ || head_delivered_ || upstream_done_) return;  // answered meanwhile
  // A backup try is a retry as far as the budget goes: it cannot multiply an outage's load.
  if (!take_retry_token()) {
    hedge_state_ = HedgeState::kNone;
    return;
  }
  stats_->counters.add(ClusterStats::kHedges);
  hedge_state_ = HedgeState::kSent;
  if (!hedge_) {
    hedge_ = std::make_unique<UpstreamAttempt>(worker_);
    hedge_sink_ = std::make_unique<HedgeSink>(*this);
  }
  AttemptRequest backup = req_;
  backup.hedged_try = true;
  backup.avoid = &memo_;
  hedge_->start(backup, hedge_sink_.get(), owner_.lock());  // may fail at once (hedge_failed)
}

// The first try answered first (or the request ends): the backup goes.
void UpstreamAttempt::cancel_hedge(HedgeState next) {
  ++hedge_generation_;
  hedge_timer_.cancel();
  if (hedge_state_ == HedgeState::kSent || hedge_state_ == HedgeState::kPrimaryFailed ||
      hedge_state_ == HedgeState::kHedgeWon) {
    hedge_->cancel();
  }
  if (hedge_state_ != HedgeState::kNone) hedge_state_ = next;
}

void UpstreamAttempt::hedge_answered(http::ResponseHead& head, http::http1::BodyPieces& body,
                                     bool last) {
  if (hedge_state_ != HedgeState::kSent && hedge_state_ != HedgeState::kPrimaryFailed) return;
  if (hedge_state_ == HedgeState::kSent) {
    // The first try loses: it gives up its connection and endpoint without an outcome (it did
    // not fail; it was slower).
    ++generation_;
    disarm_timer();
    end_splice(false);
    drop_connection();
    release_endpoint();
  }
  hedge_state_ = HedgeState::kHedgeWon;
  stats_->counters.add(ClusterStats::kHedgeWins);
  sink_->on_response_head(head, body, last);
}

void UpstreamAttempt::hedge_failed(unsigned status, std::string_view reason) {
  if (hedge_state_ == HedgeState::kPrimaryFailed) return end_failed(status, reason);
  // The first try is still under way: it decides alone.
  if (hedge_state_ == HedgeState::kSent) hedge_state_ = HedgeState::kNone;
}

std::string_view UpstreamAttempt::hedge_outcome() const {
  switch (hedge_state_) {
    case HedgeState::kHedgeWon:
      return "won";
    case HedgeState::kSent:
    case HedgeState::kPrimaryFailed:
    case HedgeState::kPrimaryWon:
      return "sent";
    default:
      return {};
  }
}

// --- picking ---------------------------------------------------------------------------------

void UpstreamAttempt::try_once() {
  // One clock read serves the pick (latency-aware policies) and the try's start.
  const auto now = Clock::now();
  req_.pick.now_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  req_.balancer->pick(req_.pick, memo_, req_.cluster->lb, pick_);
  if (pick_.ref == nullptr) return end_failed(pick_.status, pick_.reason);
  reached_ = false;
  got_bytes_ = false;
  timed_out_ = false;
  connect_timed_out_ = false;
  connecting_ = false;
  read_pending_ = false;
  write_pending_ = false;
  head_pending_ = true;
  try_start_ = now;
  // The route timeout runs from the end of the request (Envoy's rule): while the body streams,
  // each upstream write gets it instead.
  if (body_done_ || replaying_) arm_timer(exchange_deadline(try_start_));
  // A request that must not be sent twice only goes on a pooled connection that is known to
  // be open (a peek), so that it is never lost to an idle-close race.
  const bool careful = !http::idempotent(req_.head->method) && !req_.route->retries.non_idempotent;
  tls_ = req_.cluster->tls;
  if (req_.balancer->config().protocol != config::UpstreamProtocol::kHttp1) return h2_try();
  h2_mode_ = false;
  conn_ = worker_.pool().take(pick_.ref->endpoint->id, careful, tls_.get());
  reused_ = conn_ != nullptr;
  if (conn_) return begin_send();
  connect();
}

void UpstreamAttempt::connect() {
  conn_ = std::make_unique<UpstreamConnection>(worker_.ioc());
  conn_->endpoint_id = pick_.ref->endpoint->id;
  conn_->tls = tls_;
  reused_ = false;
  auto connect_deadline = Clock::now() + req_.balancer->config().upstream.connect_timeout;
  const bool route_sooner = timer_armed_ && deadline_ < connect_deadline;
  if (!route_sooner) arm_timer(connect_deadline, /*for_connect=*/true);
  connecting_ = true;
  conn_->socket().async_connect(to_endpoint(pick_.ref->endpoint->address),
                                [this, keep = owner_.lock(), g = generation_](error_code ec) {
                                  if (g != generation_) return;
                                  connecting_ = false;
                                  on_connect(ec);
                                });
}

void UpstreamAttempt::on_connect(error_code ec) {
  if (connect_timed_out_) {
    connect_timed_out_ = false;
    timed_out_ = false;  // connect_timeout is a connect failure, not the route's timeout
    if (!ec) ec = asio::error::timed_out;
  }
  if (ec) {
    endpoint_stats().connect_failures.add(0);
    if (logs::proxy().should_log(spdlog::level::debug)) {
      logs::proxy().debug("connect to {} failed: {}", endpoint()->address_text, ec.message());
    }
    return fail(ec, Failure::kConnect);
  }
  conn_->socket().set_option(tcp::no_delay(true), ec);
  if (tls_ != nullptr) return handshake();
  connected();
}

// Upstream TLS: the handshake is part of connecting (under connect_timeout; a failure is a
// connect failure, retried like one).
void UpstreamAttempt::handshake() {
  SSL* ssl = tls_->new_ssl(tls::host_of(pick_.ref->endpoint->address_text));
  if (ssl == nullptr) return fail(asio::error::no_memory, Failure::kConnect);
  conn_->stream.use_tls(ssl);
  connecting_ = true;
  conn_->stream.async_handshake(asio::ssl::stream_base::client, [this, keep = owner_.lock(),
                                                                 g = generation_](error_code ec) {
    if (g != generation_) return;
    connecting_ = false;
    if (connect_timed_out_) {
      connect_timed_out_ = false;
      timed_out_ = false;
      if (!ec) ec = asio::error::timed_out;
    }
    if (ec) {
      endpoint_stats().connect_failures.add(0);
      logs::warn_every(logs::proxy(), logs::Reason::kUpstreamTls,
                       "TLS handshake with {} failed: {}", endpoint()->address_text, ec.message());
      return fail(ec, Failure::kConnect);
    }
    connected();
  });
}

void UpstreamAttempt::connected() {
  req_.balancer->connect_result(pick_, true);
  if (body_done_ || replaying_) {
    arm_timer(exchange_deadline(try_start_));
  } else {
    disarm_timer();
  }
  begin_send();
}

// --- sending ---------------------------------------------------------------------------------

void UpstreamAttempt::begin_send() {
  http::http1::write_request_head(out_head_, *req_.head, *req_.forward, req_.origin_needs_slash,
                                  pick_.ref->endpoint->address_text);
  head_pending_ = true;
  if (!req_.has_body || replaying_) return write();
  if (pieces_ != nullptr) return write();  // a fresh connection for pieces not yet sent
  sink_->want_request_body();
}

void UpstreamAttempt::send_body(http::http1::BodyPieces& pieces, bool last) {
  pieces_ = &pieces;
  body_done_ = last;
  body_touched_ = true;
  if (replay_ok_) {
    if (replay_.size() + pieces.bytes > req_.route->retries.max_body_bytes) {
      replay_ok_ = false;  // too large to keep (a chunked body of unknown length)
      replay_.clear();
    } else {
      for (size_t i = 0; i < pieces.count; ++i) replay_.append(pieces.data[i]);
    }
  }
  write();
}

void UpstreamAttempt::write() {
  if (h2_mode_) {  // the stream's body provider takes the pieces
    h2_piece_ = 0;
    h2_offset_ = 0;
    // An endpoint that never opens its window must not hold the request forever.
    if (!body_done_ && !timer_armed_) arm_timer(exchange_deadline(Clock::now()));
    return h2_->resume_body(h2_id_);
  }
  framer_.reset(req_.has_body ? mode_for(req_.forward->framing) : http::http1::BodyMode::kNone);
  framer_.begin(head_pending_ ? std::string_view(out_head_) : std::string_view());
  bool last = !req_.has_body;
  if (replaying_) {
    framer_.add(replay_);
    last = true;
  } else if (req_.has_body && pieces_ != nullptr) {
    for (size_t i = 0; i < pieces_->count; ++i) framer_.add(pieces_->data[i]);
    last = body_done_;
  }
  if (last && framer_.mode() == http::http1::BodyMode::kChunked) {
    trailer_lines_.clear();
    if (!replaying_ && pieces_ != nullptr && pieces_->trailers != nullptr) {
      http::http1::write_trailers(trailer_lines_, *pieces_->trailers);
    }
    framer_.finish(trailer_lines_);
  }
  if (!last && !timer_armed_) arm_timer(exchange_deadline(Clock::now()));  // a stalled endpoint
  write_pending_ = true;
  asio::async_write(
      conn_->stream, iov_.fill(framer_),
      [this, keep = owner_.lock(), g = generation_, last](error_code ec, size_t bytes) {
        if (g != generation_) return;
        write_pending_ = false;
        on_written(ec, bytes, last);
      });
}

void UpstreamAttempt::on_written(error_code ec, size_t bytes, bool last) {
  if (bytes > 0) reached_ = true;
  progressed();
  if (ec) return fail(ec, closed(ec) ? Failure::kClosed : Failure::kOther);
  head_pending_ = false;
  if (last) {
    body_done_ = true;
    // The request is complete: the route timeout starts now.
    arm_timer(exchange_deadline(Clock::now()));
    return read_response_head();
  }
  disarm_timer();  // waiting for the client is the client's idle_timeout, not ours
  sink_->want_request_body();
}

// --- receiving -------------------------------------------------------------------------------

void UpstreamAttempt::read_response_head() {
  if (!buffer_) buffer_ = worker_.acquire_buffer();
  fill_ = 0;
  parsed_ = 0;
  scanned_ = 0;
  head_delivered_ = false;
  head_parsed_ = false;
  broken_after_head_ = false;
  upstream_done_ = false;
  trailers_.clear();
  pieces_out_.clear();
  pieces_out_.trailers = &trailers_;
  parser_.start(kBodyBufferSize, std::nullopt, req_.head->method == http::Method::kHead);
  do_read_head();
}

void UpstreamAttempt::do_read_head() {
  read_pending_ = true;
  conn_->stream.async_read_some(
      asio::buffer(buffer_.get() + fill_, kBodyBufferSize - fill_),
      [this, keep = owner_.lock(), g = generation_](error_code ec, size_t bytes) {
        if (g != generation_) return;
        read_pending_ = false;
        on_head_read(ec, bytes);
      });
}

void UpstreamAttempt::on_head_read(error_code ec, size_t bytes) {
  if (ec) return fail(ec, closed(ec) ? Failure::kClosed : Failure::kOther);
  got_bytes_ = true;
  progressed();
  fill_ += bytes;
  for (;;) {
    std::string_view rest(buffer_.get() + parsed_, fill_ - parsed_);
    size_t end = http::http1::find_head_end(rest, &scanned_);
    if (end == SIZE_MAX) return fail({}, Failure::kInvalid);
    if (end == 0) {
      if (fill_ == kBodyBufferSize) return fail({}, Failure::kInvalid);  // head too large
      return do_read_head();
    }
    std::string_view raw = rest.substr(0, end);
    if (http::has_obs_fold(raw) ||
        parser_.parse_head(raw, head_) != http::http1::ParseStatus::kOk) {
      return fail({}, Failure::kInvalid);
    }
    parsed_ += end;
    scanned_ = 0;
    if (head_.status >= 100 && head_.status < 200 && head_.status != 101) {
      // Interim responses (100, 103 Early Hints) are not forwarded; the final one follows.
      parser_.start(kBodyBufferSize, std::nullopt, req_.head->method == http::Method::kHead);
      continue;
    }
    return on_response_head();
  }
}

void UpstreamAttempt::on_response_head() {
  const unsigned status = head_.status;
  endpoint_stats().upstream_requests.add(status);
  if (status == 101) {
    if (req_.forward->upgrade.empty()) return fail({}, Failure::kInvalid);  // nothing offered
    req_.balancer->report(pick_, true);
    disarm_timer();
    release_endpoint();
    release_retry();
    active_ = false;
    ++generation_;
    auto conn = std::move(conn_);
    std::string_view early(buffer_.get() + parsed_, fill_ - parsed_);
    sink_->on_upgraded(head_, std::move(conn), early);  // copies `early` before returning
    worker_.release_buffer(std::move(buffer_));
    owner_.reset();
    return;
  }
  if (!accept_final_head()) return;
  parse_body();
}

// A final response head (either protocol): latency, the load report, the breaker's outcome,
// and a retry on its status. False when a retry took over.
bool UpstreamAttempt::accept_final_head() {
  const unsigned status = head_.status;
  const auto now = Clock::now();
  const double ms = std::chrono::duration<double, std::milli>(now - try_start_).count();
  const int64_t now_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  req_.balancer->observe_head(pick_, status, ms, now_ns);
  if (status < 500 && status != 429) {
    req_.cluster->latencies.add(ms);  // hedge delays at a percentile
  }
  // Load reports are for the proxy, never for the client (DESIGN.md, Backend load reports):
  // the first one counts, a repeat is dropped with it (plan_response drops them all).
  report_taken_ = false;
  accept_load_report(head_.fields);
  req_.balancer->report(pick_, status < 500);
  if (try_retry(RetryReason::kStatus, status)) return false;
  head_parsed_ = true;
  if (hedge_state_ != HedgeState::kNone) cancel_hedge(HedgeState::kPrimaryWon);
  return true;
}

void UpstreamAttempt::parse_body() {
  // Until the head goes to the client, pieces accumulate (views into the buffer, which is not
  // compacted meanwhile): see the coalescing below.
  if (head_delivered_) pieces_out_.clear();
  http::http1::ParseStatus st = http::http1::ParseStatus::kOk;
  size_t used = parser_.parse_body(std::string_view(buffer_.get() + parsed_, fill_ - parsed_),
                                   pieces_out_, &st);
  parsed_ += used;
  if (st == http::http1::ParseStatus::kBad || st == http::http1::ParseStatus::kBodyLimit) {
    return fail({}, Failure::kInvalid);
  }
  const bool last = parser_.done();
  if (last) upstream_finished();
  if (!head_delivered_) {
    // A small Content-Length body that has not all arrived with its head (a server that
    // writes the head, then sends the file) is waited for, so that the client gets head and
    // body in one write rather than two.
    if (!last && head_.content_length && !head_.chunked && !pieces_out_.full() &&
        parsed_ + *parser_.remaining() <= kBodyBufferSize) {
      return read_body();
    }
    head_delivered_ = true;
    return sink_->on_response_head(head_, pieces_out_, last);
  }
  if (pieces_out_.count > 0 || last) return sink_->on_response_body(pieces_out_, last);
  read_body();  // nothing to hand over yet
}

void UpstreamAttempt::resume() {
  if (hedge_state_ == HedgeState::kHedgeWon) return hedge_->resume();
  if (!active_ || upstream_done_) return;
  if (h2_mode_) return h2_resume();
  if (broken_after_head_) return fail({}, Failure::kClosed);  // the head went out: now say so
  if (parsed_ < fill_) return parse_body();                   // pieces left over from the last read
  read_body();
}

void UpstreamAttempt::read_body() {
  if (head_delivered_ && parsed_ == fill_ && start_splice()) return;
  if (head_delivered_ && parsed_ > 0) {  // keep an incomplete chunk header; drop the rest
    std::memmove(buffer_.get(), buffer_.get() + parsed_, fill_ - parsed_);
    fill_ -= parsed_;
    parsed_ = 0;
  }
  size_t room = kBodyBufferSize - fill_;
  // A Content-Length body is read exactly: nothing past it (the connection may be reused).
  if (auto remaining = parser_.remaining()) {
    room = std::min<uint64_t>(room, *remaining - (fill_ - parsed_));
  }
  if (room == 0) return fail({}, Failure::kInvalid);  // a chunk header or trailer over 64 KiB
  read_pending_ = true;
  conn_->stream.async_read_some(
      asio::buffer(buffer_.get() + fill_, room),
      [this, keep = owner_.lock(), g = generation_](error_code ec, size_t bytes) {
        if (g != generation_) return;
        read_pending_ = false;
        on_body_read(ec, bytes);
      });
}

void UpstreamAttempt::on_body_read(error_code ec, size_t bytes) {
  if (ec == asio::error::eof && head_.close_delimited && !timed_out_) {
    if (parser_.parse_eof() != http::http1::ParseStatus::kOk) return fail(ec, Failure::kClosed);
    conn_.reset();  // the end of the body was the end of the connection
    pieces_out_.clear();
    upstream_finished();
    return sink_->on_response_body(pieces_out_, true);
  }
  if (ec) return fail(ec, closed(ec) ? Failure::kClosed : Failure::kOther);
  progressed();
  fill_ += bytes;
  parse_body();
}

// --- zero-copy bodies ----------------------------------------------------------------------

bool UpstreamAttempt::start_splice() {
  if (!head_.content_length || head_.chunked) return false;
  auto remaining = parser_.remaining();
  if (!remaining || *remaining < kSpliceMinBytes) return false;
  if (conn_->stream.tls()) return false;  // TLS bytes are decrypted in user space
  Socket* to = sink_->splice_target();
  if (to == nullptr) return false;
  pipe_ = worker_.pipes().acquire();
  if (pipe_.read_fd < 0) return false;  // out of pipes: copy as usual
  splice_to_ = to;
  splice_left_ = *remaining;
  pipe_fill_ = 0;
  spliced_ = 0;
  run_splice();
  return true;
}

// Moves bytes endpoint -> pipe -> client until one side would block, then waits for it. The
// endpoint side waits only while the pipe has room; the client side only while it has bytes.
void UpstreamAttempt::run_splice() {
  const int from = conn_->socket().native_handle();
  const int to = splice_to_->native_handle();
  bool from_blocked = false;
  bool to_blocked = false;
  uint64_t moved_out = 0;
  for (int round = 0; round < 64; ++round) {
    bool progress = false;
    if (splice_left_ > 0 && pipe_fill_ < pipe_.capacity && !from_blocked) {
      size_t n = 0;
      size_t want =
          static_cast<size_t>(std::min<uint64_t>(splice_left_, pipe_.capacity - pipe_fill_));
      switch (splice_some(from, pipe_.write_fd, want, &n)) {
        case SpliceStep::kProgress:
          pipe_fill_ += n;
          splice_left_ -= n;
          progress = true;
          break;
        case SpliceStep::kWouldBlock:
          from_blocked = true;
          break;
        case SpliceStep::kEnd:  // the endpoint closed before the end of its body
        case SpliceStep::kError:
          end_splice(false);
          return fail(asio::error::eof, Failure::kClosed);
      }
    }
    if (pipe_fill_ > 0 && !to_blocked) {
      size_t n = 0;
      switch (splice_some(pipe_.read_fd, to, pipe_fill_, &n)) {
        case SpliceStep::kProgress:
          pipe_fill_ -= n;
          moved_out += n;
          progress = true;
          break;
        case SpliceStep::kWouldBlock:
          to_blocked = true;
          break;
        case SpliceStep::kEnd:
        case SpliceStep::kError:  // the client went away
          end_splice(false);
          return fail(asio::error::broken_pipe, Failure::kOther);
      }
    }
    if (splice_left_ == 0 && pipe_fill_ == 0) {
      spliced_ += moved_out;
      end_splice(true);
      parsed_ = fill_ = 0;
      upstream_finished();
      return sink_->on_response_spliced(moved_out, true);
    }
    if (!progress) break;
  }
  spliced_ += moved_out;
  if (moved_out > 0) {
    progressed();
    sink_->on_response_spliced(moved_out, false);
  }
  auto resume = [this, keep = owner_.lock(), g = generation_](error_code ec) {
    if (g != generation_) return;
    read_pending_ = false;
    if (ec) {
      end_splice(false);
      return fail(ec, timed_out_ ? Failure::kTimeout : Failure::kOther);
    }
    run_splice();
  };
  read_pending_ = true;  // a wait on either socket: the route timer cancels it
  if (pipe_fill_ > 0 && (to_blocked || pipe_fill_ == pipe_.capacity || splice_left_ == 0)) {
    splice_to_->async_wait(Socket::wait_write, resume);
  } else {
    conn_->socket().async_wait(Socket::wait_read, resume);
  }
}

void UpstreamAttempt::end_splice(bool clean) {
  if (pipe_.read_fd < 0) return;
  worker_.pipes().release(pipe_, clean && pipe_fill_ == 0);
  pipe_ = Pipe{};
  pipe_fill_ = 0;
  splice_to_ = nullptr;
}

void UpstreamAttempt::upstream_finished() {
  upstream_done_ = true;
  if (!trailers_.items.empty()) accept_load_report(trailers_);  // gRPC sends them last
  disarm_timer();
  stats_->upstream_duration.observe_ns(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - try_start_).count()));
  release_endpoint();
  release_retry();
  const bool reusable = conn_ && head_.keep_alive && !head_.close_delimited && parsed_ == fill_;
  if (reusable) {
    const auto& up = req_.balancer->config().upstream;
    worker_.pool().put(std::move(conn_), up.idle_timeout, up.max_idle_per_endpoint);
  }
  drop_connection();
}

void UpstreamAttempt::done() {
  if (hedge_state_ == HedgeState::kHedgeWon) hedge_->done();
  if (!active_) return;
  let_go();
}

// Ends the attempt: pending handlers see a stale generation, and everything it held goes back.
void UpstreamAttempt::let_go() {
  active_ = false;
  ++generation_;
  disarm_timer();
  if (hedge_state_ == HedgeState::kArmed) cancel_hedge(HedgeState::kNone);
  drop_connection();
  release_endpoint();
  release_retry();
  if (buffer_) worker_.release_buffer(std::move(buffer_));
  owner_.reset();
}

void UpstreamAttempt::cancel() {
  if (hedge_state_ != HedgeState::kNone && hedge_state_ != HedgeState::kPrimaryWon) {
    const bool won = hedge_state_ == HedgeState::kHedgeWon;
    cancel_hedge(won ? HedgeState::kHedgeWon : HedgeState::kPrimaryWon);
  }
  if (!active_) return;
  active_ = false;
  ++generation_;  // handlers still pending see a stale generation and return
  disarm_timer();
  end_splice(false);
  if (conn_) {
    error_code ignored;
    conn_->socket().close(ignored);
  }
  drop_connection();
  release_endpoint();
  release_retry();
  owner_.reset();
}

// --- failures and retries --------------------------------------------------------------------

// What this try has of the request, to send it again on another connection: nothing to send
// (no body), the whole body (kept in replay_), or the first pieces, still the sink's and not
// yet written anywhere.
bool UpstreamAttempt::can_resend() const {
  if (!req_.has_body || replaying_) return true;
  // HTTP/2 can replay the part kept so far and then go on with the rest as it comes.
  if (replay_ok_ && (body_done_ || h2_mode_)) return true;
  return !body_touched_ || (head_pending_ && pieces_ != nullptr);
}

void UpstreamAttempt::fail(error_code ec, Failure kind) {
  if (timed_out_) kind = Failure::kTimeout;
  if (logs::proxy().should_log(spdlog::level::debug)) {
    logs::proxy().debug("upstream {} failed: {}", endpoint() ? endpoint()->address_text : "-",
                        ec ? ec.message() : "invalid response");
  }
  if (head_delivered_) {
    // The head is on its way to the client: the only honest signal left is a visible
    // truncation (the connection closed; an HTTP/2 stream reset, or a gRPC status).
    end_splice(false);
    drop_connection();
    active_ = false;
    ++generation_;
    disarm_timer();
    release_endpoint();
    release_retry();
    owner_.reset();
    const auto [status, reason] = failure_text(kind);
    return sink_->on_response_broken(status, reason);
  }
  if (head_parsed_ && !head_delivered_) {
    // The head was held back for the rest of a small body (coalescing): the response had
    // started, as far as the endpoint is concerned. The client gets what came, then sees the
    // connection close (as if the head had gone out at once).
    broken_after_head_ = true;
    head_delivered_ = true;
    return sink_->on_response_head(head_, pieces_out_, false);
  }
  const bool may_repeat = http::idempotent(req_.head->method) || req_.route->retries.non_idempotent;
  // A pooled connection that the endpoint closed while it sat idle fails before any response
  // byte. If nothing of the request got through (the write failed), or the request may be
  // sent twice, it goes again once on a fresh connection to the same endpoint.
  if (kind == Failure::kClosed && reused_ && !got_bytes_ && !stale_replayed_ &&
      (!reached_ || may_repeat) && can_resend()) {
    stale_replayed_ = true;
    if (reached_ && replay_ok_ && body_done_ && req_.has_body) replaying_ = true;
    conn_.reset();
    return connect();
  }
  if (pick_.ref != nullptr) {
    if (kind == Failure::kConnect) req_.balancer->connect_result(pick_, false);
    // An invalid response is the endpoint's own answer; the rest failed the try itself.
    req_.balancer->report(pick_, false, /*local_origin=*/kind != Failure::kInvalid);
    pick_.ref->load->peak.observe_failure(balancer::steady_now_ns());
  }
  if (hedge_state_ == HedgeState::kSent) {
    // The backup try is under way: it decides (its answer, or its failure, is the request's).
    hedge_state_ = HedgeState::kPrimaryFailed;
    ++generation_;
    disarm_timer();
    drop_connection();
    release_endpoint();
    return;
  }
  if (hedge_state_ == HedgeState::kArmed) cancel_hedge(HedgeState::kNone);
  const RetryReason reason = kind == Failure::kConnect   ? RetryReason::kConnectFailure
                             : kind == Failure::kTimeout ? RetryReason::kTimeout
                                                         : RetryReason::kReset;
  if (kind != Failure::kInvalid && try_retry(reason, 0)) return;
  const auto [status, text] = failure_text(kind);
  end_failed(status, text);
}

// Retries (routes[].retries): only before any response byte went to the client, at most
// `attempts` times, within the cluster's retry budget, and only when the request can be sent
// again: it never reached the endpoint (a connect failure), or its method may be repeated
// (RFC 9110 §9.2.2, or retries.non_idempotent) and its body is kept whole. The next try avoids
// the endpoints already tried while another is usable, and gets the full route timeout again.
bool UpstreamAttempt::try_retry(RetryReason reason, unsigned status) {
  if (req_.hedged_try) return false;  // a backup try is not retried: the first try is there
  const auto& policy = req_.route->retries;
  const bool may_repeat = http::idempotent(req_.head->method) || policy.non_idempotent;
  const bool body_ok = !req_.has_body || !body_touched_ || (replay_ok_ && body_done_);
  if ((reached_ && !may_repeat) || !body_ok || !req_.forward->upgrade.empty() ||
      retries_done_ >= policy.attempts || !should_retry(policy, reason, status)) {
    return false;
  }
  // A connect failure spends no token: the request never reached an endpoint, so retrying it
  // adds no load to any (HAProxy's `redispatch` is not budgeted either); `attempts` still
  // bounds it. Without this, two endpoints of three dying under load spend the budget in a
  // moment and the requests that drew them fail with 502 though one endpoint is up.
  if (reason == RetryReason::kConnectFailure ? !count_retry() : !take_retry_token()) {
    return false;
  }
  ++retries_done_;
  if (logs::proxy().should_log(spdlog::level::debug)) {
    logs::proxy().debug("retrying after a failure on {} (try {})", endpoint()->address_text,
                        retries_done_ + 1);
  }
  ++generation_;  // a pending timer of the failed try must not touch the next one
  disarm_timer();
  drop_connection();  // mid-message or failed: never reused
  release_endpoint();
  replaying_ = req_.has_body && body_touched_;
  stale_replayed_ = false;
  try_once();
  return true;
}

// One more try of this request, counted and within the cluster's retry budget (README,
// "Retries"): false, and counted as refused, when the budget is spent.
bool UpstreamAttempt::take_retry_token() {
  if (!req_.cluster->retry_budget.allow(stats_->active_retries.load(std::memory_order_relaxed))) {
    stats_->counters.add(ClusterStats::kRetryBudgetExhausted);
    return false;
  }
  return count_retry();
}

bool UpstreamAttempt::count_retry() {
  if (!retry_counted_) {
    stats_->active_retries.fetch_add(1, std::memory_order_relaxed);
    retry_counted_ = true;
  }
  stats_->counters.add(ClusterStats::kRetries);
  return true;
}

void UpstreamAttempt::end_failed(unsigned status, std::string_view reason) {
  auto keep = owner_.lock();  // the sink may let go of its last reference in the callback
  let_go();
  sink_->on_attempt_failed(status, reason);
}

// A report counts once per response: the head's, else the trailers' (ORCA per-call reports).
void UpstreamAttempt::accept_load_report(const http::FieldList& fields) {
  if (report_taken_ || pick_.ref == nullptr) return;
  if (auto r = http::load_report_of(fields)) {
    report_taken_ = true;
    req_.balancer->accept_load_report(
        pick_, r->value,
        r->binary ? balancer::LoadReportFormat::kBinary : balancer::LoadReportFormat::kHeader);
  }
}

void UpstreamAttempt::release_endpoint() {
  if (req_.balancer != nullptr) req_.balancer->release(pick_);
}

EndpointStats& UpstreamAttempt::endpoint_stats() const {
  return *(*req_.cluster->endpoint_stats)[pick_.ref->index];
}

void UpstreamAttempt::release_retry() {
  if (!retry_counted_) return;
  retry_counted_ = false;
  stats_->active_retries.fetch_sub(1, std::memory_order_relaxed);
}

// --- the timer -------------------------------------------------------------------------------

// The route timeout bounds the exchange from `from`. A route without one (timeout 0s: long-lived
// streams) bounds each silence of the endpoint instead, by the cluster's upstream.idle_timeout
// (HAProxy's `timeout server`).
Clock::time_point UpstreamAttempt::exchange_deadline(Clock::time_point from) {
  if (req_.timeout.count() > 0) return from + req_.timeout;
  progress_at_ = Clock::now();
  return progress_at_ + req_.balancer->config().upstream.idle_timeout;
}

void UpstreamAttempt::arm_timer(Clock::time_point at, bool for_connect) {
  deadline_ = at;
  timer_armed_ = true;
  timer_for_connect_ = for_connect;
  timer_.expires_at(at);
  timer_.async_wait(
      [this, keep = owner_.lock(), g = ++timer_generation_](error_code ec) { on_timer(ec, g); });
}

void UpstreamAttempt::disarm_timer() {
  if (!timer_armed_) return;
  timer_armed_ = false;
  ++timer_generation_;
  timer_.cancel();
}

void UpstreamAttempt::on_timer(error_code ec, uint64_t generation) {
  if (ec || generation != timer_generation_ || !active_) return;
  timer_armed_ = false;
  if (req_.timeout.count() == 0 && !timer_for_connect_) {  // a stream: was it quiet for long?
    const auto quiet_until = progress_at_ + req_.balancer->config().upstream.idle_timeout;
    if (quiet_until > Clock::now()) return arm_timer(quiet_until);
  }
  timed_out_ = true;
  // HTTP/2: no operation of the attempt's own is pending (the stream, or the wait for a
  // connection, is given up by the failure itself).
  if (h2_mode_) return fail(asio::error::timed_out, Failure::kTimeout);
  if (connecting_ && timer_for_connect_) connect_timed_out_ = true;
  if (read_pending_ || write_pending_ || connecting_) {
    // The pending operation ends with operation_aborted; its handler sees timed_out_.
    error_code ignored;
    if (splice_to_) splice_to_->cancel(ignored);  // a splice waiting for the client
    if (conn_) conn_->socket().close(ignored);
    return;
  }
  fail(asio::error::timed_out, Failure::kTimeout);
}

}  // namespace switchyard::proxy
