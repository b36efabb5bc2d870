#include "switchyard/admin/admin_server.h"

#include <pthread.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <thread>

#include "switchyard/common/asio_endpoint.h"
#include "switchyard/common/logging.h"
#include "switchyard/metrics/exposition.h"

namespace switchyard::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Each connection gets this long per request (read and answer); an admin client that stalls
// is dropped.
constexpr auto kAdminTimeout = std::chrono::seconds(10);
// Connections beyond this are closed at accept: a scraper storm cannot exhaust descriptors.
constexpr size_t kMaxConnections = 64;
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);

struct Reply {
  http::status status;
  const char* content_type;
  std::string body;
};

}  // namespace

// Runs on its own thread and io_context, so that building /metrics or /admin/clusters for a
// crowd of scrapers never delays the control thread (health checks, the circuit breaker,
// reloads). It only reads: the proxy's current statistics and their snapshot (under a mutex
// workers never take) and atomics.
struct AdminServer::Impl : std::enable_shared_from_this<AdminServer::Impl> {
  Impl(const proxy::StatsRegistry& st, const control::Runtime& r, const AdminState& s)
      : work(asio::make_work_guard(ioc)),
        acceptor(ioc),
        backoff(ioc),
        stats(st),
        runtime(r),
        state(s) {}

  asio::io_context ioc{1};
  asio::executor_work_guard<asio::io_context::executor_type> work;
  tcp::acceptor acceptor;
  asio::steady_timer backoff;
  const proxy::StatsRegistry& stats;
  const control::Runtime& runtime;
  const AdminState& state;
  size_t open = 0;  // admin thread only
  struct Connection;
  std::vector<std::weak_ptr<Connection>> connections;  // admin thread only, for stop()
  std::thread thread;

  ReloadHook reload;  // set before listen()

  static constexpr const char* kIndex =
      "not found; try / /healthz /readyz /metrics /admin/clusters /admin/config "
      "/admin/explain?path=/ and POST /admin/reload\n";

  Reply handle(const http::request<http::string_body>& req) {
    std::string_view target = req.target();
    const size_t q = target.find('?');
    const std::string_view path = target.substr(0, q);
    const std::string_view query = q == std::string_view::npos ? "" : target.substr(q + 1);
    if (path == "/admin/reload")
      return {http::status::method_not_allowed, "text/plain", "only POST\n"};
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      return {http::status::method_not_allowed, "text/plain", "only GET\n"};
    }
    if (path == "/healthz") return {http::status::ok, "text/plain", "ok\n"};
    if (path == "/readyz") {
      if (state.ready.load()) return {http::status::ok, "text/plain", "ready\n"};
      return {http::status::service_unavailable, "text/plain", "not ready\n"};
    }
    if (path == "/" || path == "/status") {
      return {http::status::ok, "text/html; charset=utf-8", std::string(status_page())};
    }
    auto current = stats.current();
    const bool known = path == "/metrics" || path == "/admin/clusters" || path == "/admin/config" ||
                       path == "/admin/explain";
    if (!known) return {http::status::not_found, "text/plain", kIndex};
    if (!current) return {http::status::service_unavailable, "text/plain", "none\n"};
    if (path == "/metrics") {
      const metrics::ProcessCounters process{runtime.reloads(true), runtime.reloads(false),
                                             stats.access_log_dropped(), logs::dropped()};
      return {http::status::ok, "text/plain; version=0.0.4", metrics::render(*current, process)};
    }
    if (path == "/admin/clusters") {
      return {http::status::ok, "application/json", clusters_json(*current->snapshot)};
    }
    if (path == "/admin/config") {
      return {http::status::ok, "application/json", config_json(*current->snapshot)};
    }
    unsigned status = 200;
    std::string body = explain_json(*current->snapshot, query, &status);
    return {static_cast<http::status>(status), "application/json", std::move(body)};
  }

  void do_accept() {
    acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (ec) {
        // Out of descriptors or a transient error: back off instead of spinning on it.
        logs::admin().warn("accept failed: {}", ec.message());
        self->backoff.expires_after(kAcceptBackoff);
        self->backoff.async_wait([self](beast::error_code e) {
          if (!e) self->do_accept();
        });
        return;
      }
      if (self->open >= kMaxConnections) {
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        auto c = std::make_shared<Connection>(self, std::move(socket));
        std::erase_if(self->connections, [](const auto& w) { return w.expired(); });
        self->connections.push_back(c);
        c->read();
      }
      self->do_accept();
    });
  }

  struct Connection : std::enable_shared_from_this<Connection> {
    Connection(std::shared_ptr<Impl> s, tcp::socket socket)
        : server(std::move(s)), stream(std::move(socket)) {
      ++server->open;
    }
    ~Connection() { --server->open; }
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
      std::string_view path = req.target();
      path = path.substr(0, path.find('?'));
      if (path == "/admin/reload" && req.method() == http::verb::post) return reload();
      send(server->handle(req));
    }

    // The reload runs on the control thread; its outcome comes back here, to this connection's
    // thread, and is answered as JSON: 200 with the new version, or 422 with every error.
    void reload() {
      if (!server->reload) {
        return send({http::status::service_unavailable, "text/plain", "reload unavailable\n"});
      }
      server->reload([self = shared_from_this()](ReloadOutcome outcome) {
        asio::post(self->server->ioc, [self, outcome = std::move(outcome)] {
          boost::json::array errors;
          for (const auto& e : outcome.errors) errors.push_back(boost::json::value(e));
          boost::json::object doc{{"result", outcome.ok ? "success" : "failure"},
                                  {"version", outcome.version},
                                  {"errors", std::move(errors)}};
          self->send({outcome.ok ? http::status::ok : http::status::unprocessable_entity,
                      "application/json", boost::json::serialize(doc) + "\n"});
        });
      });
    }

    void send(Reply reply) {
      const auto& req = parser->get();
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

AdminServer::AdminServer(const proxy::StatsRegistry& stats, const control::Runtime& runtime,
                         const AdminState& state)
    : impl_(std::make_shared<Impl>(stats, runtime, state)) {}

AdminServer::~AdminServer() { stop(); }

void AdminServer::on_reload(ReloadHook hook) { impl_->reload = std::move(hook); }

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
  impl_->thread = std::thread([impl = impl_] {
    pthread_setname_np(pthread_self(), "sy-admin");
    impl->ioc.run();
  });
  return true;
}

// Closes everything on the admin thread, so that every pending operation ends with an error
// and the loop runs out of work by itself; then joins it. Nothing is left holding the server.
void AdminServer::stop() {
  if (!impl_->thread.joinable()) return;
  asio::post(impl_->ioc, [impl = impl_] {
    beast::error_code ec;
    impl->acceptor.close(ec);
    impl->backoff.cancel();
    for (auto& w : impl->connections) {
      if (auto c = w.lock()) c->stream.socket().close(ec);
    }
    impl->connections.clear();
    impl->work.reset();
  });
  impl_->thread.join();
}

}  // namespace switchyard::admin
