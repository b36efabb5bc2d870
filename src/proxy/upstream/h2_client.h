#pragma once

// Private to the proxy module. Upstream HTTP/2 (clusters[].protocol h2c or h2): multiplexed
// connections to one endpoint, per worker. A connection carries as many streams at once as the
// endpoint's SETTINGS_MAX_CONCURRENT_STREAMS allows (100 until it says); when every connection
// is full, or has had a GOAWAY, the pool opens another. Idle connections are probed with PING
// (one unanswered for kPingTimeout closes it) and closed after the cluster's idle_timeout.
// nghttp2 callbacks only record what arrived; each stream's owner gets it after the whole read
// is processed (H2ClientStream::h2_deliver), so no owner ever re-enters nghttp2. Worker thread.

#include <nghttp2/nghttp2.h>

#include <memory>
#include <string>
#include <vector>

#include "h2/h2_io.h"
#include "io/stream.h"
#include "worker/worker.h"

namespace switchyard::tls {
class ClientContext;
}

namespace switchyard::proxy {

// What one upstream stream's owner (an UpstreamAttempt) is told.
class H2ClientStream {
 public:
  virtual ~H2ClientStream() = default;
  // The connection is ready for streams (ok), or could not be made.
  virtual void h2_ready(bool ok) = 0;
  // --- recorded during a read; h2_deliver() follows once the read is processed ---
  virtual void h2_header(std::string_view name, std::string_view value) = 0;
  virtual void h2_headers_end() = 0;
  virtual void h2_data(const uint8_t* data, size_t size) = 0;
  virtual void h2_end_stream() = 0;
  // The stream ended: error_code is NGHTTP2_NO_ERROR after a complete response; with
  // NGHTTP2_REFUSED_STREAM the endpoint never processed it (GOAWAY, or refused).
  virtual void h2_closed(uint32_t error_code) = 0;
  // Acts on what was recorded. Never called for an owner that cancelled its stream.
  virtual void h2_deliver() = 0;
  // The request body's data provider.
  virtual ssize_t h2_read_body(uint8_t* buf, size_t length, uint32_t* flags) = 0;
};

class H2Client : public h2::Io<H2Client>, public std::enable_shared_from_this<H2Client> {
 public:
  // The window each stream's response may fill before its owner hands it on (one body buffer).
  static constexpr int32_t kStreamWindow = static_cast<int32_t>(kBodyBufferSize);

  // tls: shared with the snapshot that made it and with every attempt using it, so a reload
  // during a connect frees nothing this connection still needs.
  H2Client(Worker& worker, const SocketAddress& address, std::string_view host,
           std::shared_ptr<const tls::ClientContext> tls, std::chrono::milliseconds connect_timeout,
           std::chrono::milliseconds idle_timeout);
  ~H2Client();

  nghttp2_session* native() { return ng_; }
  bool tls() const { return tls_ != nullptr; }
  const tls::ClientContext* tls_context() const { return tls_.get(); }
  // Takes no new stream from now on; closes once its streams are done (the pool's sweep).
  void retire() { retired_ = true; }
  bool ready() const { return ready_; }
  bool failed() const { return closed_; }
  // May take one more stream now (or when connected): not closed, retired or told GOAWAY,
  // and under the endpoint's SETTINGS_MAX_CONCURRENT_STREAMS.
  bool open_for_streams() const;

  void connect();
  // For the fuzzer and tests: the connection is `socket`, already connected (plaintext h2c);
  // the session starts on it at once.
  void start_connected(Socket socket);
  // Waits for the connection to be ready (h2_ready).
  void wait(H2ClientStream* owner);
  void unwait(H2ClientStream* owner);
  // A new stream (sent at the next flush()); < 0 when nghttp2 refused it.
  int32_t submit(const nghttp2_nv* nv, size_t n, bool has_body, H2ClientStream* owner);
  void resume_body(int32_t id);
  // The owner took `bytes` of the stream's response: window for more.
  void consume(int32_t id, size_t bytes);
  // The owner gives up the stream (RST_STREAM CANCEL, unless it is over); nothing more is
  // reported to it.
  void cancel(int32_t id, H2ClientStream* owner);
  // flush() and flush_soon() are the I/O loop's (h2/h2_io.h).
  // Calls owner->h2_deliver() once the current read or send is done (or now, when idle).
  void note(H2ClientStream* owner);
  // Idle probe and idle close; false once the connection is gone (the pool forgets it).
  bool sweep(Clock::time_point now);
  void close();

  // nghttp2's callbacks (the table is built once, process-wide).
  static int on_header(nghttp2_session*, const nghttp2_frame*, const uint8_t*, size_t,
                       const uint8_t*, size_t, uint8_t, void*);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame*, void*);
  static int on_data_chunk(nghttp2_session*, uint8_t, int32_t, const uint8_t*, size_t, void*);
  static int on_stream_close(nghttp2_session*, int32_t, uint32_t, void*);
  static int before_frame_send(nghttp2_session*, const nghttp2_frame*, void*);
  static int on_frame_not_send(nghttp2_session*, const nghttp2_frame*, int, void*);

 private:
  H2ClientStream* take_pending(int32_t id);
  void on_connect(boost::system::error_code ec);
  void start_session();
  void fail_waiters();
  // The I/O loop's hooks (h2/h2_io.h).
  friend class h2::Io<H2Client>;
  Stream& io_stream() { return stream_; }
  nghttp2_session* io_session() { return ng_; }
  bool io_closed() const { return closed_; }
  void io_close() { close(); }
  bool io_received(ssize_t result);
  void io_flushed() { deliver(); }  // body providers may have asked their owners for more
  void io_writing(bool) {}
  void io_written() {}

  void deliver();
  H2ClientStream* owner_of(int32_t id);

  Worker& worker_;
  SocketAddress address_;
  std::string host_;
  std::shared_ptr<const tls::ClientContext> tls_;
  std::chrono::milliseconds connect_timeout_;
  std::chrono::milliseconds idle_timeout_;
  Stream stream_;
  Timer timer_;
  nghttp2_session* ng_ = nullptr;
  std::vector<H2ClientStream*> waiters_;
  std::vector<H2ClientStream*> touched_;  // owners with news from the current read
  // Streams submitted whose HEADERS have not gone out yet (nghttp2 has not opened them).
  std::vector<std::pair<int32_t, H2ClientStream*>> pending_;
  bool connecting_ = false;
  bool ready_ = false;
  bool closed_ = false;
  bool delivering_ = false;
  bool goaway_ = false;
  bool retired_ = false;
  uint32_t active_ = 0;
  Clock::time_point idle_since_;
  Clock::time_point ping_sent_ = Clock::time_point::max();
};

// A worker's HTTP/2 connections, by endpoint.
class H2Pool {
 public:
  explicit H2Pool(Worker& worker) : worker_(worker) {}
  // A connection to the endpoint that can take a stream (perhaps still connecting), made under
  // this TLS context (nullptr: plaintext) and other than `avoid` (one that just refused a
  // stream).
  std::shared_ptr<H2Client> acquire(uint32_t endpoint_id, const SocketAddress& address,
                                    std::string_view host,
                                    const std::shared_ptr<const tls::ClientContext>& tls,
                                    std::chrono::milliseconds connect_timeout,
                                    std::chrono::milliseconds idle_timeout,
                                    const H2Client* avoid = nullptr);
  void sweep(Clock::time_point now);
  void clear();

 private:
  Worker& worker_;
  std::vector<std::vector<std::shared_ptr<H2Client>>> by_endpoint_;
};

}  // namespace switchyard::proxy
