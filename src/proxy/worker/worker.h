#pragma once

// Private to the proxy module: one event loop thread with its own acceptors, connections,
// upstream pool, body buffers and view of the current snapshot.

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "access_log.h"
#include "io/splice.h"
#include "io/stream.h"
#include "switchyard/balancer/front_door.h"
#include "switchyard/control/runtime.h"
#include "switchyard/proxy/hedge.h"
#include "switchyard/proxy/retry.h"
#include "switchyard/proxy/stats.h"

namespace switchyard::proxy {

// Body bytes move through buffers of this size, taken from the worker's free list only while a
// body is on its way (an idle keep-alive connection holds none). A response head must fit in
// one (else 502).
constexpr size_t kBodyBufferSize = 64 * 1024;

// A pooled body buffer (kBodyBufferSize bytes).
using BodyBuffer = std::unique_ptr<char[]>;

// A keep-alive connection to one endpoint, owned by an attempt while it carries a request and
// by the worker's pool between requests.
struct UpstreamConnection {
  explicit UpstreamConnection(asio::io_context& ioc) : stream(Socket(ioc.get_executor())) {}
  Socket& socket() { return stream.socket(); }
  Stream stream;  // TLS once the handshake is done (clusters with tls)
  // The TLS context it was made under (null: plaintext), kept alive with it: the pool reuses it
  // only for requests under that same context.
  std::shared_ptr<const tls::ClientContext> tls;
  uint32_t endpoint_id = 0;
  Clock::time_point idle_since;
  Clock::time_point idle_deadline;
};

// One cluster as one worker uses it: the snapshot's front door, upstream TLS context and
// counters for it, and this worker's own mutable state for it (the picking state, the retry
// budget, the latency quantiles that set hedge delays). An attempt holds a pointer to one.
struct ClusterView {
  const balancer::ClusterBalancer* balancer = nullptr;
  std::shared_ptr<const tls::ClientContext> tls;  // null: plaintext
  ClusterStats* stats = nullptr;                  // the proxy's counters
  const std::vector<std::shared_ptr<EndpointStats>>* endpoint_stats = nullptr;  // by index
  balancer::WorkerCluster lb;
  RetryBudget retry_budget;
  LatencyQuantiles latencies;
};

// The current snapshot as one worker uses it: the shared immutable part and a view per cluster
// (by cluster index; the vector never grows after it is built, so pointers into it hold as long
// as the view does).
struct WorkerView {
  std::shared_ptr<const control::Snapshot> snapshot;
  std::shared_ptr<const StatsTable> stats;  // keeps the counters the clusters point at
  std::vector<ClusterView> clusters;
};

// Process-wide state shared by all workers.
struct SharedCounters {
  explicit SharedCounters(size_t listeners) : listener_connections(listeners) {}
  std::vector<std::atomic<uint32_t>> listener_connections;  // by listener index
  AccessLogWriter* access_log = nullptr;                    // set before start, then read-only
  StatsRegistry* stats = nullptr;                           // likewise
};

class Worker;

// Anything the worker must be able to time out, drain and stop: client sessions and tunnels.
// Kept in an intrusive list so that the periodic sweep and drain cost no allocation.
class Connection {
 public:
  virtual ~Connection() = default;
  // Every kSweepInterval: deadlines (header, idle, tunnel inactivity) are enforced here.
  virtual void on_sweep(Clock::time_point now) = 0;
  // The worker is draining: close now if between requests, else after the current response.
  virtual void on_drain() = 0;
  // The worker is stopping: close everything now; pending operations end with an error.
  virtual void abort() = 0;

  Connection* prev = nullptr;
  Connection* next = nullptr;
};

// A client connection's share of its listener's counts (max_connections and the active
// connections gauge), handed from a session to the tunnel it may become. Worker thread.
class ConnectionSlot {
 public:
  ConnectionSlot() = default;
  ConnectionSlot(SharedCounters* shared, size_t listener, std::shared_ptr<ListenerStats> stats);
  ConnectionSlot(ConnectionSlot&& other) noexcept { *this = std::move(other); }
  ConnectionSlot& operator=(ConnectionSlot&& other) noexcept;
  ~ConnectionSlot() { release(); }

 private:
  void release();
  SharedCounters* shared_ = nullptr;
  size_t listener_ = 0;
  std::shared_ptr<ListenerStats> stats_;
};

// A listening socket this worker serves (listener/Listener): started on the worker's thread
// when it starts, closed when it drains or stops.
class Listening {
 public:
  virtual ~Listening() = default;
  virtual void start() = 0;
  virtual void close() = 0;
};

// What a room above keeps per worker (the upstream connection pools, upstream/upstream_pools.h):
// swept every second, emptied of what carries no request when the worker drains and of
// everything when it stops.
class WorkerPart {
 public:
  virtual ~WorkerPart() = default;
  virtual void sweep(Clock::time_point now) = 0;
  virtual void drain() = 0;
  virtual void stop() = 0;
};

class Worker {
 public:
  Worker(size_t index, SharedCounters& shared);
  ~Worker();

  asio::io_context& ioc() { return ioc_; }
  size_t index() const { return index_; }

  // Main thread, before start().
  void add_listener(std::unique_ptr<Listening> listener);
  void set_upstream(std::unique_ptr<WorkerPart> upstream) { upstream_ = std::move(upstream); }
  void start();
  // Any thread: posted to the worker.
  void publish(std::shared_ptr<const control::Snapshot> snapshot,
               std::shared_ptr<const StatsTable> stats);
  void drain();
  void stop();
  size_t open_connections() const { return open_.load(std::memory_order_relaxed); }

  // --- worker thread only ---
  const std::shared_ptr<WorkerView>& view() const { return view_; }
  bool draining() const { return draining_; }
  SharedCounters& shared() { return shared_; }
  AccessLog& access_log() { return *access_log_; }
  WorkerPart& upstream() { return *upstream_; }
  // The time of the last sweep (at most kSweepInterval old): deadlines are set from it, so
  // arming one costs no clock read.
  Clock::time_point now() const { return now_; }

  BodyBuffer acquire_buffer();
  void release_buffer(BodyBuffer buffer);
  PipePool& pipes() { return pipes_; }

  void link(Connection* c);
  void unlink(Connection* c);

 private:
  void sweep();
  void close_listeners();

  size_t index_;
  SharedCounters& shared_;
  // UNSAFE_IO: sockets and timers are only ever touched by this worker's thread (or after it
  // has been joined), so the reactor needs no locks; the scheduler keeps its lock because the
  // control thread posts snapshots and drain requests.
  asio::io_context ioc_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::unique_ptr<Listening>> listeners_;
  std::shared_ptr<WorkerView> view_;
  bool draining_ = false;
  std::unique_ptr<AccessLog> access_log_;
  std::unique_ptr<WorkerPart> upstream_;
  std::vector<BodyBuffer> free_buffers_;
  PipePool pipes_;
  Timer sweep_timer_;
  Clock::time_point now_;
  int sweeps_ = 0;
  Connection* connections_ = nullptr;  // intrusive list
  std::atomic<size_t> open_{0};
  std::thread thread_;
};

}  // namespace switchyard::proxy
