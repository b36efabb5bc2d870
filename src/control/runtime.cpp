#include "switchyard/control/runtime.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fstream>
#include <iterator>

#include "switchyard/common/logging.h"

namespace switchyard::control {
namespace {
constexpr auto kTick = std::chrono::milliseconds(100);

std::string file_bytes(const std::string& path) {
  if (path.empty()) return {};
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Everything a cluster's client TLS context is made of: its settings and the bytes of its
// files. Equal fingerprints build equal contexts, so a reload that changes none of it keeps the
// context (and with it the pooled TLS connections, which are reused only under the context
// they were made with).
std::string client_tls_fingerprint(const config::Cluster& c) {
  const auto& t = c.tls;
  std::string f;
  for (const std::string* part : {&t.sni, &t.ca_file, &t.cert_file, &t.key_file}) {
    f.append(*part).push_back('\0');
  }
  f.push_back(t.verify ? '1' : '0');
  f.push_back(t.min_version == config::TlsVersion::k13 ? '3' : '2');
  f.push_back(c.protocol == config::UpstreamProtocol::kH2 ? 'h' : '1');
  for (const std::string* path : {&t.ca_file, &t.cert_file, &t.key_file}) {
    f.append(file_bytes(*path)).push_back('\0');
  }
  return f;
}
}  // namespace

struct Runtime::Impl {
  explicit Impl(boost::asio::io_context& ioc) : timer(ioc) {}
  boost::asio::steady_timer timer;
  bool running = false;
  bool stopped = false;
};

Runtime::Runtime(boost::asio::io_context& control)
    : impl_(std::make_shared<Impl>(control)),
      outliers_(control),
      health_(control, health::HealthChecker::Observer{
                           [this](const std::string& key, bool passed, double rtt_ms) {
                             on_check_result(key, passed, rtt_ms);
                           },
                           [this](const std::string& key, std::string_view header) {
                             on_check_report(key, header);
                           }}),
      discovery_(control, [this] { rediscover(); }) {}

Runtime::~Runtime() { stop(); }

std::shared_ptr<const Snapshot> Runtime::apply(std::shared_ptr<const config::Config> cfg,
                                               std::string* error) {
  discovery_.update(*cfg);
  auto snap = build(discovery_.compose(cfg), error);
  if (!snap) {
    discovery_.rollback();  // a failed reload changes nothing, its sources included
    return snap;
  }
  discovery_.commit();
  base_ = std::move(cfg);
  return snap;
}

void Runtime::rediscover() {
  if (!base_ || impl_->stopped) return;
  std::string why;
  auto snap = build(discovery_.compose(base_), &why);
  if (!snap) {
    logs::config().error("discovery: the new endpoints were not applied: {}", why);
    return;
  }
  if (publish_) publish_(snap);
  // From the answer to the snapshot the workers pick up next (README, "Service discovery").
  logs::config().info("discovery: the new endpoints are live, {:.1f} ms after the answer",
                      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                                discovery_.changed_at())
                          .count());
}

std::shared_ptr<const Snapshot> Runtime::build(std::shared_ptr<const config::Config> cfg,
                                               std::string* error) {
  // TLS first: it is the one part that can still fail, and a failure must change nothing.
  std::vector<std::shared_ptr<const tls::ServerContext>> listener_tls;
  std::vector<std::shared_ptr<const tls::ClientContext>> cluster_tls;
  std::string why;
  for (const auto& l : cfg->listeners) {
    listener_tls.push_back(l.tls
                               ? tls::ServerContext::build(*l.tls, l.name, &why,
                                                           l.speaks(config::ListenerProtocol::kH2))
                               : nullptr);
    if (l.tls && !listener_tls.back()) {
      if (error) *error = "listener '" + l.name + "': " + why;
      return nullptr;
    }
  }
  std::map<std::string, ClientTls> client_tls;
  for (const auto& c : cfg->clusters) {
    if (!c.tls.enabled) {
      cluster_tls.push_back(nullptr);
      continue;
    }
    std::string fingerprint = client_tls_fingerprint(c);
    auto old = client_tls_.find(c.name);
    if (old != client_tls_.end() && old->second.fingerprint == fingerprint) {
      cluster_tls.push_back(old->second.context);
    } else {
      cluster_tls.push_back(
          tls::ClientContext::build(c.tls, &why, c.protocol == config::UpstreamProtocol::kH2));
      if (!cluster_tls.back()) {
        if (error) *error = "cluster '" + c.name + "': " + why;
        return nullptr;
      }
    }
    client_tls[c.name] = ClientTls{std::move(fingerprint), cluster_tls.back()};
  }
  auto reg = registry_.build(cfg);
  auto snap = std::make_shared<Snapshot>();
  snap->listener_tls = std::move(listener_tls);
  snap->cluster_tls = cluster_tls;
  snap->version = reg->version;
  snap->config = cfg;
  snap->registry = reg;
  std::map<std::string, std::shared_ptr<balancer::EndpointLoad>> loads;
  std::map<std::string, std::shared_ptr<balancer::ClusterState>> states;
  std::map<std::string, std::shared_ptr<balancer::ClusterStats>> stats;
  std::map<std::string, std::shared_ptr<breaker::EndpointBreaker>> breakers;
  std::vector<health::HealthChecker::Target> targets;
  std::vector<breaker::OutlierDetector::Cluster> watched;
  for (const auto& cluster : reg->clusters) {
    const auto& cc = *cluster.config;
    const auto* policy = balancer::policies().find(cc.strategy);
    balancer::ClusterBalancer::Owned owned;
    breaker::OutlierDetector::Cluster view{
        cc.name, cc.circuit_breaker, {}, outliers_.stats(cc.name)};
    for (const auto& ep : cluster.endpoints) {
      owned.health.push_back(health_.state(ep.key, cc.health_check.has_value()));
      auto b = outliers_.state(ep.key);
      owned.breakers.push_back(b);
      breakers[ep.key] = b;
      view.members.push_back({b, ep.address_text});
      auto& load = loads_[ep.key];
      if (!load) {
        load = std::make_shared<balancer::EndpointLoad>();
        // Added after start-up (a reload, discovery): its first entry into service warms up
        // (slow start). The endpoints of the first configuration start together.
        load->warm_on_first_use = current_ != nullptr;
      }
      loads[ep.key] = load;
      owned.loads.push_back(load);
      targets.push_back({ep.key, cc.name, ep.address_text, ep.address, cc.health_check,
                         cluster_tls[snap->clusters.size()]});
    }
    auto& state = cluster_states_[cc.name];
    if (!state) state = std::make_shared<balancer::ClusterState>();
    states[cc.name] = state;
    auto& st = cluster_stats_[cc.name];
    if (!st) st = std::make_shared<balancer::ClusterStats>();
    stats[cc.name] = st;
    auto balancer = std::make_unique<balancer::ClusterBalancer>(cluster, *policy, std::move(owned),
                                                                state, st, &outliers_);
    balancer->tick();  // usable counts and regions before any worker sees it
    snap->clusters.push_back(std::move(balancer));
    snap->breaker_stats.push_back(view.stats);
    watched.push_back(std::move(view));
  }
  for (size_t i = 0; i < reg->listeners.size(); ++i) {
    const auto& lc = cfg->listeners[i];
    snap->listeners.push_back(ListenerRuntime{&lc, &reg->listeners[i], routing::Router(lc)});
  }
  // States of endpoints and clusters that left go with them (holders keep theirs alive).
  client_tls_ = std::move(client_tls);
  loads_ = std::move(loads);
  cluster_states_ = std::move(states);
  cluster_stats_ = std::move(stats);
  breakers_ = std::move(breakers);
  outliers_.update(std::move(watched));
  health_.update(targets);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    current_ = snap;
  }
  return snap;
}

void Runtime::on_check_result(const std::string& key, bool passed, double rtt_ms) {
  if (auto it = breakers_.find(key); it != breakers_.end()) outliers_.on_check(*it->second, passed);
  if (auto it = loads_.find(key); it != loads_.end() && rtt_ms >= 0) {
    it->second->observe_latency(rtt_ms);
  }
}

// A load report on a health-check response: the same parsing, applying and counting as on a
// request's response.
void Runtime::on_check_report(const std::string& key, std::string_view header) {
  auto it = loads_.find(key);
  if (it == loads_.end()) return;
  const auto result = balancer::receive_load_report(*it->second, header);
  const std::string cluster = key.substr(0, key.find('\0'));
  if (auto s = cluster_stats_.find(cluster); s != cluster_stats_.end()) {
    s->second->counters.add(balancer::ClusterStats::kLoadReportOk + static_cast<size_t>(result));
  }
}

void Runtime::start() {
  if (impl_->running || impl_->stopped) return;
  impl_->running = true;
  schedule();
}

void Runtime::schedule() {
  impl_->timer.expires_after(kTick);
  impl_->timer.async_wait([this, impl = impl_](boost::system::error_code ec) {
    if (ec || impl->stopped) return;
    tick();
    schedule();
  });
}

void Runtime::tick() {
  const auto now = std::chrono::steady_clock::now();
  outliers_.tick(now);
  tls::rotate_ticket_keys_if_due(now);
  auto snap = current();
  if (!snap) return;
  for (const auto& b : snap->clusters) b->tick();
}

void Runtime::stop() {
  impl_->stopped = true;
  discovery_.stop();
  impl_->timer.cancel();
  health_.stop();
  outliers_.stop();
}

}  // namespace switchyard::control
