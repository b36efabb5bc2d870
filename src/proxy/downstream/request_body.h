#pragma once

// Private to the proxy module. A request body as it arrives on an HTTP/1.1 connection: parsed
// into pieces first from the bytes that came with the head (views into the connection's input
// buffer), then from a body buffer the session reads into (taken from the worker only while a
// body is on its way). No I/O. Worker thread.

#include <cstddef>
#include <span>

#include "io/in_buffer.h"
#include "switchyard/http/http1_parser.h"
#include "worker/worker.h"

namespace switchyard::proxy {

class RequestBody {
 public:
  explicit RequestBody(Worker& worker) : worker_(worker) {}
  ~RequestBody() { release(); }
  RequestBody(const RequestBody&) = delete;
  RequestBody& operator=(const RequestBody&) = delete;

  // The next pieces (views valid until the next call): from `in` while it has bytes (they are
  // consumed), else from the body buffer. kNeedMore with no pieces: read more (room()).
  http::http1::ParseStatus next(http::http1::RequestParser& parser, InBuffer& in);
  http::http1::BodyPieces& pieces() { return pieces_; }
  // Where to read more of the body; empty when a chunk header fills the whole buffer. A
  // Content-Length body is read exactly: nothing of a pipelined next request with it.
  std::span<char> room(const http::http1::RequestParser& parser);
  void commit(size_t bytes) { fill_ += bytes; }
  // The request is over: bytes read past its body (a pipelined next request) go back to the
  // front of `in`, and the buffer to the worker.
  void finish(InBuffer& in, size_t in_limit);
  void release();

 private:
  Worker& worker_;
  BodyBuffer buffer_;
  size_t fill_ = 0;
  size_t parsed_ = 0;
  http::http1::BodyPieces pieces_;
  http::FieldList trailers_;
};

}  // namespace switchyard::proxy
