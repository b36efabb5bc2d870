#pragma once

// Private to the proxy module. A try to an HTTP/1.1 endpoint (clusters[].protocol http1): a
// pooled keep-alive connection, or a fresh one (TCP, then TLS under connect_timeout); the head
// and the body framed as the client sent it (Content-Length or chunked, with trailers); the
// response head parsed (interim 1xx dropped, 101 hands the connection over), its body parsed
// into pieces, or spliced socket to socket when it is large and plain. A small body that did not
// come with its head is waited for, so the client gets both in one write.

#include <cstdint>

#include "io/gather_list.h"
#include "switchyard/http/http1_parser.h"
#include "switchyard/http/http1_writer.h"
#include "upstream/upstream_exchange.h"
#include "worker/worker.h"

namespace switchyard::proxy {

class UpstreamAttempt;

class Http1Exchange final : public UpstreamExchange {
 public:
  explicit Http1Exchange(UpstreamAttempt& attempt) : a_(attempt) {}
  ~Http1Exchange() override;

  void begin() override;
  void send_body() override;
  void resume() override;
  bool interrupt(bool connect_deadline) override;
  void drop() override;
  void abort() override;
  void finish() override;
  void reconnect() override {
    conn_.reset();
    connect();
  }
  bool reused() const override { return reused_; }
  bool resends_partial_body() const override { return false; }

 private:
  void connect();
  void on_connect(boost::system::error_code ec);
  void handshake();
  void on_connected();
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
  bool start_splice();
  void run_splice();
  void end_splice(bool clean);
  // A connect or handshake outcome, with connect_timeout's expiry made a connect failure.
  boost::system::error_code connect_outcome(boost::system::error_code ec);

  UpstreamAttempt& a_;
  std::unique_ptr<UpstreamConnection> conn_;
  bool reused_ = false;  // conn_ came from the pool
  bool connecting_ = false;
  bool connect_timed_out_ = false;
  bool read_pending_ = false;
  bool write_pending_ = false;

  // request side
  std::string out_head_;
  http::http1::BodyFramer framer_;
  GatherList iov_;
  std::string trailer_lines_;

  // response side (in the attempt's buffer)
  size_t fill_ = 0;    // bytes in the buffer
  size_t parsed_ = 0;  // bytes of the buffer the parser has consumed
  size_t scanned_ = 0;
  http::http1::ResponseParser parser_;

  // zero-copy (splice) state of the response body
  Pipe pipe_;
  Socket* splice_to_ = nullptr;
  size_t pipe_fill_ = 0;
  uint64_t splice_left_ = 0;
};

}  // namespace switchyard::proxy
