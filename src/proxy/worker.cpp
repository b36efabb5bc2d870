#include "worker.h"

#include <sys/socket.h>

#include <boost/asio/post.hpp>
#include <random>

#include "session.h"
#include "switchyard/balancer/locality.h"
#include "switchyard/common/asio_endpoint.h"
#include "switchyard/common/logging.h"

namespace switchyard::proxy {
namespace {
constexpr size_t kMaxFreeBuffers = 256;
constexpr auto kSweepInterval = std::chrono::seconds(1);
constexpr auto kHeadSweepInterval = std::chrono::milliseconds(250);
// A pooled connection idle for less than this is reused without a liveness peek: under load
// reuse is microseconds old and the peek would cost a syscall per request. The rare race (the
// endpoint closes it right then) is covered by the replay of bodyless requests in Session.
constexpr auto kPeekAfterIdle = std::chrono::milliseconds(200);
constexpr uint32_t kWarmConnections = 2;

// True if the endpoint has not closed (or written to) this idle connection: a non-blocking peek
// sees 0 bytes (EOF), data (a protocol error: nothing was asked) or EAGAIN (still open, idle).
bool still_open(UpstreamConnection& conn) {
  char byte;
  ssize_t n = ::recv(conn.stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}
}  // namespace

Worker::Worker(size_t index, SharedCounters& shared)
    : index_(index),
      shared_(shared),
      work_(asio::make_work_guard(ioc_)),
      access_log_(ioc_),
      sweep_timer_(ioc_.get_executor()),
      head_sweep_timer_(ioc_.get_executor()),
      accept_backoff_(ioc_.get_executor()) {}

Worker::~Worker() { stop(); }

void Worker::add_acceptor(size_t listener_index, Acceptor acceptor) {
  acceptors_.push_back(ListenSlot{listener_index, std::move(acceptor)});
}

void Worker::start() {
  asio::post(ioc_, [this] {
    for (size_t slot = 0; slot < acceptors_.size(); ++slot) do_accept(slot);
    sweep_idle();
    sweep_heads();
  });
  thread_ = std::thread([this] { ioc_.run(); });
}

void Worker::publish(std::shared_ptr<const registry::RuntimeSnapshot> snapshot) {
  asio::post(ioc_, [this, snapshot = std::move(snapshot)] {
    auto view = std::make_shared<WorkerView>();
    std::random_device rd;
    for (const auto& cluster : snapshot->clusters) {
      auto& lb = view->lb.emplace_back(cluster->endpoints.size(),
                                       (uint64_t(rd()) << 32) ^ rd() ^ (uint64_t(index_) << 48));
      lb.cursor = lb.next_random();  // workers start the round-robin cycle at different points
      cluster->strategy->prepare(lb);
      // A cluster that persists keeps its saved retry tokens.
      auto& budget = view->retry_budgets.emplace_back();
      if (view_) {
        const auto& old = view_->snapshot->clusters;
        for (size_t i = 0; i < old.size(); ++i) {
          if (old[i]->config->name == cluster->config->name) {
            budget = view_->retry_budgets[i];
          }
        }
      }
    }
    view->snapshot = snapshot;
    view_ = std::move(view);
  });
}

void Worker::drain() {
  asio::post(ioc_, [this] {
    draining_ = true;
    for (auto& a : acceptors_) {
      beast::error_code ec;
      a.acceptor.close(ec);
    }
    for (Session* s = sessions_; s != nullptr;) {
      Session* next = s->next;  // on_drain may not unlink synchronously, but be safe
      s->on_drain();
      s = next;
    }
  });
}

void Worker::stop() {
  if (!thread_.joinable()) return;
  work_.reset();
  ioc_.stop();
  thread_.join();
  // Tear down on this thread while every member is still alive: close each connection so its
  // pending operations complete with an error, then run the loop until they have. Sessions
  // then end through their normal path instead of inside ~io_context.
  draining_ = true;
  for (auto& a : acceptors_) {
    beast::error_code ec;
    a.acceptor.close(ec);
  }
  for (Session* s = sessions_; s != nullptr; s = s->next) s->abort();
  idle_.clear();
  sweep_timer_.cancel();
  head_sweep_timer_.cancel();
  accept_backoff_.cancel();
  ioc_.restart();
  ioc_.run();
  access_log_.flush();
}

void Worker::do_accept(size_t slot) {
  acceptors_[slot].acceptor.async_accept([this, slot](boost::system::error_code ec, Socket socket) {
    on_accept(slot, ec, std::move(socket));
  });
}

void Worker::on_accept(size_t slot, boost::system::error_code ec, Socket socket) {
  if (ec == asio::error::operation_aborted || draining_) return;
  if (ec) {
    // Out of descriptors or a transient kernel error: back off briefly instead of spinning.
    logs::proxy().warn("accept failed: {}", ec.message());
    accept_backoff_.expires_after(std::chrono::milliseconds(50));
    accept_backoff_.async_wait([this, slot](boost::system::error_code) { do_accept(slot); });
    return;
  }
  size_t listener = acceptors_[slot].listener_index;
  const auto& limits = view_->snapshot->listeners[listener]->config->limits;
  auto& count = shared_.listener_connections[listener];
  if (count.fetch_add(1, std::memory_order_relaxed) >= limits.max_connections) {
    count.fetch_sub(1, std::memory_order_relaxed);
    beast::error_code ignored;
    socket.close(ignored);  // over max_connections: refuse this one, keep serving the rest
  } else {
    socket.set_option(tcp::no_delay(true), ec);
    std::make_shared<Session>(*this, listener, std::move(socket))->start();
  }
  do_accept(slot);
}

std::unique_ptr<UpstreamConnection> Worker::take_idle(uint32_t endpoint_id) {
  if (endpoint_id >= idle_.size()) return nullptr;
  auto& pool = idle_[endpoint_id];
  auto now = std::chrono::steady_clock::now();
  while (!pool.empty()) {
    auto conn = std::move(pool.back());  // most recently used: warmest, least likely closed
    pool.pop_back();
    if (conn->idle_deadline <= now) continue;
    if (now - conn->idle_since < kPeekAfterIdle || still_open(*conn)) return conn;
  }
  return nullptr;
}

void Worker::put_idle(std::unique_ptr<UpstreamConnection> conn,
                      std::chrono::milliseconds idle_timeout, uint32_t max_idle) {
  if (conn->endpoint_id >= idle_.size()) idle_.resize(conn->endpoint_id + 1);
  auto& pool = idle_[conn->endpoint_id];
  if (pool.size() >= max_idle) return;  // conn closes here
  conn->stream.expires_never();
  conn->idle_since = std::chrono::steady_clock::now();
  conn->idle_deadline = conn->idle_since + idle_timeout;
  pool.push_back(std::move(conn));
}

void Worker::sweep_idle() {
  auto now = std::chrono::steady_clock::now();
  for (auto& pool : idle_) {
    std::erase_if(pool, [&](const auto& conn) { return conn->idle_deadline <= now; });
  }
  if (!draining_) warm_fallbacks();
  sweep_timer_.expires_after(kSweepInterval);
  sweep_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) sweep_idle();
  });
}

void Worker::warm_fallbacks() {
  if (!view_) return;
  const auto& snapshot = *view_->snapshot;
  for (const auto& cluster : snapshot.clusters) {
    const auto* locality = dynamic_cast<const balancer::Locality*>(cluster->strategy.get());
    if (locality == nullptr) continue;
    const auto& up = cluster->config->upstream;
    const uint32_t want = std::min<uint32_t>(kWarmConnections, up.max_idle_per_endpoint);
    for (const auto& listener : snapshot.config->listeners) {
      if (listener.local_region.empty()) continue;
      for (const auto* ep : locality->warm_targets(listener.local_region)) {
        const uint32_t id = ep->state->id;
        if (id >= idle_.size()) idle_.resize(id + 1);
        if (id >= warming_.size()) warming_.resize(id + 1, 0);
        for (uint32_t have = static_cast<uint32_t>(idle_[id].size()) + warming_[id]; have < want;
             ++have) {
          ++warming_[id];
          auto conn = std::make_shared<std::unique_ptr<UpstreamConnection>>(
              std::make_unique<UpstreamConnection>(ioc_));
          (*conn)->endpoint_id = id;
          (*conn)->stream.expires_after(up.connect_timeout);
          (*conn)->stream.async_connect(
              to_endpoint(ep->address),
              [this, conn, id, idle = up.idle_timeout, max = up.max_idle_per_endpoint,
               metrics = cluster->metrics](boost::system::error_code ec) {
                --warming_[id];
                if (ec || draining_) return;
                metrics->warm_connections->Increment();
                (*conn)->stream.socket().set_option(tcp::no_delay(true), ec);
                put_idle(std::move(*conn), idle, max);
              });
        }
      }
    }
  }
}

// header_timeout, enforced for every session by one periodic walk instead of a timer armed and
// cancelled per request: the walk costs O(open connections) every kHeadSweepInterval, the
// request path nothing. Deadlines are honoured to within one interval.
void Worker::sweep_heads() {
  auto now = std::chrono::steady_clock::now();
  for (Session* s = sessions_; s != nullptr; s = s->next) s->on_sweep(now);
  head_sweep_timer_.expires_after(kHeadSweepInterval);
  head_sweep_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) sweep_heads();
  });
}

std::unique_ptr<char[]> Worker::acquire_buffer() {
  if (free_buffers_.empty()) return std::make_unique<char[]>(kBodyBufferSize);
  auto buffer = std::move(free_buffers_.back());
  free_buffers_.pop_back();
  return buffer;
}

void Worker::release_buffer(std::unique_ptr<char[]> buffer) {
  if (free_buffers_.size() < kMaxFreeBuffers) free_buffers_.push_back(std::move(buffer));
}

void Worker::link(Session* session) {
  session->next = sessions_;
  if (sessions_) sessions_->prev = session;
  sessions_ = session;
  open_sessions_.fetch_add(1, std::memory_order_relaxed);
}

void Worker::unlink(Session* session) {
  if (session->prev) session->prev->next = session->next;
  if (session->next) session->next->prev = session->prev;
  if (sessions_ == session) sessions_ = session->next;
  open_sessions_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace switchyard::proxy
