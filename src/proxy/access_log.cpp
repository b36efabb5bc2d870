#include "access_log.h"

#include <pthread.h>
#include <unistd.h>

#include <cstring>
#include <ctime>

namespace switchyard::proxy {
namespace {

constexpr size_t kRingBytes = 1 << 20;
constexpr auto kDrainInterval = std::chrono::milliseconds(10);

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

void write_all(std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(STDOUT_FILENO, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // stdout gone: the lines are lost, nobody can read them
    s.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

LineRing::LineRing(size_t capacity)
    : data_(std::make_unique<char[]>(capacity)), capacity_(capacity) {}

bool LineRing::push(std::string_view line) {
  const uint64_t head = head_.load(std::memory_order_relaxed);
  const uint64_t tail = tail_.load(std::memory_order_acquire);
  if (head - tail + line.size() > capacity_) return false;
  size_t at = head % capacity_;
  size_t first = std::min(line.size(), capacity_ - at);
  std::memcpy(data_.get() + at, line.data(), first);
  std::memcpy(data_.get(), line.data() + first, line.size() - first);
  head_.store(head + line.size(), std::memory_order_release);
  return true;
}

size_t LineRing::readable(std::string_view* first, std::string_view* second) const {
  const uint64_t tail = tail_.load(std::memory_order_relaxed);
  const uint64_t head = head_.load(std::memory_order_acquire);
  size_t n = head - tail;
  size_t at = tail % capacity_;
  size_t a = std::min(n, capacity_ - at);
  *first = std::string_view(data_.get() + at, a);
  *second = std::string_view(data_.get(), n - a);
  return n;
}

void LineRing::consume(size_t n) {
  tail_.store(tail_.load(std::memory_order_relaxed) + n, std::memory_order_release);
}

AccessLogWriter::AccessLogWriter(size_t rings) {
  for (size_t i = 0; i < rings; ++i) rings_.push_back(std::make_unique<LineRing>(kRingBytes));
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "sy-access-log");
    run();
  });
}

AccessLogWriter::~AccessLogWriter() {
  stop_.store(true, std::memory_order_relaxed);
  thread_.join();
  drain();
}

size_t AccessLogWriter::drain() {
  size_t total = 0;
  for (auto& ring : rings_) {
    std::string_view a, b;
    size_t n = ring->readable(&a, &b);
    if (n == 0) continue;
    write_all(a);
    write_all(b);
    ring->consume(n);
    total += n;
  }
  return total;
}

void AccessLogWriter::run() {
  // Polls: a worker never signals (that would be a futex on the request path). Blocking
  // writes happen here only.
  while (!stop_.load(std::memory_order_relaxed)) {
    if (drain() == 0) std::this_thread::sleep_for(kDrainInterval);
  }
}

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
    fmt::format_to(out, "\",\"endpoint\":\"{}\",\"duration_ms\":{:.3f}", endpoint, duration_ms);
    if (!e.hedge.empty()) fmt::format_to(out, ",\"hedge\":\"{}\"", e.hedge);
    fmt::format_to(out, "}}\n");
  } else {
    fmt::format_to(out, "{}.{:03}Z {} {} \"", cached_time_, ms % 1000, e.listener, e.client);
    append_escaped(line_, e.method);
    line_.push_back(' ');
    append_escaped(line_, e.target);
    fmt::format_to(out, " HTTP/{}.{}\" {} {} cluster={} endpoint={} duration_ms={:.3f}",
                   e.version / 10, e.version % 10, e.status, e.bytes_sent, cluster, endpoint,
                   duration_ms);
    if (!e.hedge.empty()) fmt::format_to(out, " hedge={}", e.hedge);
    line_.push_back('\n');
  }
  if (!ring_->push(std::string_view(line_.data(), line_.size()))) stats_->access_log_dropped(1);
}

}  // namespace switchyard::proxy
