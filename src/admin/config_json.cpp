// GET /admin/config: the configuration the proxy runs now, every default filled in, in the
// YAML's own key names and units (durations as "10s"), secrets redacted.

#include <boost/json.hpp>
#include <cmath>

#include "switchyard/admin/admin_server.h"
#include "switchyard/balancer/policy.h"

namespace switchyard::admin {
namespace {
// "p95", "p99.9": a hedge delay at a percentile, as written in YAML.
std::string percentile_text(double v) {
  std::string s(1, 'p');
  std::string number = std::to_string(v);
  number.erase(number.find_last_not_of('0') + 1);
  if (!number.empty() && number.back() == '.') number.pop_back();
  s.append(number);
  return s;
}
}  // namespace

namespace json = boost::json;

namespace {

class JsonFields : public config::BlockFields {
 public:
  explicit JsonFields(json::object& out) : out_(out) {}
  void text(std::string_view key, std::string_view value) override { out_[key] = value; }
  void number(std::string_view key, double value) override {
    if (std::floor(value) == value && std::fabs(value) < 1e15) {
      out_[key] = static_cast<int64_t>(value);  // counts print as counts
    } else {
      out_[key] = value;
    }
  }

 private:
  json::object& out_;
};

const char* fallback_name(config::Fallback f) {
  switch (f) {
    case config::Fallback::kAny:
      return "any";
    case config::Fallback::kNone:
      return "none";
    case config::Fallback::kNearest:
      break;
  }
  return "nearest";
}

json::value optional_text(const std::optional<std::string>& s) {
  return s ? json::value(*s) : json::value(nullptr);
}

json::object retries_json(const config::Retries& r) {
  json::array on;
  if (r.on_mask & static_cast<uint32_t>(config::RetryOn::kConnectFailure)) {
    on.push_back("connect_failure");
  }
  if (r.on_mask & static_cast<uint32_t>(config::RetryOn::kReset)) on.push_back("reset");
  if (r.on_mask & static_cast<uint32_t>(config::RetryOn::kTimeout)) on.push_back("timeout");
  for (uint16_t code : r.on_status) on.push_back(code);
  return {{"attempts", r.attempts},
          {"on", std::move(on)},
          {"max_body_bytes", r.max_body_bytes},
          {"non_idempotent", r.non_idempotent}};
}

json::object listener_json(const config::Listener& l) {
  json::array trusted;
  for (const auto& c : l.trusted_proxies) trusted.push_back(json::value(c.to_string()));
  json::array region_map;
  for (const auto& e : l.region_map) {
    region_map.push_back(json::object{{"cidr", e.cidr_text}, {"region", e.region}});
  }
  json::array upgrades;
  for (const auto& p : l.upgrade_protocols) upgrades.push_back(json::value(p));
  json::array routes;
  for (const auto& r : l.routes) {
    routes.push_back(json::object{
        {"match", json::object{{"host", optional_text(r.host)},
                               {"path_prefix", optional_text(r.path_prefix)},
                               {"client_san", optional_text(r.client_san)}}},
        {"cluster", r.cluster},
        {"timeout", format_duration(r.timeout)},
        {"retries", retries_json(r.retries)},
        {"hedge", r.hedge
                      ? json::value(json::object{
                            {"delay", r.hedge->percentile > 0 ? percentile_text(r.hedge->percentile)
                                                              : format_duration(r.hedge->delay)},
                            {"min_delay", format_duration(r.hedge->min_delay)}})
                      : json::value(nullptr)},
        {"cross_region", config::to_string(r.cross_region)},
    });
  }
  const auto& lim = l.limits;
  json::value tls = nullptr;
  if (l.tls) {
    json::array certs;
    for (const auto& c : l.tls->certificates) {
      json::array names;
      for (const auto& n : c.names) names.push_back(json::value(n));
      certs.push_back(json::object{
          {"cert_file", c.cert_file}, {"key_file", c.key_file}, {"names", std::move(names)}});
    }
    const char* mode =
        l.tls->client_certificate == config::ClientCertificate::kRequired   ? "required"
        : l.tls->client_certificate == config::ClientCertificate::kOptional ? "optional"
                                                                            : "none";
    tls = json::object{
        {"certificates", std::move(certs)},
        {"min_version", l.tls->min_version == config::TlsVersion::k13 ? "1.3" : "1.2"},
        {"ciphers", l.tls->ciphers},
        {"ciphersuites", l.tls->ciphersuites},
        {"session_tickets", l.tls->session_tickets},
        {"client_ca_file", l.tls->client_ca_file},
        {"client_certificate", mode},
    };
  }
  json::array protocols;
  for (auto p : l.protocols) protocols.emplace_back(config::to_string(p));
  return {
      {"name", l.name},
      {"listen", l.listen_text},
      {"protocols", std::move(protocols)},
      {"local_region", l.local_region},
      {"local_zone", l.local_zone},
      {"debug_headers", l.debug_headers},
      {"trusted_proxies", std::move(trusted)},
      {"region_map", std::move(region_map)},
      {"upgrade_protocols", std::move(upgrades)},
      {"limits", json::object{{"max_connections", lim.max_connections},
                              {"max_request_header_bytes", lim.max_request_header_bytes},
                              {"max_request_body_bytes", lim.max_request_body_bytes},
                              {"header_timeout", format_duration(lim.header_timeout)},
                              {"idle_timeout", format_duration(lim.idle_timeout)},
                              {"max_concurrent_streams", lim.max_concurrent_streams},
                              {"request_body_timeout", format_duration(lim.request_body_timeout)},
                              {"max_requests_in_flight", lim.max_requests_in_flight}}},
      {"routes", std::move(routes)},
      {"tls", std::move(tls)},
  };
}

json::object cluster_json(const config::Cluster& c) {
  json::object out{
      {"name", c.name}, {"strategy", c.strategy}, {"protocol", config::to_string(c.protocol)}};
  // The blocks of the cluster's own policy (the loader keeps every policy's, with defaults).
  const balancer::Policy* policy = balancer::policies().find(c.strategy);
  for (const auto& [key, block] : c.blocks) {
    bool own = false;
    if (policy != nullptr) {
      for (const auto& k : policy->reads()) own = own || k == key;
    }
    if (!own) continue;
    json::object fields;
    JsonFields writer(fields);
    block->describe(writer);
    out[key] = std::move(fields);
  }
  if (c.locality) {
    const auto& l = *c.locality;
    out["locality"] = json::object{
        {"client_region", "header:" + l.client_region_header},
        {"client_zone", l.client_zone_header.empty()
                            ? json::value(nullptr)
                            : json::value("header:" + l.client_zone_header)},
        {"min_healthy_fraction", l.min_healthy_fraction},
        {"fallback", fallback_name(l.fallback)},
    };
  }
  if (c.health_check) {
    const auto& h = *c.health_check;
    std::string expect;  // "200-299,304", as written
    for (const auto& r : h.expect_status) {
      if (!expect.empty()) expect.push_back(',');
      expect.append(std::to_string(r.low));
      if (r.high != r.low) {
        expect.push_back('-');
        expect.append(std::to_string(r.high));
      }
    }
    out["health_check"] = json::object{
        {"protocol", h.protocol == config::HealthProtocol::kGrpc ? "grpc" : "http"},
        {"service", h.service},
        {"path", h.path},
        {"interval", format_duration(h.interval)},
        {"timeout", format_duration(h.timeout)},
        {"healthy_threshold", h.healthy_threshold},
        {"unhealthy_threshold", h.unhealthy_threshold},
        {"expect_status", expect},
        {"passive_connect_failures", h.passive_connect_failures},
    };
  }
  const auto& cb = c.circuit_breaker;
  out["circuit_breaker"] = json::object{
      {"consecutive_failures", cb.consecutive_failures},
      {"base_ejection", format_duration(cb.base_ejection)},
      {"max_ejection", format_duration(cb.max_ejection)},
      {"max_ejected_fraction", cb.max_ejected_fraction},
      {"max_pending_requests", cb.max_pending_requests},
      {"interval", format_duration(cb.interval)},
      {"split_local_origin", cb.split_local_origin},
      {"consecutive_local_failures", cb.consecutive_local_failures},
      {"success_rate", cb.success_rate ? json::value(json::object{
                                             {"minimum_hosts", cb.success_rate->minimum_hosts},
                                             {"request_volume", cb.success_rate->request_volume},
                                             {"stdev_factor", cb.success_rate->stdev_factor}})
                                       : json::value(nullptr)},
      {"failure_percentage",
       cb.failure_percentage
           ? json::value(json::object{{"threshold", cb.failure_percentage->threshold},
                                      {"minimum_hosts", cb.failure_percentage->minimum_hosts},
                                      {"request_volume", cb.failure_percentage->request_volume}})
           : json::value(nullptr)},
  };
  out["slow_start"] =
      c.slow_start
          ? json::value(json::object{{"window", format_duration(c.slow_start->window)},
                                     {"aggression", c.slow_start->aggression},
                                     {"min_weight_percent", c.slow_start->min_weight_percent}})
          : json::value(nullptr);
  out["panic_threshold"] = c.panic_threshold;
  out["upstream"] = json::object{
      {"connect_timeout", format_duration(c.upstream.connect_timeout)},
      {"idle_timeout", format_duration(c.upstream.idle_timeout)},
      {"max_idle_per_endpoint", c.upstream.max_idle_per_endpoint},
  };
  if (c.tls.enabled) {
    out["tls"] = json::object{
        {"sni", c.tls.sni},
        {"verify", c.tls.verify},
        {"ca_file", c.tls.ca_file},
        {"cert_file", c.tls.cert_file},
        {"key_file", c.tls.key_file},
        {"min_version", c.tls.min_version == config::TlsVersion::k13 ? "1.3" : "1.2"},
    };
  }
  json::array endpoints;
  for (const auto& e : c.endpoints) {
    json::object ep{
        {"address", e.address_text}, {"region", e.region}, {"zone", e.zone}, {"weight", e.weight}};
    if (e.cpu_usage || e.memory_usage) {
      json::object meta;
      if (e.cpu_usage) meta["cpu_usage"] = *e.cpu_usage;
      if (e.memory_usage) meta["memory_usage"] = *e.memory_usage;
      ep["metadata"] = std::move(meta);
    }
    endpoints.push_back(std::move(ep));
  }
  out["endpoints"] = std::move(endpoints);
  return out;
}

}  // namespace

std::string config_json(const control::Snapshot& snapshot) {
  const config::Config& c = *snapshot.config;
  json::array listeners;
  for (const auto& l : c.listeners) listeners.push_back(listener_json(l));
  json::array clusters;
  for (const auto& cl : c.clusters) clusters.push_back(cluster_json(cl));
  json::object doc{
      {"version", snapshot.version},
      {"source", c.source_path},
      {"workers", c.workers},
      {"drain_timeout", format_duration(c.drain_timeout)},
      {"admin", json::object{{"listen", c.admin.listen_text},
                             {"probe_listen", c.admin.probe_listen_text},
                             {"token_file", c.admin.token_file}}},  // never the token
      {"access_log",
       json::object{
           {"enabled", c.access_log.enabled},
           {"format", c.access_log.format == config::AccessLogFormat::kJson ? "json" : "text"}}},
      {"listeners", std::move(listeners)},
      {"clusters", std::move(clusters)},
  };
  return json::serialize(doc) + "\n";
}

}  // namespace switchyard::admin
