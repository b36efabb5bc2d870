#include "switchyard/admin/admin_server.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "switchyard/common/asio_endpoint.h"
#include "switchyard/common/logging.h"
#include "switchyard/metrics/exposition.h"

namespace switchyard::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kAdminTimeout = std::chrono::seconds(10);

struct Reply {
  http::status status;
  const char* content_type;
  std::string body;
};

}  // namespace

struct AdminServer::Impl : std::enable_shared_from_this<AdminServer::Impl> {
  Impl(asio::io_context& ioc, metrics::Metrics& m, const registry::Registry& r, const AdminState& s)
      : acceptor(ioc), metrics(m), registry(r), state(s) {}

  tcp::acceptor acceptor;
  metrics::Metrics& metrics;
  const registry::Registry& registry;
  const AdminState& state;

  Reply handle(const http::request<http::string_body>& req) {
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      return {http::status::method_not_allowed, "text/plain", "only GET\n"};
    }
    std::string_view path = req.target();
    path = path.substr(0, path.find('?'));
    if (path == "/healthz") return {http::status::ok, "text/plain", "ok\n"};
    if (path == "/readyz") {
      if (state.ready.load()) return {http::status::ok, "text/plain", "ready\n"};
      return {http::status::service_unavailable, "text/plain", "not ready\n"};
    }
    if (path == "/metrics") {
      if (!registry.current()) return {http::status::service_unavailable, "text/plain", "none\n"};
      return {http::status::ok, "text/plain; version=0.0.4",
              metrics::render(*registry.current(), metrics)};
    }
    if (path == "/admin/clusters") {
      if (!registry.current()) return {http::status::service_unavailable, "text/plain", "none\n"};
      return {http::status::ok, "application/json", clusters_json(*registry.current())};
    }
    return {http::status::not_found, "text/plain",
            "not found; try /healthz /readyz /metrics /admin/clusters\n"};
  }

  void do_accept() {
    acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) std::make_shared<Connection>(self, std::move(socket))->read();
      self->do_accept();
    });
  }

  struct Connection : std::enable_shared_from_this<Connection> {
    Connection(std::shared_ptr<Impl> s, tcp::socket socket)
        : server(std::move(s)), stream(std::move(socket)) {}
    std::shared_ptr<Impl> server;
    beast::tcp_stream stream;
    beast::flat_buffer buffer{16 * 1024};
    std::optional<http::request_parser<http::string_body>> parser;
    http::response<http::string_body> response;

    void read() {
      parser.emplace();
      parser->header_limit(8192);
      parser->body_limit(4096);
      stream.expires_after(kAdminTimeout);
      http::async_read(stream, buffer, *parser,
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         if (ec) return;
                         self->respond();
                       });
    }

    void respond() {
      const auto& req = parser->get();
      Reply reply = server->handle(req);
      response = http::response<http::string_body>(reply.status, req.version());
      response.set(http::field::content_type, reply.content_type);
      response.set(http::field::cache_control, "no-store");
      response.body() = std::move(reply.body);
      response.keep_alive(req.keep_alive());
      response.prepare_payload();
      if (req.method() == http::verb::head) response.body().clear();
      stream.expires_after(kAdminTimeout);
      http::async_write(stream, response,
                        [self = shared_from_this()](beast::error_code ec, size_t) {
                          if (ec || !self->response.keep_alive()) {
                            beast::error_code ignored;
                            self->stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
                            return;
                          }
                          self->read();
                        });
    }
  };
};

AdminServer::AdminServer(asio::io_context& ioc, metrics::Metrics& metrics,
                         const registry::Registry& registry, const AdminState& state)
    : impl_(std::make_shared<Impl>(ioc, metrics, registry, state)) {}

AdminServer::~AdminServer() { stop(); }

bool AdminServer::listen(const SocketAddress& address) {
  tcp::endpoint ep = to_endpoint(address);
  beast::error_code ec;
  auto& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    logs::admin().error("cannot listen on {}: {}", address.to_string(), ec.message());
    return false;
  }
  SocketAddress bound = address;
  bound.set_port(a.local_endpoint().port());
  logs::admin().info("admin listening on {}", bound.to_string());
  impl_->do_accept();
  return true;
}

void AdminServer::stop() {
  beast::error_code ec;
  impl_->acceptor.close(ec);
}

}  // namespace switchyard::admin
