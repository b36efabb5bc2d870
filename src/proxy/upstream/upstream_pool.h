#pragma once

// A worker's idle keep-alive connections to endpoints, and the few it keeps open ahead of a
// regional failover. Worker thread only.

#include <memory>
#include <vector>

#include "worker/worker.h"

namespace switchyard::proxy {

class UpstreamPool {
 public:
  explicit UpstreamPool(Worker& worker) : worker_(worker) {}

  // An idle connection to the endpoint that is still open, or nullptr. Most recently used
  // first (warmest, least likely closed by the endpoint). always_check: peek even a connection
  // used moments ago (for requests that must not be sent twice, RFC 9110 §9.2.2).
  // tls: the cluster's TLS context now (nullptr: plaintext); only a connection made under that
  // very context is reused (a reload that changed the cluster's TLS drains the others).
  std::unique_ptr<UpstreamConnection> take(uint32_t endpoint_id, bool always_check,
                                           const tls::ClientContext* tls);
  // Keeps conn for reuse until idle_timeout while the endpoint's pool holds fewer than
  // max_idle; above that (a burst handing connections back), for at most a second, up to
  // 5 x max_idle in all; beyond, conn closes.
  void put(std::unique_ptr<UpstreamConnection> conn, std::chrono::milliseconds idle_timeout,
           uint32_t max_idle);
  // Closes connections idle past their deadline; opens warm connections (sweep, every second).
  void sweep(Clock::time_point now);
  void clear();

 private:
  // Keeps kWarmConnections idle connections open to each endpoint of the regions that the
  // listeners' local regions fail over to (locality clusters with fallback: nearest).
  void warm_fallbacks();

  Worker& worker_;
  std::vector<std::vector<std::unique_ptr<UpstreamConnection>>> idle_;  // by endpoint id
  std::vector<uint8_t> warming_;  // connects in progress, by endpoint id
};

}  // namespace switchyard::proxy
