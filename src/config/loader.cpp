#include "switchyard/config/loader.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_set>

#include "tls_files.h"

namespace switchyard::config {
namespace {

// Limits that are not in the contract but keep one typo from exhausting memory.
constexpr uint32_t kMaxWeight = 10000;
constexpr uint16_t kMaxPriority = 65535;
constexpr size_t kMaxDiscoveredEndpoints = 10000;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// "200-299", "200,204": status codes and ranges from 100 to 599.
void read_expect_status(const Value& v, std::vector<StatusRange>* out) {
  std::string s;
  if (!v.string(&s)) return;
  std::vector<StatusRange> ranges;
  std::stringstream items(s);
  std::string item;
  bool ok = !s.empty();
  while (ok && std::getline(items, item, ',')) {
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    auto dash = item.find('-');
    auto parse = [](std::string_view t, uint16_t* n) {
      auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), *n);
      return !t.empty() && ec == std::errc{} && end == t.data() + t.size() && *n >= 100 &&
             *n <= 599;
    };
    StatusRange r;
    if (dash == std::string::npos) {
      ok = parse(item, &r.low);
      r.high = r.low;
    } else {
      ok = parse(std::string_view(item).substr(0, dash), &r.low) &&
           parse(std::string_view(item).substr(dash + 1), &r.high) && r.low <= r.high;
    }
    ranges.push_back(r);
  }
  if (!ok) {
    v.error("expected status codes or ranges from 100 to 599, like \"200-299\"");
    return;
  }
  *out = std::move(ranges);
}

// --- the blocks, each key name written once ------------------------------------------------

const BlockSpec<Admin> kAdmin{{
    {"listen", [](const Value& v, Admin& a) { v.address(true, &a.listen_text, &a.listen); }},
    {"probe_listen",
     [](const Value& v, Admin& a) {
       SocketAddress addr;
       if (v.address(true, &a.probe_listen_text, &addr)) a.probe_listen = addr;
     }},
    {"token_file",
     [](const Value& v, Admin& a) {
       if (!v.file_path(&a.token_file)) return;
       std::ifstream in(a.token_file, std::ios::binary);
       if (!in) return v.error("cannot read '" + a.token_file + "'");
       std::string token(4097, '\0');  // a token is short; never read a device to its end
       in.read(token.data(), static_cast<std::streamsize>(token.size()));
       token.resize(static_cast<size_t>(in.gcount()));
       if (token.size() > 4096) return v.error("'" + a.token_file + "' is longer than 4 KiB");
       const auto first = token.find_first_not_of(" \t\r\n");
       const auto last = token.find_last_not_of(" \t\r\n");
       token = first == std::string::npos ? "" : token.substr(first, last - first + 1);
       if (token.size() < 16) {
         return v.error("the token in '" + a.token_file + "' is shorter than 16 characters");
       }
       for (unsigned char c : token) {
         if (c <= 0x20 || c >= 0x7f) {
           return v.error("the token in '" + a.token_file +
                          "' must be printable ASCII without spaces");
         }
       }
       a.token = std::move(token);
     }},
}};

const BlockSpec<AccessLog> kAccessLog{{
    {"enabled", [](const Value& v, AccessLog& a) { v.boolean(&a.enabled); }},
    {"format",
     [](const Value& v, AccessLog& a) {
       v.choice(&a.format, {{"text", AccessLogFormat::kText}, {"json", AccessLogFormat::kJson}});
     }},
}};

const BlockSpec<Limits> kLimits{{
    {"max_connections",
     [](const Value& v, Limits& l) { v.integer<uint32_t>(&l.max_connections, 1, 1'000'000); }},
    {"max_request_header_bytes",
     [](const Value& v, Limits& l) {
       v.integer<uint32_t>(&l.max_request_header_bytes, 1024, 1 << 20);
     }},
    {"max_request_body_bytes",
     [](const Value& v, Limits& l) {
       v.integer<uint64_t>(&l.max_request_body_bytes, 0, uint64_t(1) << 50);
     }},
    {"header_timeout", [](const Value& v, Limits& l) { v.duration(&l.header_timeout); }},
    {"idle_timeout", [](const Value& v, Limits& l) { v.duration(&l.idle_timeout); }},
    {"max_concurrent_streams",
     [](const Value& v, Limits& l) { v.integer<uint32_t>(&l.max_concurrent_streams, 1, 10'000); }},
    {"request_body_timeout",
     [](const Value& v, Limits& l) { v.duration(&l.request_body_timeout); }},
    {"max_requests_in_flight",
     [](const Value& v, Limits& l) { v.integer<uint32_t>(&l.max_requests_in_flight, 1, 10'000); }},
}};

const BlockSpec<Retries> kRetries{{
    {"non_idempotent", [](const Value& v, Retries& r) { v.boolean(&r.non_idempotent); }},
    {"attempts", [](const Value& v, Retries& r) { v.integer<uint32_t>(&r.attempts, 0, 10); }},
    {"max_body_bytes",
     [](const Value& v, Retries& r) { v.integer<uint32_t>(&r.max_body_bytes, 0, 16u << 20); }},
    {"on",
     [](const Value& v, Retries& r) {
       r.on_mask = 0;
       for (const auto& item : v.items()) {
         std::string s;
         if (!item.string(&s)) continue;
         if (s == "connect_failure") {
           r.on_mask |= static_cast<uint32_t>(RetryOn::kConnectFailure);
         } else if (s == "reset") {
           r.on_mask |= static_cast<uint32_t>(RetryOn::kReset);
         } else if (s == "timeout") {
           r.on_mask |= static_cast<uint32_t>(RetryOn::kTimeout);
         } else {
           uint16_t code = 0;
           if (item.integer<uint16_t>(&code, 100, 599)) r.on_status.push_back(code);
         }
       }
     }},
}};

const BlockSpec<Route> kMatch{{
    {"host",
     [](const Value& v, Route& r) {
       std::string host;
       if (!v.string(&host)) return;
       host = lower(host);
       if (host.empty() || host.find_first_of(" /\t") != std::string::npos) {
         v.error("invalid host '" + host + "'");
       }
       r.host = host;
     }},
    {"path_prefix",
     [](const Value& v, Route& r) {
       std::string prefix;
       if (!v.string(&prefix)) return;
       if (prefix.empty() || prefix[0] != '/') v.error("must start with '/'");
       r.path_prefix = prefix;
     }},
    {"client_san",
     [](const Value& v, Route& r) {
       std::string san;
       if (!v.string(&san)) return;
       if (san.empty() || san == "*") {
         v.error(
             "expected a URI SAN, like spiffe://example.org/ns/web (a trailing * matches a "
             "prefix)");
       }
       r.client_san = san;
     }},
}};

const BlockSpec<Hedge> kHedge{{
    {"delay",
     [](const Value& v, Hedge& h) {
       const std::string text = v.node().IsScalar() ? v.node().Scalar() : "";
       if (!text.empty() && (text[0] == 'p' || text[0] == 'P')) {
         double p = 0;
         const char* end = text.data() + text.size();
         auto [ptr, ec] = std::from_chars(text.data() + 1, end, p);
         if (ec != std::errc() || ptr != end || p < 50 || p > 99.99) {
           v.error("expected a duration (20ms) or a percentile from p50 to p99.99 (p95)");
           return;
         }
         h.percentile = p;
         return;
       }
       if (v.duration(&h.delay) && h.delay.count() == 0) v.error("must be more than 0");
     },
     /*required=*/true},
    {"min_delay", [](const Value& v, Hedge& h) { v.duration(&h.min_delay); }},
}};

const BlockSpec<Route> kRoute{{
    {"match", [](const Value& v, Route& r) { read_block(v, kMatch, r); }},
    {"cluster",
     [](const Value& v, Route& r) {
       if (!v.string(&r.cluster)) return;
       const auto& clusters = v.reader().config->clusters;
       auto it = std::find_if(clusters.begin(), clusters.end(),
                              [&](const Cluster& c) { return c.name == r.cluster; });
       if (it == clusters.end()) {
         v.error("no cluster named '" + r.cluster + "'");
       } else {
         r.cluster_index = static_cast<size_t>(it - clusters.begin());
       }
     },
     /*required=*/true},
    {"timeout", [](const Value& v, Route& r) { v.duration(&r.timeout, /*allow_zero=*/true); }},
    {"retries", [](const Value& v, Route& r) { read_block(v, kRetries, r.retries); }},
    {"hedge",
     [](const Value& v, Route& r) {
       Hedge h;
       read_block(v, kHedge, h);
       r.hedge = h;
     }},
    {"cross_region",
     [](const Value& v, Route& r) {
       v.choice(&r.cross_region, {{"allow", CrossRegion::kAllow},
                                  {"failover_only", CrossRegion::kFailoverOnly},
                                  {"deny", CrossRegion::kDeny}});
     }},
}};

// A list key that must not be empty (routes, endpoints): read per spec, refused when empty.
template <typename T>
std::vector<T> non_empty_list(const Value& v, const BlockSpec<T>& spec, const char* what) {
  auto items = read_list(v, spec);
  if (items.empty() && (v.node().IsSequence() || v.node().IsNull())) {
    v.error(std::string("must list at least one ") + what);
  }
  return items;
}

void read_tls_version(const Value& v, TlsVersion* out) {
  v.choice(out, {{"1.2", TlsVersion::k12},
                 {"1.3", TlsVersion::k13},
                 {"TLSv1.2", TlsVersion::k12},
                 {"TLSv1.3", TlsVersion::k13}});
}

// An OpenSSL cipher string: only characters such lists use (the library checks the rest when
// the context is built).
void read_cipher_list(const Value& v, std::string* out) {
  std::string s;
  if (!v.string(&s)) return;
  if (s.empty() || s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                       "0123456789-_:+!@=.") != std::string::npos) {
    v.error("expected an OpenSSL cipher list, like ECDHE-ECDSA-AES128-GCM-SHA256:...");
    return;
  }
  *out = s;
}

const BlockSpec<TlsCertificate> kTlsCertificate{
    {
        {"cert_file", [](const Value& v, TlsCertificate& c) { v.file_path(&c.cert_file); },
         /*required=*/true},
        {"key_file", [](const Value& v, TlsCertificate& c) { v.file_path(&c.key_file); },
         /*required=*/true},
    },
    [](const Value& block, TlsCertificate& c) {
      if (c.cert_file.empty() || c.key_file.empty()) return;
      std::string why;
      if (!tls_files::check_pair(c.cert_file, c.key_file, &c.names, &why)) {
        block.reader().error(block.node(), block.path(), why);
      }
    }};

const BlockSpec<ListenerTls> kListenerTls{
    {
        {"certificates",
         [](const Value& v, ListenerTls& t) {
           t.certificates = read_list(v, kTlsCertificate);
           if (t.certificates.empty()) v.error("must list at least one certificate");
         },
         /*required=*/true},
        {"min_version",
         [](const Value& v, ListenerTls& t) { read_tls_version(v, &t.min_version); }},
        {"ciphers", [](const Value& v, ListenerTls& t) { read_cipher_list(v, &t.ciphers); }},
        {"ciphersuites",
         [](const Value& v, ListenerTls& t) { read_cipher_list(v, &t.ciphersuites); }},
        {"session_tickets", [](const Value& v, ListenerTls& t) { v.boolean(&t.session_tickets); }},
        {"client_ca_file",
         [](const Value& v, ListenerTls& t) {
           std::string why;
           if (v.file_path(&t.client_ca_file) && !tls_files::check_ca(t.client_ca_file, &why)) {
             v.error(why);
           }
         }},
        {"client_certificate",
         [](const Value& v, ListenerTls& t) {
           v.choice(&t.client_certificate, {{"none", ClientCertificate::kNone},
                                            {"optional", ClientCertificate::kOptional},
                                            {"required", ClientCertificate::kRequired}});
         }},
    },
    [](const Value& block, ListenerTls& t) {
      if (t.client_certificate != ClientCertificate::kNone && t.client_ca_file.empty()) {
        block.reader().error(block.node(), block.path() + ".client_certificate",
                             "needs client_ca_file (the CAs client certificates chain to)");
      }
    }};

const BlockSpec<ClusterTls> kClusterTls{
    {
        {"enabled", [](const Value& v, ClusterTls& t) { v.boolean(&t.enabled); }},
        {"sni",
         [](const Value& v, ClusterTls& t) {
           if (v.string(&t.sni) && t.sni.find_first_of(" /:\t") != std::string::npos) {
             v.error("expected a host name");
           }
         }},
        {"verify", [](const Value& v, ClusterTls& t) { v.boolean(&t.verify); }},
        {"ca_file",
         [](const Value& v, ClusterTls& t) {
           std::string why;
           if (v.file_path(&t.ca_file) && !tls_files::check_ca(t.ca_file, &why)) v.error(why);
         }},
        {"cert_file", [](const Value& v, ClusterTls& t) { v.file_path(&t.cert_file); }},
        {"key_file", [](const Value& v, ClusterTls& t) { v.file_path(&t.key_file); }},
        {"min_version", [](const Value& v, ClusterTls& t) { read_tls_version(v, &t.min_version); }},
    },
    [](const Value& block, ClusterTls& t) {
      if (!block.node().IsMap()) return;
      if (!block.node()["enabled"].IsDefined()) t.enabled = true;  // a tls block turns it on
      if (t.cert_file.empty() != t.key_file.empty()) {
        block.reader().error(block.node(),
                             block.path() + (t.cert_file.empty() ? ".cert_file" : ".key_file"),
                             "cert_file and key_file go together (a client certificate)");
        return;
      }
      std::vector<std::string> names;
      std::string why;
      if (!t.cert_file.empty() && !tls_files::check_pair(t.cert_file, t.key_file, &names, &why)) {
        block.reader().error(block.node(), block.path(), why);
      }
    }};

const BlockSpec<Listener> kListener{{
    {"name",
     [](const Value& v, Listener& l) {
       if (v.string(&l.name) && l.name.empty()) v.error("must not be empty");
     },
     /*required=*/true},
    {"listen", [](const Value& v, Listener& l) { v.address(true, &l.listen_text, &l.listen); },
     /*required=*/true},
    {"local_zone", [](const Value& v, Listener& l) { v.string(&l.local_zone); }},
    {"local_region", [](const Value& v, Listener& l) { v.string(&l.local_region); }},
    {"debug_headers", [](const Value& v, Listener& l) { v.boolean(&l.debug_headers); }},
    {"trusted_proxies",
     [](const Value& v, Listener& l) {
       for (const auto& item : v.items()) {
         Cidr c;
         if (item.cidr(&c)) l.trusted_proxies.push_back(c);
       }
     }},
    {"region_map",
     [](const Value& v, Listener& l) {
       if (!v.node().IsMap() && !v.node().IsNull()) {
         v.error("expected a mapping of CIDR to region");
         return;
       }
       if (!v.node().IsMap()) return;
       for (auto it = v.node().begin(); it != v.node().end(); ++it) {
         RegionMapEntry entry;
         if (!Value(v.reader(), it->first, v.path()).cidr(&entry.cidr)) continue;
         entry.cidr_text = it->first.Scalar();
         Value region(v.reader(), it->second, v.path() + "." + entry.cidr_text);
         if (region.string(&entry.region) && entry.region.empty()) {
           region.error("region must not be empty");
         }
         l.region_map.push_back(std::move(entry));
       }
     }},
    {"limits", [](const Value& v, Listener& l) { read_block(v, kLimits, l.limits); }},
    {"upgrade_protocols",
     [](const Value& v, Listener& l) {
       l.upgrade_protocols.clear();
       for (const auto& item : v.items()) {
         std::string s;
         if (!item.string(&s)) continue;
         if (!valid_token(s)) {
           item.error("expected a protocol name, like websocket");
         } else if (lower(s) == "h2c") {
           item.error("h2c is never tunnelled (it would bypass routing and limits)");
         } else {
           l.upgrade_protocols.push_back(s);
         }
       }
     }},
    {"routes", [](const Value& v, Listener& l) { l.routes = non_empty_list(v, kRoute, "route"); },
     /*required=*/true},
    {"tls",
     [](const Value& v, Listener& l) {
       ListenerTls t;
       read_block(v, kListenerTls, t);
       l.tls = std::move(t);
     }},
    {"protocols",
     [](const Value& v, Listener& l) {
       for (const auto& item : v.items()) {
         ListenerProtocol p{};
         if (!item.choice(&p, {{"http1", ListenerProtocol::kHttp1}, {"h2", ListenerProtocol::kH2}}))
           continue;
         if (l.speaks(p)) {
           item.error(std::string("listed twice: ") + to_string(p));
         } else {
           l.protocols.push_back(p);
         }
       }
       if (v.node().IsNull() || (v.node().IsSequence() && v.node().size() == 0))
         v.error("must list at least one of http1, h2");
     }},
}};

const BlockSpec<Endpoint> kMetadata{{
    {"cpu_usage",
     [](const Value& v, Endpoint& e) {
       double d = 0;
       if (v.number(&d, 0, 1)) e.cpu_usage = d;
     }},
    {"memory_usage",
     [](const Value& v, Endpoint& e) {
       double d = 0;
       if (v.number(&d, 0, 1)) e.memory_usage = d;
     }},
}};

const BlockSpec<Endpoint> kEndpoint{{
    {"address", [](const Value& v, Endpoint& e) { v.address(false, &e.address_text, &e.address); },
     /*required=*/true},
    {"region", [](const Value& v, Endpoint& e) { v.string(&e.region); }},
    {"zone", [](const Value& v, Endpoint& e) { v.string(&e.zone); }},
    {"weight", [](const Value& v, Endpoint& e) { v.integer<uint32_t>(&e.weight, 1, kMaxWeight); }},
    {"metadata", [](const Value& v, Endpoint& e) { read_block(v, kMetadata, e); }},
    {"priority",
     [](const Value& v, Endpoint& e) { v.integer<uint16_t>(&e.priority, 0, kMaxPriority); }},
}};

// A discovery file's endpoint: the same keys, but the address must be an IP literal (a name
// would block the control thread on DNS at every change; names belong in a dns source).
BlockSpec<Endpoint> file_endpoint_spec() {
  BlockSpec<Endpoint> spec = kEndpoint;
  spec.keys[0].read = [](const Value& v, Endpoint& e) {
    std::string text;
    if (!v.string(&text)) return;
    std::string_view host = text;
    if (!host.empty() && host.front() == '[') {
      host = host.substr(1, host.find(']') == std::string_view::npos ? 0 : host.find(']') - 1);
    } else if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
      host = host.substr(0, colon);
    }
    if (!IpAddress::parse(host)) {
      v.error("invalid address '" + text +
              "': a discovery file lists IP:PORT (names need a "
              "dns source)");
      return;
    }
    v.address(false, &e.address_text, &e.address);
  };
  return spec;
}

const BlockSpec<Locality::Prediction> kPrediction{{
    {"enabled", [](const Value& v, Locality::Prediction& p) { v.boolean(&p.enabled); }},
    {"horizon",
     [](const Value& v, Locality::Prediction& p) {
       if (v.duration(&p.horizon, true) && p.horizon > std::chrono::seconds(60)) {
         v.error("must be at most 60s");
       }
     }},
    {"latency_ratio",
     [](const Value& v, Locality::Prediction& p) { v.number(&p.latency_ratio, 1.5, 1000); }},
    {"error_rate",
     [](const Value& v, Locality::Prediction& p) { v.number(&p.error_rate, 0.01, 1); }},
    {"recovery",
     [](const Value& v, Locality::Prediction& p) {
       if (v.duration(&p.recovery, true) && p.recovery > std::chrono::minutes(10)) {
         v.error("must be at most 10m");
       }
     }},
}};

const BlockSpec<Locality> kLocality{{
    {"client_region", [](const Value& v, Locality& l) { v.header_name(&l.client_region_header); }},
    {"client_zone", [](const Value& v, Locality& l) { v.header_name(&l.client_zone_header); }},
    {"min_healthy_fraction",
     [](const Value& v, Locality& l) { v.number(&l.min_healthy_fraction, 0, 1); }},
    {"fallback",
     [](const Value& v, Locality& l) {
       v.choice(
           &l.fallback,
           {{"nearest", Fallback::kNearest}, {"any", Fallback::kAny}, {"none", Fallback::kNone}});
     }},
    {"predictive",
     [](const Value& v, Locality& l) {
       if (v.node().IsMap()) {
         l.predictive.enabled = true;
         read_block(v, kPrediction, l.predictive);
       } else {
         v.boolean(&l.predictive.enabled);
       }
     }},
}};

const BlockSpec<HealthCheck> kHealthCheck{{
    {"protocol",
     [](const Value& v, HealthCheck& h) {
       v.choice(&h.protocol, {{"http", HealthProtocol::kHttp}, {"grpc", HealthProtocol::kGrpc}});
     }},
    {"service", [](const Value& v, HealthCheck& h) { v.string(&h.service); }},
    {"path",
     [](const Value& v, HealthCheck& h) {
       if (v.string(&h.path) && (h.path.empty() || h.path[0] != '/'))
         v.error("must start with '/'");
     }},
    {"interval", [](const Value& v, HealthCheck& h) { v.duration(&h.interval); }},
    {"timeout", [](const Value& v, HealthCheck& h) { v.duration(&h.timeout); }},
    {"healthy_threshold",
     [](const Value& v, HealthCheck& h) { v.integer<uint32_t>(&h.healthy_threshold, 1, 100); }},
    {"unhealthy_threshold",
     [](const Value& v, HealthCheck& h) { v.integer<uint32_t>(&h.unhealthy_threshold, 1, 100); }},
    {"expect_status",
     [](const Value& v, HealthCheck& h) { read_expect_status(v, &h.expect_status); }},
    {"passive_connect_failures",
     [](const Value& v, HealthCheck& h) {
       v.integer<uint32_t>(&h.passive_connect_failures, 0, 1000);
     }},
}};

const BlockSpec<SuccessRateEjection> kSuccessRate{{
    {"minimum_hosts",
     [](const Value& v, SuccessRateEjection& s) {
       v.integer<uint32_t>(&s.minimum_hosts, 1, 100000);
     }},
    {"request_volume",
     [](const Value& v, SuccessRateEjection& s) {
       v.integer<uint32_t>(&s.request_volume, 1, 100000000);
     }},
    {"stdev_factor",
     [](const Value& v, SuccessRateEjection& s) { v.number(&s.stdev_factor, 0, 100); }},
}};

const BlockSpec<FailurePercentageEjection> kFailurePercentage{{
    {"threshold",
     [](const Value& v, FailurePercentageEjection& f) { v.number(&f.threshold, 0, 100); }},
    {"minimum_hosts",
     [](const Value& v, FailurePercentageEjection& f) {
       v.integer<uint32_t>(&f.minimum_hosts, 1, 100000);
     }},
    {"request_volume",
     [](const Value& v, FailurePercentageEjection& f) {
       v.integer<uint32_t>(&f.request_volume, 1, 100000000);
     }},
}};

const BlockSpec<SlowStart> kSlowStart{{
    {"window",
     [](const Value& v, SlowStart& s) {
       if (v.duration(&s.window) && s.window < std::chrono::milliseconds(100)) {
         v.error("must be at least 100ms");
       }
     }},
    {"aggression", [](const Value& v, SlowStart& s) { v.number(&s.aggression, 0.01, 100); }},
    {"min_weight_percent",
     [](const Value& v, SlowStart& s) { v.number(&s.min_weight_percent, 0, 100); }},
}};

const BlockSpec<CircuitBreaker> kCircuitBreaker{{
    {"consecutive_failures",
     [](const Value& v, CircuitBreaker& c) {
       v.integer<uint32_t>(&c.consecutive_failures, 0, 1000);
     }},
    {"base_ejection", [](const Value& v, CircuitBreaker& c) { v.duration(&c.base_ejection); }},
    {"max_ejection",
     [](const Value& v, CircuitBreaker& c) {
       if (v.duration(&c.max_ejection) && c.max_ejection < c.base_ejection) {
         v.error("must be at least base_ejection");
       }
     }},
    {"max_ejected_fraction",
     [](const Value& v, CircuitBreaker& c) { v.number(&c.max_ejected_fraction, 0, 1); }},
    {"max_pending_requests",
     [](const Value& v, CircuitBreaker& c) {
       v.integer<uint32_t>(&c.max_pending_requests, 1, 10'000'000);
     }},
    {"success_rate",
     [](const Value& v, CircuitBreaker& c) {
       SuccessRateEjection s;
       read_block(v, kSuccessRate, s);
       c.success_rate = s;
     }},
    {"failure_percentage",
     [](const Value& v, CircuitBreaker& c) {
       FailurePercentageEjection f;
       read_block(v, kFailurePercentage, f);
       c.failure_percentage = f;
     }},
    {"interval",
     [](const Value& v, CircuitBreaker& c) {
       if (v.duration(&c.interval) && c.interval < std::chrono::milliseconds(100)) {
         v.error("must be at least 100ms");
       }
     }},
    {"split_local_origin",
     [](const Value& v, CircuitBreaker& c) { v.boolean(&c.split_local_origin); }},
    {"consecutive_local_failures",
     [](const Value& v, CircuitBreaker& c) {
       v.integer<uint32_t>(&c.consecutive_local_failures, 0, 1000);
     }},
}};

const BlockSpec<Upstream> kUpstream{{
    {"connect_timeout", [](const Value& v, Upstream& u) { v.duration(&u.connect_timeout); }},
    {"idle_timeout", [](const Value& v, Upstream& u) { v.duration(&u.idle_timeout); }},
    {"max_idle_per_endpoint",
     [](const Value& v, Upstream& u) {
       v.integer<uint32_t>(&u.max_idle_per_endpoint, 0, 100'000);
     }},
}};

// --- discovery (extension) -----------------------------------------------------------------

void read_resolver(const Value& v, std::string* out) {
  if (!v.string(out)) return;
  std::string text = *out;
  if (text.find(':') == std::string::npos ||
      (text.front() != '[' && text.find(':') != text.rfind(':'))) {
    text = text.find(':') == std::string::npos ? text + ":53" : "[" + text + "]:53";
  }
  // An IP literal (a resolver's name would need a resolver).
  std::string_view host = text;
  host = host.front() == '[' ? host.substr(1, host.find(']') - 1) : host.substr(0, host.rfind(':'));
  std::string why;
  if (!IpAddress::parse(host) || !parse_host_port(text, false, &why)) {
    v.error("invalid resolver '" + *out + "' (expected IP or IP:PORT)");
    return;
  }
  *out = text;
}

const BlockSpec<DnsDiscovery> kDnsDiscovery{{
    {"name",
     [](const Value& v, DnsDiscovery& d) {
       if (v.string(&d.name) && (d.name.empty() || d.name.size() > 253)) {
         v.error("must be a DNS name of 1 to 253 characters");
       }
     },
     /*required=*/true},
    {"port", [](const Value& v, DnsDiscovery& d) { v.integer<uint16_t>(&d.port, 1, 65535); }},
    {"type",
     [](const Value& v, DnsDiscovery& d) {
       v.choice(&d.type, {{"A", DnsRecord::kA},
                          {"AAAA", DnsRecord::kAaaa},
                          {"A_AAAA", DnsRecord::kAny},
                          {"SRV", DnsRecord::kSrv}});
     }},
    {"refresh", [](const Value& v, DnsDiscovery& d) { v.duration(&d.refresh); }},
    {"min_refresh",
     [](const Value& v, DnsDiscovery& d) {
       if (v.duration(&d.min_refresh) && d.min_refresh < std::chrono::milliseconds(100)) {
         v.error("must be at least 100ms");
       }
     }},
    {"timeout", [](const Value& v, DnsDiscovery& d) { v.duration(&d.timeout); }},
    {"resolvers",
     [](const Value& v, DnsDiscovery& d) {
       for (const auto& item : v.items()) {
         std::string r;
         read_resolver(item, &r);
         d.resolvers_text.push_back(r);
       }
     }},
    {"region", [](const Value& v, DnsDiscovery& d) { v.string(&d.region); }},
    {"zone", [](const Value& v, DnsDiscovery& d) { v.string(&d.zone); }},
}};

const BlockSpec<FileDiscovery> kFileDiscovery{{
    {"path",
     [](const Value& v, FileDiscovery& f) {
       if (v.file_path(&f.path) && f.path.empty()) v.error("must not be empty");
     },
     /*required=*/true},
}};

const BlockSpec<KubernetesDiscovery> kKubernetesDiscovery{{
    {"service",
     [](const Value& v, KubernetesDiscovery& k) {
       if (v.string(&k.service) && k.service.empty()) v.error("must not be empty");
     },
     /*required=*/true},
    {"namespace", [](const Value& v, KubernetesDiscovery& k) { v.string(&k.namespace_); }},
    {"port", [](const Value& v, KubernetesDiscovery& k) { v.string(&k.port); }},
    {"api_server",
     [](const Value& v, KubernetesDiscovery& k) {
       if (v.string(&k.api_server) && k.api_server.rfind("https://", 0) != 0 &&
           k.api_server.rfind("http://", 0) != 0) {
         v.error("must be an https:// or http:// URL");
       }
     }},
    {"token_file", [](const Value& v, KubernetesDiscovery& k) { v.file_path(&k.token_file); }},
    {"ca_file", [](const Value& v, KubernetesDiscovery& k) { v.file_path(&k.ca_file); }},
    {"verify", [](const Value& v, KubernetesDiscovery& k) { v.boolean(&k.verify); }},
    {"region", [](const Value& v, KubernetesDiscovery& k) { v.string(&k.region); }},
    {"timeout", [](const Value& v, KubernetesDiscovery& k) { v.duration(&k.timeout); }},
}};

const BlockSpec<Discovery> kDiscovery{{
    {"dns",
     [](const Value& v, Discovery& d) {
       DnsDiscovery dns;
       read_block(v, kDnsDiscovery, dns);
       if (dns.type != DnsRecord::kSrv && dns.port == 0 && v.node().IsMap()) {
         v.error("needs a port (only SRV records carry their own)");
       }
       d.dns = dns;
     }},
    {"file",
     [](const Value& v, Discovery& d) {
       FileDiscovery f;
       read_block(v, kFileDiscovery, f);
       d.file = f;
     }},
    {"kubernetes",
     [](const Value& v, Discovery& d) {
       KubernetesDiscovery k;
       read_block(v, kKubernetesDiscovery, k);
       d.kubernetes = k;
     }},
}};

std::vector<Endpoint> read_endpoints(const Value& v, const BlockSpec<Endpoint>& spec = kEndpoint) {
  std::vector<Endpoint> out;
  std::unordered_set<std::string> seen;
  for (const auto& item : v.items()) {
    Endpoint ep;
    read_block(item, spec, ep);
    if (!ep.address_text.empty() && !seen.insert(ep.address_text).second) {
      v.reader().error(item.node(), item.path() + ".address",
                       "duplicate endpoint '" + ep.address_text + "'");
    }
    out.push_back(std::move(ep));
  }
  return out;
}

// The cluster block: its own keys and, between strategy and locality, the blocks the
// schema's policies read themselves.
BlockSpec<Cluster> cluster_spec(const Schema& schema, Value* endpoints_seen) {
  BlockSpec<Cluster> spec;
  spec.keys.push_back({"name",
                       [](const Value& v, Cluster& c) {
                         if (v.string(&c.name) && c.name.empty()) v.error("must not be empty");
                       },
                       /*required=*/true});
  spec.keys.push_back({"strategy", [&schema](const Value& v, Cluster& c) {
                         std::string s = v.node().IsScalar() ? v.node().Scalar() : "";
                         for (const auto& name : schema.strategies) {
                           if (s == name) {
                             c.strategy = s;
                             return;
                           }
                         }
                         std::string list;
                         for (const auto& name : schema.strategies) {
                           list += (list.empty() ? "" : " | ") + name;
                         }
                         v.error("expected one of " + list);
                       }});
  for (const auto& block : schema.cluster_blocks) {
    spec.keys.push_back(
        {block.key.c_str(),
         [&block](const Value& v, Cluster& c) { c.blocks.emplace_back(block.key, block.read(v)); },
         /*required=*/false, /*always=*/true});
  }
  spec.keys.push_back({"locality", [](const Value& v, Cluster& c) {
                         Locality loc;
                         read_block(v, kLocality, loc);
                         c.locality = loc;
                       }});
  spec.keys.push_back({"health_check", [](const Value& v, Cluster& c) {
                         HealthCheck hc;
                         read_block(v, kHealthCheck, hc);
                         c.health_check = hc;
                       }});
  spec.keys.push_back({"circuit_breaker", [](const Value& v, Cluster& c) {
                         read_block(v, kCircuitBreaker, c.circuit_breaker);
                       }});
  spec.keys.push_back({"slow_start", [](const Value& v, Cluster& c) {
                         SlowStart s;
                         read_block(v, kSlowStart, s);
                         c.slow_start = s;
                       }});
  spec.keys.push_back({"panic_threshold",
                       [](const Value& v, Cluster& c) { v.number(&c.panic_threshold, 0, 100); }});
  spec.keys.push_back(
      {"upstream", [](const Value& v, Cluster& c) { read_block(v, kUpstream, c.upstream); }});
  spec.keys.push_back(
      {"tls", [](const Value& v, Cluster& c) { read_block(v, kClusterTls, c.tls); }});
  spec.keys.push_back({"protocol", [](const Value& v, Cluster& c) {
                         v.choice(&c.protocol, {{"http1", UpstreamProtocol::kHttp1},
                                                {"h2c", UpstreamProtocol::kH2c},
                                                {"h2", UpstreamProtocol::kH2}});
                       }});
  spec.keys.push_back({"endpoints", [endpoints_seen](const Value& v, Cluster& c) {
                         c.endpoints = read_endpoints(v);
                         *endpoints_seen = v;
                       }});
  spec.keys.push_back({"discovery", [](const Value& v, Cluster& c) {
                         const size_t errors = v.reader().errors().size();
                         if (read_block(v, kDiscovery, c.discovery) &&
                             v.reader().errors().size() == errors &&
                             (c.discovery.dns ? 1 : 0) + (c.discovery.file ? 1 : 0) +
                                     (c.discovery.kubernetes ? 1 : 0) !=
                                 1) {
                           v.error("needs exactly one source: dns, file or kubernetes");
                         }
                       }});
  spec.check = [&schema, endpoints_seen](const Value& block, Cluster& c) {
    // Without a discovery source, endpoints are required and not empty (as before discovery
    // existed); with one, they may be absent or empty.
    const bool discovered =
        c.discovery.any() || (block.node().IsMap() && block.node()["discovery"].IsDefined());
    if (!endpoints_seen->defined()) {
      if (!discovered) {
        block.reader().error(block.node(), block.path() + ".endpoints", "required key is missing");
      }
      return;
    }
    const YAML::Node& list = endpoints_seen->node();
    if (!discovered && c.endpoints.empty() && (list.IsSequence() || list.IsNull())) {
      endpoints_seen->error("must list at least one endpoint");
    }
    for (const auto& block : schema.cluster_blocks) {
      if (block.check) block.check(*endpoints_seen, c);
    }
  };
  return spec;
}

Config read_config(Reader& r, const YAML::Node& root, const Schema& schema) {
  Config cfg;
  r.config = &cfg;
  Value top(r, root, "");
  MapView m(r, top, {"workers", "drain_timeout", "admin", "access_log", "listeners", "clusters"});
  if (!m.valid()) return cfg;
  if (auto v = m.get("workers"); v.defined()) v.integer<uint32_t>(&cfg.workers, 0, 256);
  if (auto v = m.get("drain_timeout"); v.defined()) v.duration(&cfg.drain_timeout, true);
  bool admin_listen_given = false;
  if (auto v = m.get("admin"); v.defined()) {
    admin_listen_given =
        read_block(v, kAdmin, cfg.admin) && v.node().IsMap() && v.node()["listen"].IsDefined();
  }
  if (!admin_listen_given) {
    std::string why;
    cfg.admin.listen = *parse_host_port(cfg.admin.listen_text, false, &why);
  }
  if (auto v = m.get("access_log"); v.defined()) read_block(v, kAccessLog, cfg.access_log);

  // Clusters first, so that routes can be checked against their names.
  Value clusters = m.get("clusters", true);
  auto cluster_items = clusters.items();
  if (clusters.defined() && cluster_items.empty() &&
      (clusters.node().IsSequence() || clusters.node().IsNull())) {
    clusters.error("must list at least one cluster");
  }
  std::set<std::string> cluster_names;
  for (const auto& item : cluster_items) {
    Value endpoints_seen(r, YAML::Node(YAML::NodeType::Undefined), "");
    auto spec = cluster_spec(schema, &endpoints_seen);
    Cluster c;
    read_block(item, spec, c);
    if (!c.name.empty() && !cluster_names.insert(c.name).second) {
      r.error(item.node()["name"], item.path() + ".name",
              "duplicate cluster name '" + c.name + "'");
    }
    const bool h2 = c.protocol == UpstreamProtocol::kH2;
    if (h2 != c.tls.enabled && c.protocol != UpstreamProtocol::kHttp1) {
      r.error(item.node()["protocol"], item.path() + ".protocol",
              h2 ? "h2 runs over TLS: set tls.enabled (or use h2c for cleartext)"
                 : "h2c is cleartext: with tls.enabled use h2");
    }
    if (c.health_check && c.health_check->protocol == HealthProtocol::kGrpc &&
        c.protocol == UpstreamProtocol::kHttp1) {
      r.error(item.node()["health_check"]["protocol"], item.path() + ".health_check.protocol",
              "grpc health checks need protocol h2c or h2");
    }
    cfg.clusters.push_back(std::move(c));
  }

  Value listeners = m.get("listeners", true);
  auto listener_items = listeners.items();
  if (listeners.defined() && listener_items.empty() &&
      (listeners.node().IsSequence() || listeners.node().IsNull())) {
    listeners.error("must list at least one listener");
  }
  std::set<std::string> listener_names;
  for (const auto& item : listener_items) {
    Listener li;
    read_block(item, kListener, li);
    if (li.protocols.empty()) {
      if (li.tls) li.protocols.push_back(ListenerProtocol::kH2);
      li.protocols.push_back(ListenerProtocol::kHttp1);
    }
    for (size_t ri = 0; ri < li.routes.size(); ++ri) {
      if (li.routes[ri].client_san &&
          (!li.tls || li.tls->client_certificate == ClientCertificate::kNone)) {
        r.error(item.node()["routes"][ri]["match"]["client_san"],
                item.path() + ".routes[" + std::to_string(ri) + "].match.client_san",
                "needs tls.client_certificate optional or required on this listener");
      }
    }
    if (!li.name.empty() && !listener_names.insert(li.name).second) {
      r.error(item.node()["name"], item.path() + ".name",
              "duplicate listener name '" + li.name + "'");
    }
    bool port_zero = li.listen.length != 0 && li.listen.port() == 0;
    for (const auto& other : cfg.listeners) {
      if (!port_zero && li.listen.length != 0 && other.listen == li.listen) {
        r.error(item.node()["listen"], item.path() + ".listen",
                "address already used by listener '" + other.name + "'");
      }
    }
    if (!port_zero && li.listen.length != 0 && li.listen == cfg.admin.listen) {
      r.error(item.node()["listen"], item.path() + ".listen",
              "address already used by admin.listen");
    }
    cfg.listeners.push_back(std::move(li));
  }
  if (cfg.workers == 0) cfg.workers = std::max(1u, std::thread::hardware_concurrency());
  r.config = nullptr;
  return cfg;
}

}  // namespace

LoadResult load_string(std::string_view yaml, const std::string& file_name, const Schema& schema) {
  Reader reader(file_name);
  LoadResult result;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    reader.error(e.mark, "", "YAML syntax error: " + e.msg);
    result.errors = std::move(reader.errors());
    return result;
  }
  if (!root.IsDefined() || root.IsNull()) {
    reader.error(root.Mark(), "", "the file is empty");
    result.errors = std::move(reader.errors());
    return result;
  }
  Config cfg;
  try {
    cfg = read_config(reader, root, schema);
  } catch (const YAML::Exception& e) {
    // Should not happen (the readers check node types first); never let it escape.
    reader.error(e.mark, "", std::string("unexpected YAML error: ") + e.msg);
  }
  cfg.source_path = file_name;
  result.errors = std::move(reader.errors());
  std::stable_sort(result.errors.begin(), result.errors.end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     return a.line != b.line ? a.line < b.line : a.column < b.column;
                   });
  if (result.errors.empty()) result.config = std::make_shared<const Config>(std::move(cfg));
  return result;
}

EndpointsResult load_endpoints(std::string_view text, const std::string& file_name) {
  Reader reader(file_name);
  EndpointsResult result;
  try {
    YAML::Node root = YAML::Load(std::string(text));
    Value top(reader, root, "");
    if (!root.IsDefined() || root.IsNull()) {
      reader.error(root.Mark(), "", "the file is empty");
    } else if (root.IsSequence()) {
      result.endpoints = read_endpoints(top, file_endpoint_spec());
    } else {
      MapView m(reader, top, {"endpoints"});
      if (m.valid()) {
        result.endpoints = read_endpoints(m.get("endpoints", true), file_endpoint_spec());
      }
    }
    if (result.endpoints.size() > kMaxDiscoveredEndpoints) {
      reader.error(root.Mark(), "",
                   "lists " + std::to_string(result.endpoints.size()) +
                       " endpoints; the limit is " + std::to_string(kMaxDiscoveredEndpoints));
    }
  } catch (const YAML::Exception& e) {
    reader.error(e.mark, "", "YAML syntax error: " + e.msg);
  }
  result.errors = std::move(reader.errors());
  std::stable_sort(result.errors.begin(), result.errors.end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     return a.line != b.line ? a.line < b.line : a.column < b.column;
                   });
  if (!result.errors.empty()) result.endpoints.clear();
  return result;
}

LoadResult load_file(const std::string& path, const Schema& schema) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult result;
    result.errors.push_back(Diagnostic{path, 1, 1, "", "cannot read the file"});
    return result;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return load_string(buffer.str(), path, schema);
}

}  // namespace switchyard::config
