#pragma once

// One request's trip to its cluster, whatever the protocol on either side: pick an endpoint,
// have the cluster's exchange (upstream_exchange.h: HTTP/1.1 or HTTP/2) carry the try, and
// when a try fails, replay it or retry it on another endpoint when that is safe (RFC 9110
// §9.2.2), or let a hedge race it. It runs the try's timer and maps failures to the status the
// client gets (502, 503, 504). Its downstream side is the AttemptSink interface, which has no
// HTTP/1.1 or Beast type in it: an HTTP/1.1 session is one sink, an HTTP/2 stream another.

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "switchyard/http/http1_parser.h"
#include "switchyard/http/message.h"
#include "switchyard/http/request_rules.h"
#include "upstream/h2_exchange.h"
#include "upstream/http1_exchange.h"
#include "worker/worker.h"

namespace switchyard::proxy {

class UpstreamAttempt;

// What an attempt needs from the client side. All calls come on the worker thread, from inside
// the attempt's own handlers.
class AttemptSink {
 public:
  virtual ~AttemptSink() = default;
  // The attempt can send (more of) the request body: call UpstreamAttempt::send_body() once
  // some is there. The pieces handed over stay valid until this is called again.
  virtual void want_request_body() = 0;
  // The final response head and whatever body came with it (views into the attempt's buffer,
  // valid until UpstreamAttempt::resume()). The sink writes them, then calls resume(), or
  // done() after the last piece.
  virtual void on_response_head(http::ResponseHead& head, http::http1::BodyPieces& body,
                                bool last) = 0;
  virtual void on_response_body(http::http1::BodyPieces& body, bool last) = 0;
  // No response can be had: the client gets this status and reason.
  virtual void on_attempt_failed(unsigned status, std::string_view reason) = 0;
  // The response broke off after its head went out: the client must see a truncation. The
  // status and reason on_attempt_failed would have had (a gRPC stream ends with them).
  virtual void on_response_broken(unsigned status, std::string_view reason) = 0;
  // The endpoint answered 101 to an upgrade the request offered: its connection and the bytes
  // it sent after the head (views into the attempt's buffer) are the sink's now.
  virtual void on_upgraded(http::ResponseHead& head, std::unique_ptr<UpstreamConnection> conn,
                           std::string_view early) = 0;
  // Zero-copy forwarding: the client socket, when the rest of the response body may be
  // spliced into it unchanged (a raw body on a plain connection), else nullptr.
  virtual Socket* splice_target() { return nullptr; }
  // `bytes` more of the body went to the client by splice; last: the response is complete.
  virtual void on_response_spliced(uint64_t /*bytes*/, bool /*last*/) {}
};

// What the client side decided about the request before it goes upstream.
struct AttemptRequest {
  ClusterView* cluster = nullptr;  // the routed cluster, as this worker sees it
  const balancer::ClusterBalancer* balancer = nullptr;  // the routed cluster's front door
  const config::Route* route = nullptr;
  const http::RequestHead* head = nullptr;
  const http::RequestForward* forward = nullptr;
  bool origin_needs_slash = false;
  bool has_body = false;
  balancer::PickRequest pick;  // hash key, client region and zone, cross-region policy
  // Each try's timeout: 0 = the route's (itself 0 for a stream: then only silences are bounded).
  // A gRPC call's grpc-timeout when it is shorter.
  Duration timeout{0};
  // A hedge (the backup try of routes[].hedge): no retries and no hedge of its own; it avoids
  // the endpoints in `avoid` (the first try's) while another is usable.
  bool hedged_try = false;
  const balancer::PickMemo* avoid = nullptr;
};

class UpstreamAttempt final {
 public:
  explicit UpstreamAttempt(Worker& worker);
  ~UpstreamAttempt();
  UpstreamAttempt(const UpstreamAttempt&) = delete;
  UpstreamAttempt& operator=(const UpstreamAttempt&) = delete;

  // Starts the exchange; owner keeps the sink alive while upstream operations are pending.
  void start(const AttemptRequest& request, AttemptSink* sink, std::shared_ptr<void> owner);
  // Request body pieces (last: the body ends with them); valid until want_request_body().
  void send_body(http::http1::BodyPieces& pieces, bool last);
  // The sink wrote the pieces handed over; the attempt may reuse its buffer.
  void resume();
  // The sink wrote the last piece: the exchange is over.
  void done();
  // The client went away or the worker stops: drop whatever is in flight.
  void cancel();

  bool active() const { return phase_ != Phase::kIdle; }
  // Forgets the last exchange (its endpoint) before the next request starts.
  void clear() {
    pick_.ref = nullptr;
    hedge_state_ = HedgeState::kNone;
  }
  // The endpoint of the current (last) try, for the access log and debug headers: the backup
  // try's when it answered.
  const registry::Endpoint* endpoint() const {
    if (hedge_state_ == HedgeState::kHedgeWon) return hedge_->endpoint();
    return pick_.ref != nullptr ? pick_.ref->endpoint : nullptr;
  }
  // For the access log: "won" (the backup try answered), "sent" (a backup went out, the first
  // try answered), "" (no backup).
  std::string_view hedge_outcome() const;

 private:
  // The exchanges carry a try on the wire and report back through the section "for the
  // exchanges" below; nothing else of theirs is reached from here but UpstreamExchange.
  friend class Http1Exchange;
  friend class H2Exchange;

  using Failure = TryFailure;
  static std::pair<unsigned, std::string_view> failure_text(Failure kind);

  // Where the response of the current request stands. The request side is the body state
  // below (an HTTP/2 response may come while the request body still streams).
  enum class Phase : uint8_t {
    kIdle,          // no request, or it ended (failed, upgraded, or done)
    kAwaitingHead,  // a try is under way: connecting, sending, or waiting for the final head
    kHeadHeld,      // the final head is accepted, not yet handed over (a small body is awaited)
    kStreaming,     // the head went to the sink; body pieces follow as the sink takes them
    kBroken,        // the try failed while the head was held: what came goes out, then the close
    kDone,          // the endpoint sent the whole response; the sink writes the last pieces
  };

  void try_once();
  bool can_resend() const;
  bool try_retry(RetryReason reason, unsigned status);
  bool take_retry_token();
  // Counts a retry (and this request among those in flight that retried); true.
  bool count_retry();
  void end_failed(unsigned status, std::string_view reason);
  void let_go();
  void release_endpoint();
  void accept_load_report(const http::FieldList& fields);
  void release_retry();

  // --- for the exchanges ---
  // The try's connection is up (a fresh one): the breaker hears it, and the route timer runs
  // when the request is already whole.
  void connected();
  // The exchange sent everything the sink handed over and wants more body.
  void want_body();
  // The request went out whole: the route timeout runs from now (Envoy's rule).
  void request_sent();
  // A final response head is in head_ (either protocol): latency, the load report, the
  // breaker's outcome, and a retry on its status. False when a retry took over.
  bool accept_final_head();
  // Hands pieces_out_ to the sink (with the head the first time); last: the response is whole.
  void respond(bool last);
  // The endpoint sent the whole response: timers, counters and the endpoint go; the exchange
  // pools its connection (or ends its stream).
  void upstream_finished();
  // The endpoint answered 101: the connection and the bytes after the head go to the sink.
  void upgraded(std::unique_ptr<UpstreamConnection> conn, std::string_view early);
  // A try the endpoint did not process (HTTP/2 REFUSED_STREAM, or past a GOAWAY) may go again
  // whatever its method (RFC 9113 §8.7), within the retry budget and at most twice per
  // request. True: the exchange starts the try again on another connection.
  bool resend_unprocessed();
  void fail(boost::system::error_code ec, Failure kind);
  EndpointStats& endpoint_stats() const;
  // The response buffer, from the worker's pool (one per attempt while a request runs).
  char* response_buffer() {
    if (!buffer_) buffer_ = worker_.acquire_buffer();
    return buffer_.get();
  }
  bool head_accepted() const { return phase_ >= Phase::kHeadHeld; }
  bool head_out() const { return phase_ >= Phase::kStreaming; }
  bool current(const UpstreamExchange* exchange) const { return active() && exchange_ == exchange; }

  Clock::time_point exchange_deadline(Clock::time_point from);
  // Bytes moved to or from the endpoint: a stream's silence starts again.
  void progressed() {
    if (req_.timeout.count() == 0) progress_at_ = Clock::now();
  }
  void arm_timer(Clock::time_point at, bool for_connect = false);
  void disarm_timer();
  void on_timer(boost::system::error_code ec, uint64_t generation);

  // --- hedging (routes[].hedge; upstream_attempt.cpp) ---
  class HedgeSink;
  enum class HedgeState : uint8_t {
    kNone,           // no hedge for this request (or no more)
    kArmed,          // the hedge timer runs
    kSent,           // the backup try is in flight beside the first
    kPrimaryFailed,  // the first try failed: the backup decides
    kHedgeWon,       // the backup answered first: the sink hears it
    kPrimaryWon,     // the first answered first: the backup was cancelled
  };
  void arm_hedge();
  void on_hedge_timer(boost::system::error_code ec, uint64_t generation);
  void cancel_hedge(HedgeState next);
  // The backup's outcomes, through HedgeSink.
  void hedge_answered(http::ResponseHead& head, http::http1::BodyPieces& body, bool last);
  void hedge_failed(unsigned status, std::string_view reason);

  Worker& worker_;
  AttemptRequest req_;
  AttemptSink* sink_ = nullptr;
  std::weak_ptr<void> owner_;  // handlers hold it strongly while they are pending
  Phase phase_ = Phase::kIdle;
  // Bumped whenever a try ends: a handler of an earlier try finds a different value and
  // returns without touching anything.
  uint64_t generation_ = 0;

  ClusterStats* stats_ = nullptr;  // the proxy's counters of the routed cluster
  balancer::PickMemo memo_;        // the endpoints tried so far
  balancer::Pick pick_;            // this try's endpoint (kept after the try, for the log)
  // The cluster's upstream TLS context for this try (shared: a reload cannot free it under a
  // connect or handshake in progress).
  std::shared_ptr<const tls::ClientContext> tls_;
  // Both exchanges live here (no allocation per try or per HTTP/2 stream); exchange_ is the
  // routed cluster's protocol's.
  Http1Exchange http1_;
  H2Exchange h2_;
  UpstreamExchange* exchange_ = &http1_;
  bool reached_ = false;    // some bytes of this try were written: it may have been processed
  bool got_bytes_ = false;  // some response bytes arrived on this try
  bool stale_replayed_ = false;
  bool retry_counted_ = false;
  bool report_taken_ = false;  // this response's load report was counted
  uint32_t retries_done_ = 0;
  uint32_t refusals_ = 0;  // tries of this request the endpoint did not process

  // request side
  http::http1::BodyPieces* pieces_ = nullptr;  // the sink's pieces of the write in progress
  bool head_pending_ = false;                  // the request head is not written yet on this try
  bool body_done_ = false;                     // the sink handed over the last piece
  bool body_touched_ = false;                  // some of the body was taken from the sink
  std::string replay_;                         // the body, kept for a retry while it fits
  bool replay_ok_ = false;                     // replay_ holds every body byte taken so far
  bool replaying_ = false;                     // this try sends replay_, not the sink's pieces

  // response side (filled by the exchange, handed to the sink)
  BodyBuffer buffer_;
  http::ResponseHead head_;
  http::FieldList trailers_;
  http::http1::BodyPieces pieces_out_;

  Timer timer_;
  uint64_t timer_generation_ = 0;
  bool timer_armed_ = false;
  bool timer_for_connect_ = false;
  bool timed_out_ = false;
  Clock::time_point deadline_;
  Clock::time_point try_start_;
  Clock::time_point progress_at_;  // routes without a timeout: the endpoint's last bytes

  // The backup try and its sink: made on first use and kept for the session's later requests
  // (never destroyed while a handler of theirs may be pending: cancelled, they ignore it).
  std::unique_ptr<UpstreamAttempt> hedge_;
  std::unique_ptr<HedgeSink> hedge_sink_;
  HedgeState hedge_state_ = HedgeState::kNone;
  Timer hedge_timer_;
  uint64_t hedge_generation_ = 0;
};

}  // namespace switchyard::proxy
