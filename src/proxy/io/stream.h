#pragma once

// Private to the proxy module: a connection's byte stream, plain TCP or TLS over it. The choice
// is made once per connection (a TLS listener, a cluster with tls) and every operation branches
// on it; nothing is type-erased, so the plain path costs what the bare socket does. TLS is
// Asio's OpenSSL stream over the connection's own SSL (tls::ServerContext / ClientContext).
// Worker thread.

#include <openssl/ssl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <utility>
#include <variant>

namespace switchyard::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// I/O objects bound to the worker's concrete executor type rather than asio::any_io_executor:
// every async operation copies its executor, and the type-erased one costs a virtual copy and
// destroy each time (visible in profiles at proxy request rates).
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Acceptor = asio::basic_socket_acceptor<tcp, Executor>;
using Timer = asio::basic_waitable_timer<Clock, asio::wait_traits<Clock>, Executor>;

using TlsSocket = asio::ssl::stream<Socket>;

class Stream {
 public:
  using executor_type = Executor;

  explicit Stream(Socket socket) : s_(std::in_place_index<0>, std::move(socket)) {}
  Stream(Stream&&) = default;
  Stream& operator=(Stream&&) = default;

  executor_type get_executor() { return socket().get_executor(); }
  Socket& socket() { return tls() ? std::get<1>(s_).next_layer() : std::get<0>(s_); }
  bool tls() const { return s_.index() == 1; }
  // TLS from here on, with ssl (owned by the stream from now). Before any byte is exchanged.
  void use_tls(SSL* ssl) {
    Socket plain = std::move(std::get<0>(s_));
    s_.template emplace<1>(std::move(plain), ssl);
  }
  SSL* ssl() { return tls() ? std::get<1>(s_).native_handle() : nullptr; }

  template <typename Buffers, typename Handler>
  void async_read_some(const Buffers& buffers, Handler&& handler) {
    if (tls()) {
      std::get<1>(s_).async_read_some(buffers, std::forward<Handler>(handler));
    } else {
      std::get<0>(s_).async_read_some(buffers, std::forward<Handler>(handler));
    }
  }
  template <typename Buffers, typename Handler>
  void async_write_some(const Buffers& buffers, Handler&& handler) {
    if (tls()) {
      std::get<1>(s_).async_write_some(buffers, std::forward<Handler>(handler));
    } else {
      std::get<0>(s_).async_write_some(buffers, std::forward<Handler>(handler));
    }
  }
  template <typename Handler>
  void async_handshake(asio::ssl::stream_base::handshake_type type, Handler&& handler) {
    std::get<1>(s_).async_handshake(type, std::forward<Handler>(handler));
  }

  template <typename Handler>
  void async_shutdown(Handler&& handler) {
    std::get<1>(s_).async_shutdown(std::forward<Handler>(handler));
  }

  void close(boost::system::error_code& ec) { socket().close(ec); }
  void cancel(boost::system::error_code& ec) { socket().cancel(ec); }

 private:
  std::variant<Socket, TlsSocket> s_;
};

}  // namespace switchyard::proxy
