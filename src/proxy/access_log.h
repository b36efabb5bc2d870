#pragma once

#include <fmt/format.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <string_view>

#include "switchyard/config/config.h"

namespace switchyard::proxy {

struct AccessEntry {
  std::string_view listener;
  std::string_view client;
  std::string_view method;
  std::string_view target;
  unsigned version = 11;
  unsigned status = 0;
  uint64_t bytes_sent = 0;  // response body bytes
  std::string_view cluster;
  std::string_view endpoint;
  std::chrono::steady_clock::duration duration{};
};

// One per worker. Lines are formatted into a worker-local buffer and written to stdout in
// batches (when the batch nears PIPE_BUF, or 100 ms after the first line of a batch), so the
// request path takes no lock and makes no syscall per line; a batch of whole lines no larger
// than PIPE_BUF is written atomically, so workers' lines never interleave mid-line.
// Worker thread only.
class AccessLog {
 public:
  explicit AccessLog(boost::asio::io_context& ioc) : timer_(ioc) {}
  ~AccessLog() { flush(); }

  void append(const AccessEntry& entry, config::AccessLogFormat format);
  void flush();

 private:
  fmt::memory_buffer line_;
  fmt::memory_buffer batch_;
  boost::asio::steady_timer timer_;
  bool armed_ = false;
  int64_t cached_second_ = -1;
  char cached_time_[32] = {};
};

}  // namespace switchyard::proxy
