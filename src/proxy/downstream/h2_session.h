#pragma once

// Private to the proxy module. One HTTP/2 client connection (h2 by ALPN on TLS, h2c with prior
// knowledge on plaintext): nghttp2 does the framing, HPACK and flow control in memory; this
// class moves its bytes to and from the client and turns each request stream into an
// H2Stream, which is an AttemptSink like an HTTP/1.1 session: routed, hashed, balanced,
// retried, timed and counted on its own. All methods run on the owning worker's thread.
//
// Bounds (README, "HTTP/2 and gRPC"): at most limits.max_concurrent_streams streams; a stream
// buffers at most its window (kStreamWindow) of request body and one body buffer of response;
// the connection at most kConnectionWindow of request bodies and h2::kMaxOutput of output before
// it stops producing. Abusive peers (rapid reset, CONTINUATION, SETTINGS and PING floods) get
// GOAWAY ENHANCE_YOUR_CALM and are closed.

#include <nghttp2/nghttp2.h>

#include <memory>
#include <string>
#include <vector>

#include "downstream/exchange.h"
#include "h2/h2_io.h"
#include "io/stream.h"
#include "switchyard/common/net.h"
#include "worker/worker.h"

namespace switchyard::proxy {

class H2Stream;

class H2Session final : public Connection,
                        public h2::Io<H2Session>,
                        public std::enable_shared_from_this<H2Session> {
 public:
  // Request body bytes a stream may have in flight (its receive window).
  static constexpr int32_t kStreamWindow = 256 * 1024;
  static constexpr int32_t kConnectionWindow = 8 * 1024 * 1024;

  H2Session(Worker& worker, size_t listener_index, Stream client, ConnectionSlot slot,
            ClientIdentity id);
  ~H2Session() override;

  // early: bytes already read from the client (the connection preface, perhaps more).
  void start(std::string_view early);

  // Connection
  void on_sweep(Clock::time_point now) override;
  void on_drain() override;
  void abort() override;

  // --- for the streams ---
  Worker& worker() { return worker_; }
  nghttp2_session* ng() { return ng_; }
  const ClientIdentity& client() const { return id_; }
  size_t listener_index() const { return listener_index_; }
  ListenerStats& listener_stats() { return *listener_stats_; }
  bool tls() const { return tls_; }
  // flush() and flush_soon() are the I/O loop's (h2/h2_io.h).
  // After the current send: the stream's attempt may refill its response pieces.
  void resume_after_send(std::shared_ptr<H2Stream> stream);
  // limits.max_requests_in_flight: true when the stream may start its request now (it holds a
  // slot until release_request()); false queues it, and it is started (start_claimed()) when a
  // slot frees up, in order. unqueue(): a queued stream that closed.
  bool claim_request(H2Stream* stream);
  void release_request(H2Stream* stream);
  void unqueue(H2Stream* stream);

  // nghttp2's callbacks (the table is built once, process-wide).
  static int on_begin_headers(nghttp2_session*, const nghttp2_frame*, void*);
  static int on_header(nghttp2_session*, const nghttp2_frame*, const uint8_t*, size_t,
                       const uint8_t*, size_t, uint8_t, void*);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame*, void*);
  static int on_begin_frame(nghttp2_session*, const nghttp2_frame_hd*, void*);
  static int on_data_chunk(nghttp2_session*, uint8_t, int32_t, const uint8_t*, size_t, void*);
  static int on_stream_close(nghttp2_session*, int32_t, uint32_t, void*);

 private:
  // The I/O loop's hooks (h2/h2_io.h).
  friend class h2::Io<H2Session>;
  Stream& io_stream() { return client_; }
  nghttp2_session* io_session() { return ng_; }
  bool io_closed() const { return closed_; }
  void io_close() { close_now(); }
  bool io_received(ssize_t result);
  void io_flushed();
  void io_writing(bool on);
  void io_written();

  void run_resumes();
  void run_starts();
  void maybe_close();
  // GOAWAY with this error code, then close once it is written.
  void refuse(uint32_t error_code, const char* why);
  void close_now();
  H2Stream* stream_of(int32_t id);

  Worker& worker_;
  size_t listener_index_;
  Stream client_;
  ConnectionSlot slot_;
  ClientIdentity id_;
  bool tls_ = false;
  std::shared_ptr<ListenerStats> listener_stats_;
  nghttp2_session* ng_ = nullptr;
  std::vector<std::shared_ptr<H2Stream>> streams_;  // open streams (few: linear search)
  std::vector<std::shared_ptr<H2Stream>> resumes_;
  std::vector<H2Stream*> queue_;  // planned streams waiting for an in-flight slot, in order
  uint32_t in_flight_ = 0;        // streams whose request is with an endpoint
  bool closed_ = false;
  bool going_away_ = false;
  Clock::time_point idle_since_;
  Clock::time_point write_deadline_ = Clock::time_point::max();

  // hostile-peer accounting
  uint64_t streams_opened_ = 0;
  uint64_t premature_resets_ = 0;  // streams that ended, reset by either side, before their
                                   // response began
  uint32_t control_frames_ = 0;    // SETTINGS and PING in the current window
  uint32_t continuations_ = 0;     // CONTINUATION frames of the header block in progress
  Clock::time_point control_window_;
};

}  // namespace switchyard::proxy
