#pragma once

// Private to the proxy module. A worker's connections to endpoints: the HTTP/1.1 keep-alive
// pool and the HTTP/2 connections. The server hands one to each worker before it starts
// (Worker::set_upstream); the worker sweeps it every second and empties it when it drains (the
// idle HTTP/1.1 connections: HTTP/2 ones carry the draining requests) or stops (everything).

#include "upstream/h2_client.h"
#include "upstream/upstream_pool.h"
#include "worker/worker.h"

namespace switchyard::proxy {

struct UpstreamPools final : WorkerPart {
  explicit UpstreamPools(Worker& worker) : http1(worker), h2(worker) {}
  // The worker's own (set by the server; the fuzzers set theirs).
  static UpstreamPools& of(Worker& worker) {
    return static_cast<UpstreamPools&>(worker.upstream());
  }

  void sweep(Clock::time_point now) override {
    http1.sweep(now);
    h2.sweep(now);
  }
  void drain() override { http1.clear(); }
  void stop() override {
    http1.clear();
    h2.clear();
  }

  UpstreamPool http1;
  H2Pool h2;
};

}  // namespace switchyard::proxy
