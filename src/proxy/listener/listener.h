#pragma once

// Private to the proxy module. One configured listener as one worker serves it: the worker's own
// SO_REUSEPORT socket for it (the kernel spreads connections across workers), the accept loop
// with a short back-off when accept fails (out of descriptors), limits.max_connections counted
// across all workers, and the hand-over of each connection to a downstream Session, which finds
// TLS, ALPN h2 or the h2c preface itself. Made by the server before the workers start; worker
// thread from then on.

#include "worker/worker.h"

namespace switchyard::proxy {

class Listener final : public Listening {
 public:
  Listener(Worker& worker, size_t listener_index, Acceptor acceptor);

  void start() override;
  void close() override;

 private:
  void accept();
  void on_accept(boost::system::error_code ec, Socket socket);

  Worker& worker_;
  size_t index_;  // the listener's index in the configuration (and in every snapshot)
  Acceptor acceptor_;
  Timer backoff_;
};

}  // namespace switchyard::proxy
