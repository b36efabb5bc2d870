#include "listener/listener.h"

#include "downstream/session.h"
#include "switchyard/common/logging.h"

namespace switchyard::proxy {
namespace {
constexpr auto kAcceptBackoff = std::chrono::milliseconds(50);
}  // namespace

Listener::Listener(Worker& worker, size_t listener_index, Acceptor acceptor)
    : worker_(worker),
      index_(listener_index),
      acceptor_(std::move(acceptor)),
      backoff_(worker.ioc().get_executor()) {}

void Listener::start() { accept(); }

void Listener::close() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  backoff_.cancel();
}

void Listener::accept() {
  acceptor_.async_accept(
      [this](boost::system::error_code ec, Socket socket) { on_accept(ec, std::move(socket)); });
}

void Listener::on_accept(boost::system::error_code ec, Socket socket) {
  if (ec == asio::error::operation_aborted || worker_.draining()) return;
  if (ec) {
    // Out of descriptors or a transient kernel error: back off briefly instead of spinning.
    logs::warn_every(logs::proxy(), logs::Reason::kAccept, "accept failed: {}", ec.message());
    backoff_.expires_after(kAcceptBackoff);
    backoff_.async_wait([this](boost::system::error_code wait_ec) {
      if (!wait_ec) accept();
    });
    return;
  }
  const auto& view = *worker_.view();
  const auto& limits = view.snapshot->listeners[index_].config->limits;
  auto& count = worker_.shared().listener_connections[index_];
  if (count.fetch_add(1, std::memory_order_relaxed) >= limits.max_connections) {
    count.fetch_sub(1, std::memory_order_relaxed);
    boost::system::error_code ignored;
    socket.close(ignored);  // over max_connections: refuse this one, keep serving the rest
  } else {
    socket.set_option(tcp::no_delay(true), ec);
    std::make_shared<Session>(worker_, index_, std::move(socket),
                              view.snapshot->listener_tls[index_])
        ->start();
  }
  accept();
}

}  // namespace switchyard::proxy
