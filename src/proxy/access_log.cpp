#include "access_log.h"

#include <unistd.h>

#include <ctime>

namespace switchyard::proxy {
namespace {

constexpr size_t kBatchBytes = 3584;  // below PIPE_BUF (4096): one atomic write(2)

// Escapes for both formats: quotes, backslashes and control bytes never reach the log raw, so a
// crafted request target cannot forge a second line or break the JSON.
void append_escaped(fmt::memory_buffer& out, std::string_view s) {
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c == 0x7f) {
      fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
}

}  // namespace

void AccessLog::append(const AccessEntry& e, config::AccessLogFormat format) {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  if (ms / 1000 != cached_second_) {
    cached_second_ = ms / 1000;
    time_t t = static_cast<time_t>(cached_second_);
    tm utc{};
    gmtime_r(&t, &utc);
    strftime(cached_time_, sizeof(cached_time_), "%Y-%m-%dT%H:%M:%S", &utc);
  }
  double duration_ms =
      std::chrono::duration_cast<std::chrono::microseconds>(e.duration).count() / 1000.0;
  std::string_view cluster = e.cluster.empty() ? "-" : e.cluster;
  std::string_view endpoint = e.endpoint.empty() ? "-" : e.endpoint;
  auto out = std::back_inserter(line_);
  line_.clear();
  if (format == config::AccessLogFormat::kJson) {
    fmt::format_to(out, "{{\"time\":\"{}.{:03}Z\",\"listener\":\"", cached_time_, ms % 1000);
    append_escaped(line_, e.listener);
    fmt::format_to(out, "\",\"client\":\"{}\",\"method\":\"", e.client);
    append_escaped(line_, e.method);
    fmt::format_to(out, "\",\"path\":\"");
    append_escaped(line_, e.target);
    fmt::format_to(out, "\",\"protocol\":\"HTTP/{}.{}\",\"status\":{},\"bytes\":{},\"cluster\":\"",
                   e.version / 10, e.version % 10, e.status, e.bytes_sent);
    append_escaped(line_, cluster);
    fmt::format_to(out, "\",\"endpoint\":\"{}\",\"duration_ms\":{:.3f}}}\n", endpoint, duration_ms);
  } else {
    fmt::format_to(out, "{}.{:03}Z {} {} \"", cached_time_, ms % 1000, e.listener, e.client);
    append_escaped(line_, e.method);
    line_.push_back(' ');
    append_escaped(line_, e.target);
    fmt::format_to(out, " HTTP/{}.{}\" {} {} cluster={} endpoint={} duration_ms={:.3f}\n",
                   e.version / 10, e.version % 10, e.status, e.bytes_sent, cluster, endpoint,
                   duration_ms);
  }
  if (batch_.size() + line_.size() > kBatchBytes) flush();
  batch_.append(line_.data(), line_.data() + line_.size());
  if (!armed_) {
    armed_ = true;
    timer_.expires_after(std::chrono::milliseconds(100));
    timer_.async_wait([this](boost::system::error_code ec) {
      armed_ = false;
      if (!ec) flush();
    });
  }
}

void AccessLog::flush() {
  const char* p = batch_.data();
  size_t left = batch_.size();
  while (left > 0) {
    ssize_t n = ::write(STDOUT_FILENO, p, left);
    if (n <= 0) break;  // stdout gone: drop the batch rather than block the worker
    p += n;
    left -= static_cast<size_t>(n);
  }
  batch_.clear();
}

}  // namespace switchyard::proxy
