#include "upstream/upstream_attempt.h"

#include "switchyard/common/logging.h"
#include "switchyard/http/response_rules.h"

namespace switchyard::proxy {
using boost::system::error_code;

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
      http1_(*this),
      h2_(*this),
      timer_(worker.ioc().get_executor()),
      hedge_timer_(worker.ioc().get_executor()) {}

UpstreamAttempt::~UpstreamAttempt() {
  http1_.drop();
  h2_.drop();
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
  phase_ = Phase::kAwaitingHead;
  retries_done_ = 0;
  stale_replayed_ = false;
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
  exchange_ = h2_upstream ? static_cast<UpstreamExchange*>(&h2_) : &http1_;
  refusals_ = 0;
  h2_.reset_refusals();
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
  if (active() && retries_done_ == 0) arm_hedge();
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
  if (ec || generation != hedge_generation_ || !active() || hedge_state_ != HedgeState::kArmed)
    return;
  if (phase_ != Phase::kAwaitingHead) return;  // answered meanwhile
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
    exchange_->drop();
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
  head_pending_ = true;
  phase_ = Phase::kAwaitingHead;
  trailers_.clear();
  try_start_ = now;
  // The route timeout runs from the end of the request (Envoy's rule): while the body streams,
  // each upstream write gets it instead.
  if (body_done_ || replaying_) arm_timer(exchange_deadline(try_start_));
  tls_ = req_.cluster->tls;
  exchange_->begin();
}

// --- for the exchanges -------------------------------------------------------------------------

void UpstreamAttempt::connected() {
  req_.balancer->connect_result(pick_, true);
  if (body_done_ || replaying_) {
    arm_timer(exchange_deadline(try_start_));
  } else {
    disarm_timer();
  }
}

void UpstreamAttempt::want_body() {
  disarm_timer();  // waiting for the client is the client's idle_timeout, not ours
  sink_->want_request_body();
}

void UpstreamAttempt::request_sent() {
  body_done_ = true;
  arm_timer(exchange_deadline(Clock::now()));
}

void UpstreamAttempt::respond(bool last) {
  const bool with_head = phase_ == Phase::kHeadHeld;
  if (last) {
    upstream_finished();
  } else if (with_head) {
    phase_ = Phase::kStreaming;
  }
  if (with_head) return sink_->on_response_head(head_, pieces_out_, last);
  sink_->on_response_body(pieces_out_, last);
}

void UpstreamAttempt::upgraded(std::unique_ptr<UpstreamConnection> conn, std::string_view early) {
  req_.balancer->report(pick_, true);
  disarm_timer();
  release_endpoint();
  release_retry();
  phase_ = Phase::kIdle;
  ++generation_;
  sink_->on_upgraded(head_, std::move(conn), early);  // copies `early` before returning
  worker_.release_buffer(std::move(buffer_));
  owner_.reset();
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
  phase_ = Phase::kHeadHeld;
  if (hedge_state_ != HedgeState::kNone) cancel_hedge(HedgeState::kPrimaryWon);
  return true;
}

bool UpstreamAttempt::resend_unprocessed() {
  constexpr uint32_t kMaxRefusals = 2;
  if (refusals_ >= kMaxRefusals || !can_resend() || !take_retry_token()) return false;
  ++refusals_;
  if (req_.has_body && body_touched_) replaying_ = true;
  ++generation_;  // nothing of the refused try's may touch the next one
  return true;
}

void UpstreamAttempt::upstream_finished() {
  phase_ = Phase::kDone;
  if (!trailers_.items.empty()) accept_load_report(trailers_);  // gRPC sends them last
  disarm_timer();
  stats_->upstream_duration.observe_ns(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - try_start_).count()));
  release_endpoint();
  release_retry();
  exchange_->finish();
}

// --- the sink's calls ---------------------------------------------------------------------------

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
  exchange_->send_body();
}

void UpstreamAttempt::resume() {
  if (hedge_state_ == HedgeState::kHedgeWon) return hedge_->resume();
  if (phase_ == Phase::kIdle || phase_ == Phase::kDone) return;
  if (phase_ == Phase::kBroken) return fail({}, Failure::kClosed);  // the head went out: say so
  exchange_->resume();
}

void UpstreamAttempt::done() {
  if (hedge_state_ == HedgeState::kHedgeWon) hedge_->done();
  if (!active()) return;
  let_go();
}

// Ends the attempt: pending handlers see a stale generation, and everything it held goes back.
void UpstreamAttempt::let_go() {
  phase_ = Phase::kIdle;
  ++generation_;
  disarm_timer();
  if (hedge_state_ == HedgeState::kArmed) cancel_hedge(HedgeState::kNone);
  exchange_->drop();
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
  if (!active()) return;
  phase_ = Phase::kIdle;
  ++generation_;  // handlers still pending see a stale generation and return
  disarm_timer();
  exchange_->abort();
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
  if (replay_ok_ && (body_done_ || exchange_->resends_partial_body())) return true;
  return !body_touched_ || (head_pending_ && pieces_ != nullptr);
}

void UpstreamAttempt::fail(error_code ec, Failure kind) {
  if (timed_out_) kind = Failure::kTimeout;
  if (logs::proxy().should_log(spdlog::level::debug)) {
    logs::proxy().debug("upstream {} failed: {}", endpoint() ? endpoint()->address_text : "-",
                        ec ? ec.message() : "invalid response");
  }
  if (head_out()) {
    // The head is on its way to the client: the only honest signal left is a visible
    // truncation (the connection closed; an HTTP/2 stream reset, or a gRPC status).
    exchange_->drop();
    phase_ = Phase::kIdle;
    ++generation_;
    disarm_timer();
    release_endpoint();
    release_retry();
    owner_.reset();
    const auto [status, reason] = failure_text(kind);
    return sink_->on_response_broken(status, reason);
  }
  if (phase_ == Phase::kHeadHeld) {
    // The head was held back for the rest of a small body (coalescing): the response had
    // started, as far as the endpoint is concerned. The client gets what came, then sees the
    // connection close (as if the head had gone out at once).
    phase_ = Phase::kBroken;
    return sink_->on_response_head(head_, pieces_out_, false);
  }
  const bool may_repeat = http::idempotent(req_.head->method) || req_.route->retries.non_idempotent;
  // A pooled connection that the endpoint closed while it sat idle fails before any response
  // byte. If nothing of the request got through (the write failed), or the request may be
  // sent twice, it goes again once on a fresh connection to the same endpoint.
  if (kind == Failure::kClosed && exchange_->reused() && !got_bytes_ && !stale_replayed_ &&
      (!reached_ || may_repeat) && can_resend()) {
    stale_replayed_ = true;
    if (reached_ && replay_ok_ && body_done_ && req_.has_body) replaying_ = true;
    return exchange_->reconnect();
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
    exchange_->drop();
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
  exchange_->drop();  // mid-message or failed: never reused
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
  if (ec || generation != timer_generation_ || !active()) return;
  timer_armed_ = false;
  if (req_.timeout.count() == 0 && !timer_for_connect_) {  // a stream: was it quiet for long?
    const auto quiet_until = progress_at_ + req_.balancer->config().upstream.idle_timeout;
    if (quiet_until > Clock::now()) return arm_timer(quiet_until);
  }
  timed_out_ = true;
  // An operation of the exchange's own that is pending ends with the failure; else it is
  // the attempt's to report.
  if (exchange_->interrupt(timer_for_connect_)) return;
  fail(asio::error::timed_out, Failure::kTimeout);
}

}  // namespace switchyard::proxy
