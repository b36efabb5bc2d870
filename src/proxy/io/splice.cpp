#include "io/splice.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace switchyard::proxy {
namespace {
constexpr int kPipeBytes = 1 << 18;
void close_pipe(const Pipe& p) {
  ::close(p.read_fd);
  ::close(p.write_fd);
}
}  // namespace

PipePool::~PipePool() {
  for (const auto& p : free_) close_pipe(p);
}

Pipe PipePool::acquire() {
  if (!free_.empty()) {
    Pipe p = free_.back();
    free_.pop_back();
    return p;
  }
  if (open_ >= kMaxPipes) return {};
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return {};
  int size = ::fcntl(fds[1], F_SETPIPE_SZ, kPipeBytes);
  if (size < 0) size = ::fcntl(fds[1], F_GETPIPE_SZ);
  ++open_;
  return Pipe{fds[0], fds[1], static_cast<size_t>(size > 0 ? size : 65536)};
}

void PipePool::release(Pipe pipe, bool clean) {
  if (pipe.read_fd < 0) return;
  if (clean && free_.size() < kMaxPipes) {
    free_.push_back(pipe);
    return;
  }
  close_pipe(pipe);
  --open_;
}

SpliceStep splice_some(int from, int to, size_t max, size_t* moved) {
  *moved = 0;
  for (;;) {
    ssize_t n = ::splice(from, nullptr, to, nullptr, max, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      *moved = static_cast<size_t>(n);
      return SpliceStep::kProgress;
    }
    if (n == 0) return SpliceStep::kEnd;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return SpliceStep::kWouldBlock;
    return SpliceStep::kError;
  }
}

}  // namespace switchyard::proxy
