#pragma once

// One request's trip to its cluster: pick an endpoint, take a pooled connection or connect,
// send the head and body, read the response head and stream its body back, and when a try
// fails, replay it or retry it on another endpoint when that is safe (RFC 9110 §9.2.2). It maps
// failures to the status the client gets (502, 503, 504). Its downstream side is the
// AttemptSink interface, which has no HTTP/1.1 or Beast type in it: an HTTP/1.1 session is one
// sink, an HTTP/2 stream can be another.

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "io/gather_list.h"
#include "switchyard/http/http1_parser.h"
#include "switchyard/http/http1_writer.h"
#include "switchyard/http/message.h"
#include "switchyard/http/request_rules.h"
#include "upstream/h2_client.h"
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

class UpstreamAttempt final : private H2ClientStream {
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

  bool active() const { return active_; }
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
  enum class Failure { kConnect, kClosed, kTimeout, kInvalid, kOther };
  static std::pair<unsigned, std::string_view> failure_text(Failure kind);

  void try_once();
  void connect();
  void on_connect(boost::system::error_code ec);
  void handshake();
  void connected();
  void begin_send();
  void write();
  void on_written(boost::system::error_code ec, size_t bytes, bool last);
  void read_response_head();
  void do_read_head();
  void on_head_read(boost::system::error_code ec, size_t bytes);
  void on_response_head();
  void parse_body();
  void read_body();
  void on_body_read(boost::system::error_code ec, size_t bytes);
  void upstream_finished();
  bool start_splice();
  void run_splice();
  void end_splice(bool clean);
  bool can_resend() const;
  void fail(boost::system::error_code ec, Failure kind);
  bool try_retry(RetryReason reason, unsigned status);
  bool take_retry_token();
  // Counts a retry (and this request among those in flight that retried); true.
  bool count_retry();
  void end_failed(unsigned status, std::string_view reason);
  void let_go();
  void release_endpoint();
  void accept_load_report(const http::FieldList& fields);
  bool accept_final_head();
  EndpointStats& endpoint_stats() const;
  void release_retry();
  // --- HTTP/2 endpoints (upstream_attempt_h2.cpp) ---
  void h2_try();
  // A stream the endpoint did not process (REFUSED_STREAM, or past a GOAWAY): sent again on
  // another connection, whatever its method, within the retry budget. False: it cannot be.
  bool h2_retry_unprocessed();
  void h2_submit();
  void h2_on_head();
  void h2_hand();
  void h2_resume();
  void h2_release();
  void h2_ready(bool ok) override;
  void h2_header(std::string_view name, std::string_view value) override;
  void h2_headers_end() override;
  void h2_data(const uint8_t* data, size_t size) override;
  void h2_end_stream() override;
  void h2_closed(uint32_t error_code) override;
  void h2_deliver() override;
  ssize_t h2_read_body(uint8_t* buf, size_t length, uint32_t* flags) override;
  // Drops this try's connection (HTTP/1.1) or stream (HTTP/2).
  void drop_connection();

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
  bool active_ = false;
  // Bumped whenever a try ends: a handler of an earlier try finds a different value and
  // returns without touching anything.
  uint64_t generation_ = 0;

  ClusterStats* stats_ = nullptr;  // the proxy's counters of the routed cluster
  balancer::PickMemo memo_;        // the endpoints tried so far
  balancer::Pick pick_;            // this try's endpoint (kept after the try, for the log)
  std::unique_ptr<UpstreamConnection> conn_;
  // The cluster's upstream TLS context for this try (shared: a reload cannot free it under a
  // connect or handshake in progress).
  std::shared_ptr<const tls::ClientContext> tls_;
  bool reused_ = false;     // conn_ came from the pool
  bool reached_ = false;    // some bytes of this try were written: it may have been processed
  bool got_bytes_ = false;  // some response bytes arrived on this try
  bool stale_replayed_ = false;
  bool retry_counted_ = false;
  bool connecting_ = false;
  bool read_pending_ = false;
  bool write_pending_ = false;
  uint32_t retries_done_ = 0;

  // request side
  std::string out_head_;
  http::http1::BodyFramer framer_;
  GatherList iov_;
  std::string trailer_lines_;
  http::http1::BodyPieces* pieces_ = nullptr;  // the sink's pieces of the write in progress
  bool head_pending_ = false;                  // out_head_ not written yet on this try
  bool body_done_ = false;                     // the sink handed over the last piece
  bool body_touched_ = false;                  // some of the body was taken from the sink
  std::string replay_;                         // the body, kept for a retry while it fits
  bool replay_ok_ = false;                     // replay_ holds every body byte taken so far
  bool replaying_ = false;                     // this try sends replay_, not the sink's pieces

  // response side
  BodyBuffer buffer_;
  size_t fill_ = 0;    // bytes in buffer_
  size_t parsed_ = 0;  // bytes of buffer_ the parser has consumed
  size_t scanned_ = 0;
  http::http1::ResponseParser parser_;
  http::ResponseHead head_;
  http::FieldList trailers_;
  http::http1::BodyPieces pieces_out_;
  bool head_delivered_ = false;
  bool head_parsed_ = false;        // the final head is parsed (it may be held back)
  bool broken_after_head_ = false;  // failed while the head was held back: report after it
  bool upstream_done_ = false;
  bool report_taken_ = false;  // this response's load report was counted

  // zero-copy (splice) state of the response body
  Pipe pipe_;
  Socket* splice_to_ = nullptr;
  size_t pipe_fill_ = 0;
  uint64_t splice_left_ = 0;
  uint64_t spliced_ = 0;

  // HTTP/2 state of the current try
  struct H2Span {
    uint32_t name, name_len, value, value_len;
  };
  bool h2_mode_ = false;
  std::shared_ptr<H2Client> h2_;
  std::shared_ptr<void> h2_keep_;  // the owner, while a stream is open
  int32_t h2_id_ = 0;
  std::string h2_store_;  // response head, then trailer names and values
  std::vector<H2Span> h2_spans_;
  size_t h2_trailers_from_ = SIZE_MAX;  // index of the first trailer span
  bool h2_head_ready_ = false;          // the final head's block is complete
  bool h2_ended_ = false;               // END_STREAM from the endpoint
  bool h2_closed_ = false;
  uint32_t h2_error_ = 0;
  bool h2_want_body_ = false;  // the body provider ran dry: ask the sink for more
  size_t h2_handed_ = 0;       // bytes at the front of buffer_ the sink holds
  size_t h2_piece_ = 0;        // request body position in pieces_ / replay_
  size_t h2_offset_ = 0;
  bool h2_overflow_ = false;              // more DATA than the window allows
  uint32_t refusals_ = 0;                 // streams of this request the endpoint did not process
  const H2Client* refused_on_ = nullptr;  // identity only: the connection that refused it

  Timer timer_;
  uint64_t timer_generation_ = 0;
  bool timer_armed_ = false;
  bool timer_for_connect_ = false;
  bool timed_out_ = false;
  bool connect_timed_out_ = false;
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
