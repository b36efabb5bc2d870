#pragma once

// After a 101 the client connection and the endpoint connection are a byte pipe in both
// directions: each direction reads into its own buffer and writes to the other side, and an
// end of stream is passed on as a half-close, so either side may finish sending first. Bytes
// that arrived early (after the client's head, after the endpoint's 101 head) go first, all of
// them (over TLS, where a half-close has no clean form, the end of either side ends the
// tunnel). Inactivity beyond idle_timeout (in both directions) is enforced by the worker's sweep.
// Worker thread.

#include <memory>
#include <string>

#include "worker/worker.h"

namespace switchyard::proxy {

class Tunnel final : public Connection, public std::enable_shared_from_this<Tunnel> {
 public:
  Tunnel(Worker& worker, Stream client, Stream upstream, ConnectionSlot slot,
         std::chrono::milliseconds idle_timeout);
  ~Tunnel() override;

  // head: the 101 response for the client; early: bytes the endpoint sent after it;
  // pending: bytes the client sent after its request head. All are copied.
  void start(std::string_view head, std::string_view early, std::string_view pending);

  void on_sweep(Clock::time_point now) override;
  void on_drain() override {}  // a tunnel ends when either side ends it
  void abort() override { end(); }

 private:
  struct Direction {
    Stream* from;
    Stream* to;
    BodyBuffer buffer;
    std::string first;  // bytes to send before the first read
    bool open = true;
  };
  void send_first(Direction& d);
  void read(Direction& d);
  void on_read(Direction& d, boost::system::error_code ec, size_t n);
  void end();

  Worker& worker_;
  Stream client_;
  Stream upstream_;
  ConnectionSlot slot_;
  std::chrono::milliseconds idle_timeout_;
  Direction up_;    // client -> endpoint
  Direction down_;  // endpoint -> client
  Clock::time_point activity_;
  bool ended_ = false;
};

}  // namespace switchyard::proxy
