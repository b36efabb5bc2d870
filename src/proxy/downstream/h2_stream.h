#pragma once

// Private to the proxy module. One request stream of an HTTP/2 client connection: its head
// (headers kept in the stream's own storage, views into it), routed and planned exactly like
// an HTTP/1.1 request (request_plan), sent by an UpstreamAttempt to an HTTP/1.1 or HTTP/2
// endpoint. Request body: DATA copied into the stream's buffer and handed to the attempt; the
// window is given back only when the attempt has written it, so a slow endpoint holds the
// client at kStreamWindow. Response: nghttp2 pulls the attempt's pieces through a data
// provider (no copy of ours), and the attempt reads more only when they are taken, so a slow
// client holds the endpoint at one body buffer. Worker thread.

#include <nghttp2/nghttp2.h>

#include <memory>
#include <string>
#include <vector>

#include "downstream/exchange.h"
#include "switchyard/http/request_rules.h"
#include "upstream/upstream_attempt.h"

namespace switchyard::proxy {

class H2Session;

class H2Stream final : public AttemptSink, public std::enable_shared_from_this<H2Stream> {
 public:
  H2Stream(H2Session& session, std::shared_ptr<H2Session> keep, int32_t id);
  ~H2Stream() override;

  int32_t id() const { return id_; }
  bool response_started() const { return response_started_; }
  bool closed() const { return closed_; }

  // --- from the session's nghttp2 callbacks ---
  // A header of the request head or of its trailers. False: the block is far over the limit
  // (the stream is reset).
  bool add_header(std::string_view name, std::string_view value);
  void on_head(bool end_stream);
  void on_trailers();
  void on_data(const uint8_t* data, size_t size);
  void on_end_stream();
  void on_closed();
  // nghttp2's data provider for the response body.
  ssize_t read_data(uint8_t* buf, size_t length, uint32_t* flags);
  // The pieces handed over went out: the attempt may reuse its buffer.
  void resume_attempt();
  // Idle streams (no progress for idle_timeout) are reset; a body that does not start within
  // request_body_timeout gets 408; a wait for an in-flight slot over idle_timeout gets 503.
  void on_sweep(Clock::time_point now);
  // Starts the attempt if it may start now (body flowing or ended, a slot free); the session
  // calls it for a queued stream when a slot frees up.
  void maybe_start();
  // Its slot was claimed for it while it was queued: start now.
  void start_claimed();
  // The head announced a body of which nothing has come (the attempt has not started).
  bool waiting_for_body() const;
  // Whether its request is, or was, with an endpoint (it has been started).
  bool started() const { return started_; }

  // AttemptSink
  void want_request_body() override;
  void on_response_head(http::ResponseHead& head, http::http1::BodyPieces& body,
                        bool last) override;
  void on_response_body(http::http1::BodyPieces& body, bool last) override;
  void on_attempt_failed(unsigned status, std::string_view reason) override;
  void on_response_broken(unsigned status, std::string_view reason) override;
  void on_upgraded(http::ResponseHead& head, std::unique_ptr<UpstreamConnection> conn,
                   std::string_view early) override;

 private:
  struct Stored {
    uint32_t name, name_len, value, value_len;
  };
  void build_head();
  void hand_body();
  void respond_error(unsigned status, std::string_view reason);
  void submit(const http::FieldList* fields, unsigned status, bool with_body);
  void reset(uint32_t error_code);
  void log_request(unsigned status);
  void touch();
  void release_request();
  const config::Limits& limits() const { return ex_.listener->config->limits; }

  H2Session& session_;
  std::shared_ptr<H2Session> keep_;  // released when the stream closes
  int32_t id_;
  bool closed_ = false;

  DownstreamExchange ex_;  // the plan, the attempt and what was answered

  // request
  std::string store_;  // header names and values as received
  std::vector<Stored> stored_;
  size_t head_bytes_ = 0;
  bool oversized_ = false;
  bool in_trailers_ = false;
  std::string trailer_store_;
  std::vector<Stored> trailer_stored_;
  http::FieldList trailers_;
  std::string cookie_;  // cookie fields joined (RFC 9113 §8.2.3)
  bool grpc_ = false;
  bool end_stream_ = false;  // the client's END_STREAM arrived
  bool want_body_ = false;   // the attempt waits for body pieces
  bool discard_body_ = false;
  std::string body_in_;   // DATA received, not yet handed over
  std::string body_out_;  // handed to the attempt (pieces_ views it)
  http::http1::BodyPieces pieces_;
  uint64_t body_received_ = 0;
  Clock::time_point last_progress_;
  AttemptRequest request_;  // planned; sent once maybe_start() lets it go
  bool planned_ = false;
  bool started_ = false;
  bool in_flight_ = false;  // holds one of the connection's max_requests_in_flight
  Clock::time_point waiting_since_;

  // response
  bool response_started_ = false;
  http::http1::BodyPieces* resp_ = nullptr;
  size_t piece_ = 0;
  size_t offset_ = 0;
  bool resp_last_ = false;
  bool waiting_ = false;        // pieces taken; the attempt is to be resumed
  unsigned broken_status_ = 0;  // gRPC: the endpoint broke off; trailers say this status
  std::string broken_reason_;
  const http::FieldList* resp_trailers_ = nullptr;
  std::string error_body_;
};

}  // namespace switchyard::proxy
