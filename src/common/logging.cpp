#include "switchyard/common/logging.h"

#include <pthread.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/sink.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

namespace switchyard::logs {
namespace {

constexpr size_t kLineBytes = 1024;  // a longer line is cut (and ends in "...")
constexpr size_t kSlots = 1024;      // a power of two

std::atomic<uint64_t> g_dropped{0};

// Writes all of data to stderr (the writer thread, or a caller logging synchronously).
void write_all(const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(STDERR_FILENO, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // stderr is gone: nothing else can be done with the line
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
}

// Bounded multi-producer queue of formatted lines, one consumer (Vyukov's bounded MPMC queue:
// each slot's sequence number says whose turn it is, so producers never take a lock and a full
// queue is seen at once).
class LineQueue {
 public:
  LineQueue() {
    for (size_t i = 0; i < kSlots; ++i) slots_[i].seq.store(i, std::memory_order_relaxed);
  }

  bool push(const char* data, size_t size) {
    size_t pos = tail_.load(std::memory_order_relaxed);
    Slot* slot = nullptr;
    for (;;) {
      slot = &slots_[pos & (kSlots - 1)];
      const size_t seq = slot->seq.load(std::memory_order_acquire);
      const auto diff = static_cast<std::ptrdiff_t>(seq) - static_cast<std::ptrdiff_t>(pos);
      if (diff == 0) {
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) break;
      } else if (diff < 0) {
        return false;  // full
      } else {
        pos = tail_.load(std::memory_order_relaxed);
      }
    }
    if (size > kLineBytes) {
      std::memcpy(slot->data, data, kLineBytes - 4);
      std::memcpy(slot->data + kLineBytes - 4, "...\n", 4);
      size = kLineBytes;
    } else {
      std::memcpy(slot->data, data, size);
    }
    slot->size = static_cast<uint16_t>(size);
    slot->seq.store(pos + 1, std::memory_order_release);
    return true;
  }

  // The consumer: appends the next line to out, false when there is none.
  bool pop(std::string& out) {
    Slot& slot = slots_[head_ & (kSlots - 1)];
    const size_t seq = slot.seq.load(std::memory_order_acquire);
    if (seq != head_ + 1) return false;
    out.append(slot.data, slot.size);
    slot.seq.store(head_ + kSlots, std::memory_order_release);
    ++head_;
    return true;
  }

 private:
  struct Slot {
    std::atomic<size_t> seq{0};
    uint16_t size = 0;
    char data[kLineBytes];
  };
  std::array<Slot, kSlots> slots_;
  alignas(64) std::atomic<size_t> tail_{0};
  alignas(64) size_t head_ = 0;  // consumer only
};

// The sink every module logger writes to. log() formats on the calling thread (with its own
// copy of the formatter: spdlog's pattern formatter caches state and is not thread-safe) and
// queues the line; the writer thread does the write.
class QueueSink final : public spdlog::sinks::sink {
 public:
  QueueSink() : prototype_(std::make_unique<spdlog::pattern_formatter>()) {}

  void log(const spdlog::details::log_msg& msg) override {
    thread_local std::unique_ptr<spdlog::formatter> formatter;
    thread_local uint64_t formatter_version = 0;
    if (!formatter || formatter_version != version_.load(std::memory_order_acquire)) {
      std::lock_guard<std::mutex> lock(prototype_mutex_);  // only when the pattern changed
      formatter = prototype_->clone();
      formatter_version = version_.load(std::memory_order_relaxed);
    }
    spdlog::memory_buf_t buf;
    formatter->format(msg, buf);
    if (!running_.load(std::memory_order_acquire)) {
      std::lock_guard<std::mutex> lock(sync_mutex_);
      write_all(buf.data(), buf.size());
      return;
    }
    if (!queue_.push(buf.data(), buf.size())) {
      g_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (waiting_.load(std::memory_order_acquire)) wake_.notify_one();  // never blocks
  }

  void flush() override {}  // the writer writes each batch as soon as it has it

  void set_pattern(const std::string& pattern) override {
    set_formatter(
        std::make_unique<spdlog::pattern_formatter>(pattern, spdlog::pattern_time_type::utc));
  }
  void set_formatter(std::unique_ptr<spdlog::formatter> f) override {
    std::lock_guard<std::mutex> lock(prototype_mutex_);
    prototype_ = std::move(f);
    version_.fetch_add(1, std::memory_order_release);
  }

  void start() {
    if (running_.exchange(true)) return;
    writer_ = std::thread([this] { run(); });
  }

  void stop() {
    if (!running_.load()) return;
    {
      std::lock_guard<std::mutex> lock(wake_mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    writer_.join();
    running_.store(false, std::memory_order_release);
    // Lines pushed between the writer's last look and running_ turning false.
    std::string rest;
    while (queue_.pop(rest)) {
    }
    write_all(rest.data(), rest.size());
  }

 private:
  void run() {
    pthread_setname_np(pthread_self(), "sy-log");
    std::string batch;
    for (;;) {
      batch.clear();
      while (batch.size() < 64 * 1024 && queue_.pop(batch)) {
      }
      if (!batch.empty()) {
        write_all(batch.data(), batch.size());  // may block on a full pipe: only this thread
        continue;
      }
      std::unique_lock<std::mutex> lock(wake_mutex_);
      if (stopping_) return;
      waiting_.store(true, std::memory_order_release);
      // A push that saw waiting_ false just before it was set is caught by the timeout.
      wake_.wait_for(lock, std::chrono::milliseconds(50));
      waiting_.store(false, std::memory_order_release);
    }
  }

  LineQueue queue_;
  std::mutex prototype_mutex_;
  std::unique_ptr<spdlog::formatter> prototype_;
  std::atomic<uint64_t> version_{1};
  std::atomic<bool> running_{false};
  std::atomic<bool> waiting_{false};
  std::mutex sync_mutex_;
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread writer_;
};

QueueSink& sink() {
  static auto* s = new QueueSink();  // never destroyed: loggers may outlive static destructors
  return *s;
}

std::shared_ptr<spdlog::logger> make(const char* name) {
  static std::shared_ptr<QueueSink> shared(&sink(), [](QueueSink*) {});
  auto logger = std::make_shared<spdlog::logger>(name, shared);
  logger->set_level(spdlog::get_level());
  return logger;
}

struct Loggers {
  Loggers() { sink().set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ [%n] %v"); }
  std::shared_ptr<spdlog::logger> main = make("main");
  std::shared_ptr<spdlog::logger> config = make("config");
  std::shared_ptr<spdlog::logger> registry = make("registry");
  std::shared_ptr<spdlog::logger> proxy = make("proxy");
  std::shared_ptr<spdlog::logger> admin = make("admin");
};

Loggers& loggers() {
  static Loggers instance;
  return instance;
}

// Per-reason rate limit, GCRA: a line is admitted while the theoretical arrival time stays
// within kBurst intervals of now; each admitted line moves it one interval on.
constexpr int64_t kInterval = 200'000'000;  // ns: 5 lines a second
constexpr int64_t kBurst = 20;
std::array<std::atomic<int64_t>, static_cast<size_t>(Reason::kCount)> g_tat{};
std::array<std::atomic<uint64_t>, static_cast<size_t>(Reason::kCount)> g_suppressed{};

}  // namespace

namespace detail {

bool admit(Reason reason, uint64_t* suppressed) {
  const auto r = static_cast<size_t>(reason);
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  int64_t tat = g_tat[r].load(std::memory_order_relaxed);
  for (;;) {
    const int64_t next = std::max(tat, now) + kInterval;
    if (next - now > kBurst * kInterval) {
      g_suppressed[r].fetch_add(1, std::memory_order_relaxed);
      g_dropped.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    if (g_tat[r].compare_exchange_weak(tat, next, std::memory_order_relaxed)) break;
  }
  *suppressed = g_suppressed[r].exchange(0, std::memory_order_relaxed);
  return true;
}

}  // namespace detail

bool init(std::string_view level) {
  auto parsed = spdlog::level::from_str(std::string(level));
  // from_str maps unknown names to "off"; only the five documented levels are accepted.
  if (level != "trace" && level != "debug" && level != "info" && level != "warn" &&
      level != "error") {
    return false;
  }
  spdlog::set_level(parsed);
  auto& l = loggers();
  for (auto* logger : {&l.main, &l.config, &l.registry, &l.proxy, &l.admin}) {
    (*logger)->set_level(parsed);
  }
  static bool started = false;
  if (!started) {
    started = true;
    sink().start();
    std::atexit(shutdown);
  }
  return true;
}

void shutdown() { sink().stop(); }

uint64_t dropped() { return g_dropped.load(std::memory_order_relaxed); }

spdlog::logger& main() { return *loggers().main; }
spdlog::logger& config() { return *loggers().config; }
spdlog::logger& registry() { return *loggers().registry; }
spdlog::logger& proxy() { return *loggers().proxy; }
spdlog::logger& admin() { return *loggers().admin; }

}  // namespace switchyard::logs
