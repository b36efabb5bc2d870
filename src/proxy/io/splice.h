#pragma once

// Zero-copy forwarding for large raw bodies (Linux splice(2)): bytes move from one socket into
// a pipe and from the pipe into the other socket inside the kernel, never copied to user
// space. Used for Content-Length response bodies bigger than one body buffer when the client
// side passes them on unchanged (HTTP/1.1 without TLS); HAProxy's "splice-response" idea.
// Worker thread only.

#include <cstddef>
#include <vector>

namespace switchyard::proxy {

struct Pipe {
  int read_fd = -1;
  int write_fd = -1;
  size_t capacity = 0;
};

// A worker's pipes, reused from one transfer to the next. A pipe goes back only empty.
class PipePool {
 public:
  static constexpr size_t kMaxPipes = 64;
  ~PipePool();
  // An empty pipe, or one with read_fd < 0 when none can be had (then copy instead).
  Pipe acquire();
  // The pipe is empty: keep it. clean = false: it may hold bytes: close it.
  void release(Pipe pipe, bool clean);

 private:
  std::vector<Pipe> free_;
  size_t open_ = 0;
};

enum class SpliceStep { kProgress, kWouldBlock, kEnd, kError };

// One non-blocking splice of up to max bytes from `from` to `to`; *moved gets the count.
SpliceStep splice_some(int from, int to, size_t max, size_t* moved);

}  // namespace switchyard::proxy
