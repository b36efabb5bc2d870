#include "switchyard/admin/admin_server.h"

#include <pthread.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <optional>
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
// Connections per admin address: a scraper storm cannot exhaust descriptors. A connection that
// arrives when they are all taken evicts the one that has waited longest for a request (idle
// keep-alive, or a head that is still coming): a crowd of idle or slow connections can never
// keep the kubelet's probe out; only when every one of them is being answered is the newcomer
// closed.
constexpr size_t kMaxConnections = 64;
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);

struct Reply {
  http::status status;
  const char* content_type;
  std::string body;
  const char* www_authenticate = nullptr;
};

bool loopback(const asio::ip::address& a) {
  if (a.is_loopback()) return true;
  return a.is_v6() && a.to_v6().is_v4_mapped() &&
         asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).is_loopback();
}

// Constant time in the token's length: how much of a guess matched is not timed.
bool same_token(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

}  // namespace

// Who may change state through the admin port (POST /admin/reload): with admin.token_file,
// whoever sends `Authorization: Bearer <token>` (401 without one, 403 with a wrong one);
// without it, loopback peers only (403 for anyone else). Views need no credential.
std::optional<std::pair<unsigned, std::string>> authorize_change(std::string_view authorization,
                                                                 std::string_view token,
                                                                 bool peer_is_loopback) {
  if (token.empty()) {
    if (peer_is_loopback) return std::nullopt;
    return std::pair<unsigned, std::string>{
        403,
        "state-changing admin calls are taken only from loopback unless admin.token_file "
        "is set\n"};
  }
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() < kBearer.size() ||
      !std::equal(kBearer.begin(), kBearer.end(), authorization.begin(), [](char x, char y) {
        return std::tolower(static_cast<unsigned char>(x)) ==
               std::tolower(static_cast<unsigned char>(y));
      })) {
    return std::pair<unsigned, std::string>{401, "a bearer token is required\n"};
  }
  std::string_view given = authorization.substr(kBearer.size());
  while (!given.empty() && given.back() == ' ') given.remove_suffix(1);
  if (!same_token(given, token)) {
    return std::pair<unsigned, std::string>{403, "wrong token\n"};
  }
  return std::nullopt;
}

// Runs on its own thread and io_context, so that building /metrics or /admin/clusters for a
// crowd of scrapers never delays the control thread (health checks, the circuit breaker,
// reloads). It only reads: the proxy's current statistics and their snapshot (under a mutex
// workers never take) and atomics.
struct AdminServer::Impl : std::enable_shared_from_this<AdminServer::Impl> {
  Impl(const proxy::StatsRegistry& st, const control::Runtime& r, const AdminState& s)
      : work(asio::make_work_guard(ioc)), stats(st), runtime(r), state(s) {}

  struct Connection;
  // One admin address: admin.listen (everything), or admin.probe_listen (probes and metrics).
  struct Listener {
    explicit Listener(asio::io_context& ioc, bool probes)
        : acceptor(ioc), backoff(ioc), probe_only(probes) {}
    tcp::acceptor acceptor;
    asio::steady_timer backoff;
    bool probe_only;
    std::vector<std::weak_ptr<Connection>> connections;  // admin thread only
  };

  asio::io_context ioc{1};
  asio::executor_work_guard<asio::io_context::executor_type> work;
  const proxy::StatsRegistry& stats;
  const control::Runtime& runtime;
  const AdminState& state;
  std::vector<std::unique_ptr<Listener>> listeners;
  std::thread thread;

  ReloadHook reload;  // set before listen()

  static constexpr const char* kIndex =
      "not found; try / /healthz /readyz /metrics /admin/clusters /admin/config "
      "/admin/explain?path=/ and POST /admin/reload\n";

  static constexpr const char* kProbeIndex =
      "not found; this address serves /healthz /readyz /metrics (admin.probe_listen)\n";

  Reply handle(const http::request<http::string_body>& req, bool probe_only) {
    std::string_view target = req.target();
    const size_t q = target.find('?');
    const std::string_view path = target.substr(0, q);
    const std::string_view query = q == std::string_view::npos ? "" : target.substr(q + 1);
    if (probe_only && path != "/healthz" && path != "/readyz" && path != "/metrics") {
      return {http::status::not_found, "text/plain", kProbeIndex};
    }
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
                                             stats.access_log_dropped(), logs::dropped(),
                                             runtime.discovery_status()};
      return {http::status::ok, "text/plain; version=0.0.4", metrics::render(*current, process)};
    }
    if (path == "/admin/clusters") {
      return {http::status::ok, "application/json",
              clusters_json(*current->snapshot, runtime.discovery_status())};
    }
    if (path == "/admin/config") {
      return {http::status::ok, "application/json", config_json(*current->snapshot)};
    }
    unsigned status = 200;
    std::string body = explain_json(*current->snapshot, query, &status);
    return {static_cast<http::status>(status), "application/json", std::move(body)};
  }

  void do_accept(Listener& l) {
    l.acceptor.async_accept(
        [self = shared_from_this(), &l](beast::error_code ec, tcp::socket socket) {
          if (ec == asio::error::operation_aborted) return;
          if (ec) {
            // Out of descriptors or a transient error: back off instead of spinning on it.
            logs::admin().warn("accept failed: {}", ec.message());
            l.backoff.expires_after(kAcceptBackoff);
            l.backoff.async_wait([self, &l](beast::error_code e) {
              if (!e) self->do_accept(l);
            });
            return;
          }
          std::erase_if(l.connections, [](const auto& w) { return w.expired(); });
          if (l.connections.size() >= kMaxConnections && !self->evict_one(l)) {
            beast::error_code ignored;
            socket.close(ignored);  // every connection is being answered: this one waits its turn
          } else {
            auto c = std::make_shared<Connection>(self, l, std::move(socket));
            l.connections.push_back(c);
            c->read();
          }
          self->do_accept(l);
        });
  }

  // Closes the connection that has waited longest for a request; false if none is waiting.
  bool evict_one(Listener& l) {
    std::shared_ptr<Connection> oldest;
    for (auto& w : l.connections) {
      auto c = w.lock();
      if (c && c->reading && !c->evicted && (!oldest || c->waiting_since < oldest->waiting_since))
        oldest = c;
    }
    if (!oldest) return false;
    oldest->evicted = true;
    beast::error_code ignored;
    oldest->stream.socket().close(ignored);  // its pending read ends; it goes with it
    std::erase_if(l.connections, [&](const auto& w) { return w.lock() == oldest; });
    return true;
  }

  struct Connection : std::enable_shared_from_this<Connection> {
    Connection(std::shared_ptr<Impl> s, Listener& l, tcp::socket socket)
        : server(std::move(s)), listener(l), stream(std::move(socket)) {
      beast::error_code ec;
      auto peer = stream.socket().remote_endpoint(ec);
      peer_loopback = !ec && loopback(peer.address());
    }
    std::shared_ptr<Impl> server;
    Listener& listener;
    beast::tcp_stream stream;
    beast::flat_buffer buffer{16 * 1024};
    std::optional<http::request_parser<http::string_body>> parser;
    http::response<http::string_body> response;
    bool peer_loopback = false;
    bool reading = false;  // waiting for (the rest of) a request: may be evicted
    bool evicted = false;
    std::chrono::steady_clock::time_point waiting_since;

    void read() {
      parser.emplace();
      parser->header_limit(8192);
      parser->body_limit(4096);
      stream.expires_after(kAdminTimeout);
      reading = true;
      waiting_since = std::chrono::steady_clock::now();
      http::async_read(stream, buffer, *parser,
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         self->reading = false;
                         if (ec) return;
                         self->respond();
                       });
    }

    void respond() {
      const auto& req = parser->get();
      std::string_view path = req.target();
      path = path.substr(0, path.find('?'));
      if (path == "/admin/reload" && req.method() == http::verb::post && !listener.probe_only) {
        auto current = server->stats.current();
        const std::string_view token =
            current ? std::string_view(current->snapshot->config->admin.token) : "";
        if (auto refused =
                authorize_change(req[http::field::authorization], token, peer_loopback)) {
          logs::admin().warn("POST /admin/reload refused ({})", refused->first);
          return send({static_cast<http::status>(refused->first), "text/plain",
                       std::move(refused->second),
                       refused->first == 401 ? "Bearer realm=\"switchyard admin\"" : nullptr});
        }
        return reload();
      }
      send(server->handle(req, listener.probe_only));
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
      if (reply.www_authenticate != nullptr)
        response.set(http::field::www_authenticate, reply.www_authenticate);
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

bool AdminServer::listen(const SocketAddress& address,
                         const std::optional<SocketAddress>& probe_address) {
  auto open = [this](const SocketAddress& addr, bool probe_only) {
    auto l = std::make_unique<Impl::Listener>(impl_->ioc, probe_only);
    tcp::endpoint ep = to_endpoint(addr);
    beast::error_code ec;
    auto& a = l->acceptor;
    a.open(ep.protocol(), ec);
    if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) a.bind(ep, ec);
    if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      logs::admin().error("cannot listen on {}: {}", addr.to_string(), ec.message());
      return false;
    }
    SocketAddress bound = addr;
    bound.set_port(a.local_endpoint().port());
    if (probe_only) {
      logs::admin().info("admin probes listening on {}", bound.to_string());
    } else {
      logs::admin().info("admin listening on {}", bound.to_string());
    }
    impl_->listeners.push_back(std::move(l));
    return true;
  };
  if (!open(address, false)) return false;
  if (probe_address && !open(*probe_address, true)) return false;
  for (auto& l : impl_->listeners) impl_->do_accept(*l);
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
    for (auto& l : impl->listeners) {
      l->acceptor.close(ec);
      l->backoff.cancel();
      for (auto& w : l->connections) {
        if (auto c = w.lock()) c->stream.socket().close(ec);
      }
      l->connections.clear();
    }
    impl->work.reset();
  });
  impl_->thread.join();
}

}  // namespace switchyard::admin
