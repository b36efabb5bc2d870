#include "switchyard/proxy/server.h"

#include <boost/asio/socket_base.hpp>

#include "listener/listener.h"
#include "switchyard/common/asio_endpoint.h"
#include "switchyard/common/logging.h"
#include "upstream/upstream_pools.h"
#include "worker/worker.h"

namespace switchyard::proxy {

using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

namespace {

// SO_REUSEPORT lets any process of the same user bind the same port and silently take a share
// of its connections: a forgotten old instance would then answer some requests. Binding once
// without SO_REUSEPORT first fails if anyone listens there already, so startup fails loudly.
bool address_free(const SocketAddress& addr) {
  asio::io_context ioc;
  tcp::endpoint ep = to_endpoint(addr);
  tcp::acceptor probe(ioc);
  boost::system::error_code ec;
  probe.open(ep.protocol(), ec);
  if (!ec) probe.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) probe.bind(ep, ec);
  return ec != asio::error::address_in_use;
}

}  // namespace

struct ProxyServer::Impl {
  explicit Impl(const config::Config& cfg)
      : config(cfg), shared(cfg.listeners.size()), access_log(cfg.workers) {
    shared.access_log = &access_log;
    shared.stats = &stats;
    for (size_t i = 0; i < cfg.workers; ++i) {
      workers.push_back(std::make_unique<Worker>(i, shared));
      workers.back()->set_upstream(std::make_unique<UpstreamPools>(*workers.back()));
    }
  }
  ~Impl() {
    for (auto& worker : workers) worker->stop();
    workers.clear();  // before the access log writer, which then writes what is left
  }
  const config::Config& config;
  StatsRegistry stats;
  SharedCounters shared;
  AccessLogWriter access_log;
  std::vector<std::unique_ptr<Worker>> workers;
};

ProxyServer::ProxyServer(const config::Config& config) : impl_(std::make_unique<Impl>(config)) {}

ProxyServer::~ProxyServer() { stop(); }

bool ProxyServer::bind() {
  for (size_t li = 0; li < impl_->config.listeners.size(); ++li) {
    const auto& listener = impl_->config.listeners[li];
    SocketAddress addr = listener.listen;
    if (addr.port() != 0 && !address_free(addr)) {
      logs::proxy().error("listener '{}': {} is already in use by another process", listener.name,
                          listener.listen_text);
      return false;
    }
    for (auto& worker : impl_->workers) {
      tcp::endpoint ep = to_endpoint(addr);
      Acceptor acceptor(worker->ioc().get_executor());
      boost::system::error_code ec;
      acceptor.open(ep.protocol(), ec);
      if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec) acceptor.set_option(ReusePort(true), ec);
      if (!ec) acceptor.bind(ep, ec);
      if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
      if (ec) {
        logs::proxy().error("listener '{}': cannot listen on {}: {}", listener.name,
                            listener.listen_text, ec.message());
        return false;
      }
      if (addr.port() == 0) addr.set_port(acceptor.local_endpoint().port());
      worker->add_listener(std::make_unique<Listener>(*worker, li, std::move(acceptor)));
    }
    logs::proxy().info("listener '{}' listening on {} ({} workers)", listener.name,
                       addr.to_string(), impl_->workers.size());
  }
  return true;
}

void ProxyServer::publish(std::shared_ptr<const control::Snapshot> snapshot) {
  auto stats = impl_->stats.build(snapshot);
  for (auto& worker : impl_->workers) worker->publish(snapshot, stats);
}

const StatsRegistry& ProxyServer::stats() const { return impl_->stats; }

void ProxyServer::start() {
  for (auto& worker : impl_->workers) worker->start();
}

void ProxyServer::drain() {
  for (auto& worker : impl_->workers) worker->drain();
}

size_t ProxyServer::open_connections() const {
  size_t total = 0;
  for (const auto& worker : impl_->workers) total += worker->open_connections();
  return total;
}

void ProxyServer::stop() {
  for (auto& worker : impl_->workers) worker->stop();
}

}  // namespace switchyard::proxy
