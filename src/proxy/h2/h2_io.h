#pragma once

// Private to the proxy module. The one nghttp2 I/O loop both ends of switchyard's HTTP/2 run:
// H2Session towards clients and H2Client towards endpoints. Read into one body buffer, feed it
// to nghttp2 (never re-entered: callbacks only record), gather what nghttp2 has to send into
// one write of at most h2::kMaxOutput, and write it; streams' frames of one turn of the event
// loop go out together (flush_soon). What differs between the ends is Derived's, through these
// hooks (a static interface: no virtual call on the data path):
//
//   Stream& io_stream();                 the connection's socket (TLS or plain)
//   nghttp2_session* io_session();       nullptr until the session exists
//   bool io_closed() const;
//   void io_close();                     a read or write failed, or nghttp2 gave up
//   bool io_received(ssize_t result);    after nghttp2_session_mem_recv (negative: its error);
//                                        false stops the loop (the connection is going)
//   void io_flushed();                   after each flush: run what waited for it
//   void io_writing(bool on);            a write starts (true) or ended (false)
//   void io_written();                   a write ended and the next flush ran
//
// Derived is held by shared_ptr (enable_shared_from_this): a pending read, write or post keeps
// it alive. Worker thread.

#include <nghttp2/nghttp2.h>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <string>

#include "h2/h2_wire.h"
#include "io/stream.h"
#include "worker/worker.h"

namespace switchyard::proxy::h2 {

template <class Derived>
class Io {
 public:
  // Sends what nghttp2 has now, unless inside nghttp2 or a write is under way (its end
  // flushes again).
  void flush() {
    Derived& d = self();
    if (d.io_closed() || in_nghttp2_ || writing_ || d.io_session() == nullptr) return;
    in_nghttp2_ = true;
    const bool ok = gather_output(d.io_session(), out_);
    in_nghttp2_ = false;
    if (!ok) return d.io_close();
    if (!out_.empty()) write();
    d.io_flushed();
  }
  // flush() once the current handler is done: many streams' frames in one write.
  void flush_soon() {
    if (flush_posted_ || self().io_closed()) return;
    flush_posted_ = true;
    asio::post(self().io_stream().get_executor(), [s = self().shared_from_this()] {
      Io& io = *s;
      io.flush_posted_ = false;
      io.flush();
    });
  }

 protected:
  Io() = default;
  ~Io() = default;

  // Starts a read unless one is pending or the connection is over.
  void read() {
    if (self().io_closed() || reading_) return;
    reading_ = true;
    self().io_stream().async_read_some(
        asio::buffer(in_.get(), kBodyBufferSize),
        [s = self().shared_from_this()](boost::system::error_code ec, size_t bytes) {
          Io& io = *s;
          io.reading_ = false;
          io.on_read(ec, bytes);
        });
  }
  // Hands bytes to nghttp2 (the first read's, or bytes read before the session began). False:
  // the loop stops.
  bool feed(const uint8_t* data, size_t size) {
    in_nghttp2_ = true;
    const ssize_t n = nghttp2_session_mem_recv(self().io_session(), data, size);
    in_nghttp2_ = false;
    return self().io_received(n);
  }
  bool writing() const { return writing_; }

  BodyBuffer in_;  // from the worker's pool, taken when the session starts

 private:
  Derived& self() { return static_cast<Derived&>(*this); }

  void on_read(boost::system::error_code ec, size_t bytes) {
    Derived& d = self();
    if (d.io_closed()) return;
    if (ec) return d.io_close();  // the peer left (or the sweep cancelled an idle connection)
    if (!feed(reinterpret_cast<const uint8_t*>(in_.get()), bytes)) return;
    flush();
    read();
  }

  void write() {
    writing_ = true;
    self().io_writing(true);
    asio::async_write(self().io_stream(), asio::buffer(out_),
                      [s = self().shared_from_this()](boost::system::error_code ec, size_t) {
                        Io& io = *s;
                        io.writing_ = false;
                        io.out_.clear();
                        Derived& d = *s;
                        d.io_writing(false);
                        if (d.io_closed()) return;
                        if (ec) return d.io_close();
                        io.flush();
                        d.io_written();
                      });
  }

  std::string out_;
  bool reading_ = false;
  bool writing_ = false;
  bool in_nghttp2_ = false;  // inside mem_recv or mem_send: no flush from callbacks
  bool flush_posted_ = false;
};

}  // namespace switchyard::proxy::h2
