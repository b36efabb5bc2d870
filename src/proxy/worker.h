#pragma once

// Private to the proxy module: one event loop thread with its own acceptors, sessions,
// upstream connection pools and view of the current snapshot.

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "access_log.h"
#include "switchyard/balancer/strategy.h"
#include "switchyard/breaker/outlier_detector.h"
#include "switchyard/proxy/retry.h"
#include "switchyard/registry/registry.h"

namespace switchyard::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

constexpr size_t kBodyBufferSize = 32 * 1024;

// I/O objects bound to the worker's concrete executor type rather than asio::any_io_executor:
// every async operation copies its executor, and the type-erased one costs a virtual copy and
// destroy each time (visible in profiles at proxy request rates).
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Acceptor = asio::basic_socket_acceptor<tcp, Executor>;
using Stream = beast::basic_stream<tcp, Executor, beast::unlimited_rate_policy>;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                         asio::wait_traits<std::chrono::steady_clock>, Executor>;

// A keep-alive connection to one endpoint, owned by a session while it carries a request and by
// the worker's idle pool between requests.
struct UpstreamConnection {
  explicit UpstreamConnection(asio::io_context& ioc) : stream(ioc.get_executor()) {}
  Stream stream;
  beast::flat_buffer buffer;
  uint32_t endpoint_id = 0;
  std::chrono::steady_clock::time_point idle_since;
  std::chrono::steady_clock::time_point idle_deadline;
};

// A snapshot as one worker uses it: the shared immutable part plus this worker's own mutable
// picking state per cluster.
struct WorkerView {
  std::shared_ptr<const registry::RuntimeSnapshot> snapshot;
  std::vector<balancer::WorkerLbState> lb;  // by cluster index
  std::vector<RetryBudget> retry_budgets;   // by cluster index
};

// Process-wide state shared by all workers.
struct SharedCounters {
  explicit SharedCounters(size_t listeners) : listener_connections(listeners) {}
  std::vector<std::atomic<uint32_t>> listener_connections;  // by listener index
  breaker::OutlierDetector* outliers = nullptr;             // set before start, then read-only
};

class Session;

class Worker {
 public:
  Worker(size_t index, SharedCounters& shared);
  ~Worker();

  asio::io_context& ioc() { return ioc_; }

  // Main thread, before start().
  void add_acceptor(size_t listener_index, Acceptor acceptor);
  void start();
  // Any thread: posted to the worker.
  void publish(std::shared_ptr<const registry::RuntimeSnapshot> snapshot);
  void drain();
  void stop();
  size_t open_sessions() const { return open_sessions_.load(std::memory_order_relaxed); }

  // --- worker thread only ---
  const std::shared_ptr<WorkerView>& view() const { return view_; }
  bool draining() const { return draining_; }
  SharedCounters& shared() { return shared_; }
  AccessLog& access_log() { return access_log_; }

  // An idle connection to the endpoint that is still open, or nullptr.
  std::unique_ptr<UpstreamConnection> take_idle(uint32_t endpoint_id);
  // Keeps conn for reuse until idle_timeout, unless the pool for its endpoint is full.
  void put_idle(std::unique_ptr<UpstreamConnection> conn, std::chrono::milliseconds idle_timeout,
                uint32_t max_idle);

  std::unique_ptr<char[]> acquire_buffer();
  void release_buffer(std::unique_ptr<char[]> buffer);

  void link(Session* session);
  void unlink(Session* session);

 private:
  void do_accept(size_t slot);
  void on_accept(size_t slot, boost::system::error_code ec, Socket socket);
  void sweep_idle();
  void sweep_heads();
  // Keeps kWarmConnections idle connections open to each endpoint of the regions that the
  // listeners' local regions fail over to (locality clusters with fallback: nearest).
  void warm_fallbacks();

  struct ListenSlot {
    size_t listener_index;
    Acceptor acceptor;
  };

  size_t index_;
  SharedCounters& shared_;
  // UNSAFE_IO: sockets and timers are only ever touched by this worker's thread (or after it
  // has been joined), so the reactor needs no locks; the scheduler keeps its lock because the
  // control thread posts snapshots and drain requests.
  asio::io_context ioc_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<ListenSlot> acceptors_;
  std::shared_ptr<WorkerView> view_;
  bool draining_ = false;
  AccessLog access_log_;
  std::vector<std::vector<std::unique_ptr<UpstreamConnection>>> idle_;  // by endpoint id
  std::vector<uint8_t> warming_;  // connects in progress, by endpoint id
  std::vector<std::unique_ptr<char[]>> free_buffers_;
  Timer sweep_timer_;
  Timer head_sweep_timer_;
  Timer accept_backoff_;
  Session* sessions_ = nullptr;  // intrusive list, for drain
  std::atomic<size_t> open_sessions_{0};
  std::thread thread_;
};

}  // namespace switchyard::proxy
