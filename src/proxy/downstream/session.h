#pragma once

#include <array>
#include <memory>
#include <string>

#include "downstream/exchange.h"
#include "downstream/request_body.h"
#include "downstream/request_plan.h"
#include "io/gather_list.h"
#include "io/in_buffer.h"
#include "switchyard/common/net.h"
#include "switchyard/http/http1_parser.h"
#include "switchyard/http/http1_writer.h"
#include "switchyard/http/request_rules.h"
#include "switchyard/routing/router.h"
#include "upstream/upstream_attempt.h"
#include "worker/worker.h"

namespace switchyard::proxy {

// One HTTP/1.1 client connection: reads each request head, applies the request rules, routes
// it and hands it to an UpstreamAttempt; streams the request body to the attempt and the
// response back, both in large pieces with no copy (the views the parser produces point into
// this connection's buffers). Pipelined requests are answered in order. Every client read and
// write has a deadline, enforced by the worker's sweep. After a 101 the two sockets become a
// Tunnel and this session ends. All methods run on the owning worker's thread.
class Session final : public Connection,
                      public AttemptSink,
                      public std::enable_shared_from_this<Session> {
 public:
  Session(Worker& worker, size_t listener_index, Socket socket,
          std::shared_ptr<const tls::ServerContext> tls);
  ~Session() override;

  void start();

  // Connection
  void on_sweep(Clock::time_point now) override;
  void on_drain() override;
  void abort() override;

  // AttemptSink
  void want_request_body() override;
  void on_response_head(http::ResponseHead& head, http::http1::BodyPieces& body,
                        bool last) override;
  void on_response_body(http::http1::BodyPieces& body, bool last) override;
  void on_attempt_failed(unsigned status, std::string_view reason) override;
  void on_response_broken(unsigned status, std::string_view reason) override;
  void on_upgraded(http::ResponseHead& head, std::unique_ptr<UpstreamConnection> conn,
                   std::string_view early) override;
  Socket* splice_target() override;
  void on_response_spliced(uint64_t bytes, bool last) override;

 private:
  // Heads are read in pieces of at least this much room.
  static constexpr size_t kHeadReadRoom = 2048;

  enum class Phase {
    kHandshake,  // TLS: the handshake (header_timeout)
    kIdle,       // between requests: waiting for the first byte (idle_timeout)
    kHead,       // a head is arriving (header_timeout)
    kRequest,    // the request is with the attempt (body streaming, response awaited)
    kResponse,   // a response is being written
    kClosing,    // lingering close, or closed
  };

  void handshake();
  void on_handshake(boost::system::error_code ec);
  void wait_request();
  void read_head();
  void begin_head();
  void on_head_bytes(boost::system::error_code ec, size_t bytes);
  void try_head();
  void on_head(size_t head_size);
  void start_attempt();
  void await_body();
  void read_first_body_bytes();
  void produce_body();
  void read_body();
  void on_body_bytes(boost::system::error_code ec, size_t bytes);
  void write_response(http::http1::BodyPieces& body, bool last, bool with_head);
  void on_response_written(boost::system::error_code ec, bool last);
  void finish_request();
  void become_h2();
  // Answers the current request with a short plain-text error. close: end the connection
  // after it (always when the request body was not read to its end).
  void respond_error(unsigned status, std::string_view reason, bool close);
  void close_gracefully();
  void linger();
  void close_now();
  void log_request(unsigned status);
  void set_deadline(std::chrono::milliseconds timeout);
  const config::Limits& limits() const { return ex_.listener->config->limits; }
  bool body_unread() const { return ex_.has_body && !parser_.done(); }

  Worker& worker_;
  size_t listener_index_;
  Stream client_;
  std::shared_ptr<const tls::ServerContext> tls_;  // the listener's, when it started
  // The client's address and, with client certificates, its URI SANs (routes may match them)
  // and the X-Forwarded-Client-Cert value sent upstream.
  ClientIdentity id_;
  ConnectionSlot slot_;
  std::shared_ptr<ListenerStats> listener_stats_;
  Phase phase_ = Phase::kIdle;
  bool close_after_response_ = false;
  bool fresh_ = true;       // no request head seen yet (h2c's preface can only come first)
  bool timed_out_ = false;  // the sweep cancelled the pending client operation
  Clock::time_point deadline_ = Clock::time_point::max();  // of the pending client operation

  // --- per request ---
  DownstreamExchange ex_;  // the plan, the attempt and what was answered
  InBuffer in_;
  size_t scanned_ = 0;  // of in_, while looking for the end of a head
  http::http1::RequestParser parser_;
  bool expect_continue_ = false;
  bool awaiting_body_ = false;  // the head announced a body; its first bytes are awaited
  bool continue_sent_ = false;
  unsigned client_version_ = 11;
  bool client_keep_alive_ = true;
  std::string_view client_region_;  // into the head or the snapshot's config
  Clock::time_point head_deadline_;

  RequestBody body_;

  // response
  std::string out_head_;  // serialized head being sent; its capacity is reused
  std::string extra_;     // debug header lines
  std::string trailer_lines_;
  http::http1::BodyFramer framer_;
  GatherList iov_;
  bool response_started_ = false;
};

}  // namespace switchyard::proxy
