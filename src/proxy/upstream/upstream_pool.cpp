#include "upstream/upstream_pool.h"

#include <sys/socket.h>

#include "switchyard/common/asio_endpoint.h"

namespace switchyard::proxy {
namespace {

// A pooled connection idle for less than this is reused without a liveness peek: under load
// reuse is microseconds old and the peek would cost a syscall per request. The rare race (the
// endpoint closes it right then) is covered by the replay rules of UpstreamAttempt.
constexpr auto kPeekAfterIdle = std::chrono::milliseconds(200);
constexpr uint32_t kWarmConnections = 2;
// Above max_idle_per_endpoint, a burst's connections stay this long (up to kSurplusFactor x
// max_idle more): a closed loop of more concurrent requests than max_idle to one endpoint
// hands many connections back in one turn of the event loop and takes them again a moment
// later; closing them there and connecting again cost 13% of the throughput when two of three
// endpoints died under 256 connections (the fault matrix). HAProxy's pool-purge-delay is the
// model: idle connections above what is kept are purged progressively, not at once.
constexpr auto kSurplusIdle = std::chrono::seconds(1);
constexpr uint32_t kSurplusFactor = 4;

// True if the endpoint has not closed (or written to) this idle connection: a non-blocking peek
// sees 0 bytes (EOF), data (a protocol error: nothing was asked) or EAGAIN (still open, idle).
bool still_open(UpstreamConnection& conn) {
  char byte;
  // TLS: a close_notify or a TLS 1.3 ticket also shows as bytes; only EAGAIN counts as idle.
  ssize_t n = ::recv(conn.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

std::unique_ptr<UpstreamConnection> UpstreamPool::take(uint32_t endpoint_id, bool always_check,
                                                       const tls::ClientContext* tls) {
  if (endpoint_id >= idle_.size()) return nullptr;
  auto& pool = idle_[endpoint_id];
  const auto now = Clock::now();
  while (!pool.empty()) {
    auto conn = std::move(pool.back());
    pool.pop_back();
    // A connection made under another TLS context (or none) is closed: a reload changed the
    // cluster's verify, CA, SNI or client certificate, and it must not carry the new rules'
    // requests.
    if (conn->idle_deadline <= now || conn->tls.get() != tls) continue;
    if ((!always_check && now - conn->idle_since < kPeekAfterIdle) || still_open(*conn)) {
      return conn;
    }
  }
  return nullptr;
}

void UpstreamPool::put(std::unique_ptr<UpstreamConnection> conn,
                       std::chrono::milliseconds idle_timeout, uint32_t max_idle) {
  if (conn->endpoint_id >= idle_.size()) idle_.resize(conn->endpoint_id + 1);
  auto& pool = idle_[conn->endpoint_id];
  if (pool.size() >= max_idle * (1 + kSurplusFactor) || worker_.draining()) return;  // closes
  conn->idle_since = Clock::now();
  conn->idle_deadline =
      conn->idle_since + (pool.size() < max_idle
                              ? idle_timeout
                              : std::min<std::chrono::milliseconds>(idle_timeout, kSurplusIdle));
  pool.push_back(std::move(conn));
}

void UpstreamPool::clear() { idle_.clear(); }

void UpstreamPool::sweep(Clock::time_point now) {
  for (auto& pool : idle_) {
    std::erase_if(pool, [&](const auto& conn) { return conn->idle_deadline <= now; });
  }
  if (!worker_.draining()) warm_fallbacks();
}

void UpstreamPool::warm_fallbacks() {
  const auto& view = worker_.view();
  if (!view) return;
  const auto& snapshot = *view->snapshot;
  for (size_t ci = 0; ci < snapshot.clusters.size(); ++ci) {
    const auto& cluster = *snapshot.clusters[ci];
    if (cluster.config().locality == std::nullopt) continue;
    if (view->clusters[ci].tls) continue;  // a warm TLS connection would need its handshake
    const auto& up = cluster.config().upstream;
    const uint32_t want = std::min<uint32_t>(kWarmConnections, up.max_idle_per_endpoint);
    for (const auto& listener : snapshot.config->listeners) {
      if (listener.local_region.empty()) continue;
      for (const auto* ref : cluster.warm_targets(listener.local_region)) {
        const auto* ep = ref->endpoint;
        const uint32_t id = ep->id;
        if (id >= idle_.size()) idle_.resize(id + 1);
        if (id >= warming_.size()) warming_.resize(id + 1, 0);
        for (uint32_t have = static_cast<uint32_t>(idle_[id].size()) + warming_[id]; have < want;
             ++have) {
          ++warming_[id];
          auto conn = std::make_shared<std::unique_ptr<UpstreamConnection>>(
              std::make_unique<UpstreamConnection>(worker_.ioc()));
          (*conn)->endpoint_id = id;
          auto timer = std::make_shared<Timer>(worker_.ioc().get_executor());
          timer->expires_after(up.connect_timeout);
          timer->async_wait([conn](boost::system::error_code ec) {
            if (!ec && *conn) (*conn)->socket().close(ec);
          });
          (*conn)->socket().async_connect(
              to_endpoint(ep->address),
              [this, conn, timer, id, idle = up.idle_timeout, max = up.max_idle_per_endpoint,
               stats = view->stats->clusters[ci]](boost::system::error_code ec) {
                timer->cancel();
                --warming_[id];
                if (ec || worker_.draining()) return;
                stats->counters.add(ClusterStats::kWarmConnections);
                (*conn)->socket().set_option(tcp::no_delay(true), ec);
                put(std::move(*conn), idle, max);
              });
        }
      }
    }
  }
}

}  // namespace switchyard::proxy
