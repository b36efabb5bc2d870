#include "worker/worker.h"

#include <pthread.h>

#include <boost/asio/post.hpp>
#include <random>

#include "switchyard/common/stats.h"

namespace switchyard::proxy {
namespace {
constexpr size_t kMaxFreeBuffers = 256;
// Header, idle and tunnel deadlines are enforced by one periodic walk instead of a timer armed
// and cancelled per operation: the walk costs O(open connections) every interval, the request
// path nothing. Deadlines are honoured to within one interval.
constexpr auto kSweepInterval = std::chrono::milliseconds(250);
constexpr int kSweepsPerPoolSweep = 4;  // the idle pool and warm connections: every second
}  // namespace

ConnectionSlot::ConnectionSlot(SharedCounters* shared, size_t listener,
                               std::shared_ptr<ListenerStats> stats)
    : shared_(shared), listener_(listener), stats_(std::move(stats)) {
  stats_->connections_active.fetch_add(1, std::memory_order_relaxed);
}

ConnectionSlot& ConnectionSlot::operator=(ConnectionSlot&& other) noexcept {
  if (this != &other) {
    release();
    shared_ = std::exchange(other.shared_, nullptr);
    listener_ = other.listener_;
    stats_ = std::move(other.stats_);
  }
  return *this;
}

void ConnectionSlot::release() {
  if (shared_ == nullptr) return;
  stats_->connections_active.fetch_sub(1, std::memory_order_relaxed);
  shared_->listener_connections[listener_].fetch_sub(1, std::memory_order_relaxed);
  shared_ = nullptr;
  stats_.reset();
}

Worker::Worker(size_t index, SharedCounters& shared)
    : index_(index),
      shared_(shared),
      work_(asio::make_work_guard(ioc_)),
      sweep_timer_(ioc_.get_executor()),
      now_(Clock::now()) {
  access_log_ = std::make_unique<AccessLog>(
      shared.access_log ? &shared.access_log->ring(index) : nullptr, shared.stats);
}

Worker::~Worker() { stop(); }

void Worker::add_listener(std::unique_ptr<Listening> listener) {
  listeners_.push_back(std::move(listener));
}

void Worker::close_listeners() {
  for (auto& l : listeners_) l->close();
}

void Worker::start() {
  asio::post(ioc_, [this] {
    stats::set_thread_shard(static_cast<uint32_t>(index_ + 1));
    for (auto& l : listeners_) l->start();
    sweep();
  });
  thread_ = std::thread([this] {
    // Named so that operators (top -H) and the futex check (tests/bench/futex_check.sh) can
    // tell the workers apart.
    std::string name = "sy-worker-" + std::to_string(index_);
    pthread_setname_np(pthread_self(), name.c_str());
    ioc_.run();
  });
}

void Worker::publish(std::shared_ptr<const control::Snapshot> snapshot,
                     std::shared_ptr<const StatsTable> stats) {
  asio::post(ioc_, [this, snapshot = std::move(snapshot), stats = std::move(stats)] {
    auto view = std::make_shared<WorkerView>();
    std::random_device rd;
    view->clusters.resize(snapshot->clusters.size());
    for (size_t i = 0; i < snapshot->clusters.size(); ++i) {
      const auto& cluster = snapshot->clusters[i];
      auto& cv = view->clusters[i];
      cv.balancer = cluster.get();
      cv.tls = snapshot->cluster_tls[i];
      cv.stats = stats->clusters[i].get();
      cv.endpoint_stats = &stats->endpoints[i];
      // Workers start their picking state (the round-robin cycle, the PRNG) at different
      // points.
      cluster->prepare(cv.lb, (uint64_t(rd()) << 32) ^ rd() ^ (uint64_t(index_) << 48));
      // A cluster that persists keeps its saved retry tokens and latency quantiles.
      if (view_) {
        for (const auto& old : view_->clusters) {
          if (old.balancer->config().name != cluster->config().name) continue;
          cv.retry_budget = old.retry_budget;
          cv.latencies = old.latencies;
        }
      }
    }
    view->snapshot = snapshot;
    view->stats = stats;
    view_ = std::move(view);
  });
}

void Worker::drain() {
  asio::post(ioc_, [this] {
    draining_ = true;
    close_listeners();
    if (upstream_) upstream_->drain();
    for (Connection* c = connections_; c != nullptr;) {
      Connection* next = c->next;  // on_drain may unlink c
      c->on_drain();
      c = next;
    }
  });
}

void Worker::stop() {
  if (!thread_.joinable()) return;
  work_.reset();
  ioc_.stop();
  thread_.join();
  // Tear down on this thread while every member is still alive: close each connection so its
  // pending operations complete with an error, then run the loop until they have. Connections
  // then end through their normal path instead of inside ~io_context.
  draining_ = true;
  close_listeners();
  for (Connection* c = connections_; c != nullptr;) {
    Connection* next = c->next;
    c->abort();
    c = next;
  }
  if (upstream_) upstream_->stop();
  sweep_timer_.cancel();
  ioc_.restart();
  ioc_.run();
}

void Worker::sweep() {
  now_ = Clock::now();
  for (Connection* c = connections_; c != nullptr;) {
    Connection* next = c->next;  // on_sweep may unlink c
    c->on_sweep(now_);
    c = next;
  }
  if (++sweeps_ >= kSweepsPerPoolSweep) {
    sweeps_ = 0;
    if (upstream_) upstream_->sweep(now_);
  }
  sweep_timer_.expires_after(kSweepInterval);
  sweep_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) sweep();
  });
}

BodyBuffer Worker::acquire_buffer() {
  if (free_buffers_.empty()) return std::make_unique<char[]>(kBodyBufferSize);
  auto buffer = std::move(free_buffers_.back());
  free_buffers_.pop_back();
  return buffer;
}

void Worker::release_buffer(BodyBuffer buffer) {
  if (buffer && free_buffers_.size() < kMaxFreeBuffers) free_buffers_.push_back(std::move(buffer));
}

void Worker::link(Connection* c) {
  c->prev = nullptr;
  c->next = connections_;
  if (connections_) connections_->prev = c;
  connections_ = c;
  open_.fetch_add(1, std::memory_order_relaxed);
}

void Worker::unlink(Connection* c) {
  if (c->prev) c->prev->next = c->next;
  if (c->next) c->next->prev = c->prev;
  if (connections_ == c) connections_ = c->next;
  c->prev = c->next = nullptr;
  open_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace switchyard::proxy
