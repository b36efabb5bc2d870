#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "switchyard/common/duration.h"
#include "switchyard/common/net.h"

// The whole YAML contract of DESIGN.md Part A as plain, immutable-after-load structs. Defaults
// here are the documented defaults; the loader (config/loader.h) fills and validates them.
namespace switchyard::config {

using namespace std::chrono_literals;

struct Admin {
  std::string listen_text = "127.0.0.1:9901";
  SocketAddress listen;
  // Extension: a second admin address that serves only /healthz, /readyz and /metrics (for
  // the kubelet and Prometheus on the pod network while the views and reload stay on a
  // loopback admin.listen). Empty: none. Restart to change.
  std::string probe_listen_text;
  std::optional<SocketAddress> probe_listen;
  // Extension: state-changing admin calls (POST /admin/reload) need
  // `Authorization: Bearer <token>`, the token being this file's content (surrounding
  // whitespace trimmed; read at every load). Without it they are taken only from loopback.
  std::string token_file;
  std::string token;  // secret: never shown
};

enum class AccessLogFormat { kText, kJson };

struct AccessLog {
  bool enabled = true;
  AccessLogFormat format = AccessLogFormat::kText;
};

// --- TLS (extension, README "TLS") -------------------------------------------------------------

enum class TlsVersion { k12, k13 };

// Mozilla's "intermediate" TLS 1.2 suites (forward secrecy, AEAD only); TLS 1.3 uses OpenSSL's
// default suites.
inline constexpr const char* kDefaultCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
inline constexpr const char* kDefaultCiphersuites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

// A certificate chain and its key, PEM files. names: the DNS names it serves (subjectAltName
// dNSName entries, else its CN), read from the certificate by the loader.
struct TlsCertificate {
  std::string cert_file;
  std::string key_file;
  std::vector<std::string> names;
};

enum class ClientCertificate { kNone, kOptional, kRequired };

struct ListenerTls {
  std::vector<TlsCertificate> certificates;  // chosen by SNI; the first is the default
  TlsVersion min_version = TlsVersion::k12;
  std::string ciphers = kDefaultCiphers;            // TLS 1.2
  std::string ciphersuites = kDefaultCiphersuites;  // TLS 1.3
  bool session_tickets = true;
  std::string client_ca_file;  // mutual TLS: CAs client certificates must chain to
  ClientCertificate client_certificate = ClientCertificate::kNone;
};

struct ClusterTls {
  bool enabled = false;
  std::string sni;  // server name sent and verified; empty: the endpoint's host
  bool verify = true;
  std::string ca_file;    // empty: the system's trust store
  std::string cert_file;  // client certificate (mutual TLS to the endpoint)
  std::string key_file;
  TlsVersion min_version = TlsVersion::k12;
};

struct Limits {
  uint32_t max_connections = 10000;
  uint32_t max_request_header_bytes = 16384;
  uint64_t max_request_body_bytes = 0;  // 0 = unlimited (streamed)
  Duration header_timeout = 10s;
  Duration idle_timeout = 60s;
  // Extension (HTTP/2): streams a client may have open at once on one connection
  // (SETTINGS_MAX_CONCURRENT_STREAMS).
  uint32_t max_concurrent_streams = 100;
  // Extension: after a head that announces a body, its first byte must come within this; no
  // upstream request is made (no endpoint, no cluster slot) until it does (HAProxy's
  // `timeout http-request`, Envoy's request_headers_timeout for the body's start).
  Duration request_body_timeout = 10s;
  // Extension (HTTP/2): requests of one client connection that may be with endpoints at once;
  // further streams wait, in order, for one of them to end (HTTP/1.1 has one at a time).
  uint32_t max_requests_in_flight = 100;
};

// Extension: the protocols a listener speaks (listeners[].protocols).
enum class ListenerProtocol { kHttp1, kH2 };
// Extension: the protocol spoken to a cluster's endpoints (clusters[].protocol).
enum class UpstreamProtocol { kHttp1, kH2c, kH2 };
// As written in YAML.
const char* to_string(ListenerProtocol p);
const char* to_string(UpstreamProtocol p);

enum class CrossRegion { kAllow, kFailoverOnly, kDeny };
// As written in YAML: "allow", "failover_only", "deny".
const char* to_string(CrossRegion c);

enum class RetryOn : uint32_t {
  kConnectFailure = 1u << 0,
  kReset = 1u << 1,
  kTimeout = 1u << 2,
};

struct Retries {
  uint32_t attempts = 1;  // retries after the first try
  uint32_t on_mask = static_cast<uint32_t>(RetryOn::kConnectFailure);
  std::vector<uint16_t> on_status;  // e.g. 503
  // Extension: a request body up to this size is kept so that the request can be replayed;
  // a request with a larger body is retried only if it failed before its body was read.
  uint32_t max_body_bytes = 64 * 1024;
  // Extension: retry (and replay) methods that are not idempotent (POST, PATCH...) too, as if
  // they were; off by default (RFC 9110 §9.2.2).
  bool non_idempotent = false;
};

// Extension: hedged requests (README, "Hedged requests"). A request that may be sent twice
// (an idempotent method, no body, no upgrade) gets one backup try on another endpoint when the
// first has not answered within the delay; the first answer wins and the other try is
// cancelled. The delay is fixed, or the cluster's observed percentile of the time to the
// response head (at least min_delay).
struct Hedge {
  Duration delay = 0ms;      // fixed delay (percentile == 0)
  double percentile = 0;     // e.g. 95 for `delay: p95`
  Duration min_delay = 1ms;  // floor of a percentile delay
};

struct Route {
  std::optional<std::string> host;  // lower-cased; "*.example.com" matches subdomains
  std::optional<std::string> path_prefix;
  std::string cluster;
  size_t cluster_index = 0;  // resolved by the loader
  Duration timeout = 15s;
  Retries retries;
  CrossRegion cross_region = CrossRegion::kAllow;
  std::optional<Hedge> hedge;  // absent: no hedging
  // TLS listeners with client certificates: the route matches only a verified client whose
  // certificate has this URI SAN (exact, or a prefix when it ends in '*').
  std::optional<std::string> client_san;
};

struct RegionMapEntry {
  std::string cidr_text;
  Cidr cidr;
  std::string region;
};

struct Listener {
  std::string name;
  std::string listen_text;
  SocketAddress listen;
  std::string local_region;
  std::string local_zone;  // extension: the zone of clients whose zone is not otherwise known
  bool debug_headers = false;
  std::vector<Cidr> trusted_proxies;  // default: none (no peer's forwarding headers believed)
  std::vector<RegionMapEntry> region_map;
  Limits limits;
  // Extension: the Upgrade protocols tunnelled after a 101 (case-insensitive); h2c never is.
  std::vector<std::string> upgrade_protocols{"websocket"};
  std::vector<Route> routes;
  std::optional<ListenerTls> tls;  // absent: plaintext
  // Resolved by the loader: [http1] on plaintext, [h2, http1] on TLS unless listed. h2 on a
  // plaintext listener is h2c with prior knowledge.
  std::vector<ListenerProtocol> protocols;
  bool speaks(ListenerProtocol p) const {
    for (auto q : protocols) {
      if (q == p) return true;
    }
    return false;
  }
};

enum class HashKeySource { kHeader, kCookie, kQuery, kPath, kClientIp };

// Where a request's hash key comes from (`hash.key`: header:NAME | cookie:NAME | query:NAME |
// path | client_ip). A value type the hashing policies' block holds and routing reads.
struct HashKey {
  HashKeySource source = HashKeySource::kClientIp;
  std::string name;  // header, cookie or query parameter name
  // As written in YAML: "header:X-User-Id", "path", "client_ip".
  std::string to_string() const;
};

// A cluster block that a load-balancing policy defines and reads itself (`resource_aware:`,
// `hash:`; config/schema.h). The config layer stores it without knowing its type; the policy
// that registered the block gets it back with Cluster::block_as.
// Where a block describes its effective settings (GET /admin/config): one call per key, in
// YAML's units (durations as text such as "10s"), secrets left out by the block itself.
class BlockFields {
 public:
  virtual ~BlockFields() = default;
  virtual void text(std::string_view key, std::string_view value) = 0;
  virtual void number(std::string_view key, double value) = 0;
};

// A cluster block a policy defines and reads itself (hash:, resource_aware:).
class Block {
 public:
  virtual ~Block() = default;
  virtual void describe(BlockFields&) const {}
};

enum class Fallback { kNearest, kAny, kNone };

struct Locality {
  std::string client_region_header = "X-Client-Region";
  // Extension: the client's zone, from this header (trusted peers only), else the listener's
  // local_zone; empty = no zone preference.
  std::string client_zone_header;
  double min_healthy_fraction = 0.5;
  Fallback fallback = Fallback::kNearest;
  // Extension: predictive failover (README, "Predictive geographic routing"). `predictive:
  // true`, or a map of these (a map turns it on unless `enabled: false`).
  struct Prediction {
    bool enabled = false;
    Duration horizon = std::chrono::seconds(2);  // how far ahead a trend is extrapolated
    double latency_ratio = 3;  // predicted latency / baseline at which an endpoint counts as failed
    double error_rate = 0.5;   // error share at which an endpoint counts as failed
    Duration recovery = std::chrono::seconds(10);  // a predicted spill falls to 0 over this
  } predictive;
};

struct StatusRange {
  uint16_t low = 200;
  uint16_t high = 299;
};

enum class HealthProtocol { kHttp, kGrpc };

struct HealthCheck {
  // Extension: grpc speaks grpc.health.v1.Health/Check (over the cluster's h2c or h2).
  HealthProtocol protocol = HealthProtocol::kHttp;
  std::string service;  // grpc: the service name asked about ("" = the server as a whole)
  std::string path = "/healthz";
  Duration interval = 2s;
  Duration timeout = 1s;
  uint32_t healthy_threshold = 2;
  uint32_t unhealthy_threshold = 3;
  std::vector<StatusRange> expect_status{StatusRange{}};
  // Extension (HAProxy's `observe layer4` + `on-error mark-down`): this many requests in a row
  // whose connect to the endpoint failed mark it unhealthy at once, as failed checks would;
  // the checks bring it back (healthy_threshold passes). 0 = off.
  uint32_t passive_connect_failures = 3;
};

// Extension: outlier detection by rates (Envoy's success_rate and failure_percentage
// detectors), evaluated every CircuitBreaker::interval over the outcomes of that interval.
struct SuccessRateEjection {
  uint32_t minimum_hosts = 3;     // endpoints with enough requests for the statistics
  uint32_t request_volume = 100;  // requests an endpoint needs in the interval to count
  double stdev_factor = 1.9;      // ejected below mean - stdev_factor x stdev
};
struct FailurePercentageEjection {
  double threshold = 85;  // percent of failed requests that ejects
  uint32_t minimum_hosts = 3;
  uint32_t request_volume = 50;
};

struct CircuitBreaker {
  uint32_t consecutive_failures = 5;
  Duration base_ejection = 30s;
  Duration max_ejection = 300s;
  double max_ejected_fraction = 0.5;
  uint32_t max_pending_requests = 1024;
  // Extensions (README, "Outlier detection by rates"): absent = that detector is off.
  std::optional<SuccessRateEjection> success_rate;
  std::optional<FailurePercentageEjection> failure_percentage;
  Duration interval = 10s;  // how often the rate detectors look
  // true: failures of local origin (connect failure, reset, timeout) are counted apart from
  // the endpoint's own 5xx answers: consecutive_local_failures ejects on a run of them, and
  // the rate detectors judge each kind on its own (Envoy's split_external_local_origin_errors).
  bool split_local_origin = false;
  uint32_t consecutive_local_failures = 5;
};

// Extension: slow start (Envoy's slow_start_config): an endpoint that enters service (added
// by a reload or discovery, or back from an ejection or failed checks) gets a share that
// ramps from min_weight_percent to its full weight over window: factor =
// max(min_weight_percent / 100, (t / window)^(1 / aggression)).
struct SlowStart {
  Duration window = 30s;
  double aggression = 1.0;
  double min_weight_percent = 10;
};

struct Upstream {
  Duration connect_timeout = 1s;
  Duration idle_timeout = 60s;
  uint32_t max_idle_per_endpoint = 64;
};

struct Endpoint {
  std::string address_text;
  SocketAddress address;
  std::string region;
  std::string zone;
  uint32_t weight = 1;
  // Extension: the priority level (0 first). Traffic goes to the lowest level that has a
  // usable endpoint (README, "Priority levels"); SRV records' priority lands here.
  uint16_t priority = 0;
  std::optional<double> cpu_usage;  // metadata, static until reports arrive
  std::optional<double> memory_usage;

  // Everything a balancer sees of it (discovery applies a set only when this differs).
  bool operator==(const Endpoint& o) const {
    return address_text == o.address_text && address == o.address && region == o.region &&
           zone == o.zone && weight == o.weight && priority == o.priority &&
           cpu_usage == o.cpu_usage && memory_usage == o.memory_usage;
  }
};

// Extension: endpoints that come and go (README, "Service discovery"). A cluster's endpoints
// are its static `endpoints` plus the last good set of its one discovery source; a source
// that fails keeps its last good set.
enum class DnsRecord : uint8_t { kA, kAaaa, kAny, kSrv };  // kAny: A and AAAA
struct DnsDiscovery {
  std::string name;   // the name looked up (an SRV name like _http._tcp.api.example)
  uint16_t port = 0;  // A / AAAA: required; SRV: the records' own ports
  DnsRecord type = DnsRecord::kA;
  Duration refresh = 30s;     // the longest between lookups (a shorter TTL looks sooner)
  Duration min_refresh = 1s;  // the shortest (a TTL of 0 does not spin)
  Duration timeout = 2s;      // one lookup, all tries
  std::vector<std::string> resolvers_text;  // "IP:PORT" or "IP" (53); empty = the system's
  std::string region;                       // given to every endpoint found (empty: none)
  std::string zone;
};
struct FileDiscovery {
  std::string path;  // YAML or JSON: a list of endpoints, or { endpoints: [...] }
};
struct KubernetesDiscovery {
  std::string service;     // the Service whose EndpointSlices are read
  std::string namespace_;  // empty: the pod's own (its service account's), else "default"
  std::string port;        // the EndpointSlice port by name, or a number; empty: the first
  std::string api_server;  // empty: https://$KUBERNETES_SERVICE_HOST:$..._PORT
  std::string token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::string ca_file = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
  bool verify = true;  // the API server's certificate against ca_file
  // An endpoint's region: its zone without the zone letter ("us-east-1a" -> "us-east-1",
  // "europe-west1-b" -> "europe-west1"), else this.
  std::string region;
  // Connect and list; a watch may stay silent for its 60 s plus this.
  Duration timeout = 10s;
};
struct Discovery {
  std::optional<DnsDiscovery> dns;
  std::optional<FileDiscovery> file;
  std::optional<KubernetesDiscovery> kubernetes;
  bool any() const { return dns || file || kubernetes; }
  const char* kind() const { return dns ? "dns" : file ? "file" : kubernetes ? "kubernetes" : ""; }
};

struct Cluster {
  std::string name;
  std::string strategy = "round_robin";  // a policy registered by name (balancer/policy.h)
  // The policy blocks of the schema, in its order (every registered block is present: an
  // absent one holds its defaults).
  std::vector<std::pair<std::string, std::shared_ptr<const Block>>> blocks;
  std::optional<Locality> locality;         // absent = geographic layer off
  std::optional<HealthCheck> health_check;  // absent = no active checks
  CircuitBreaker circuit_breaker;
  std::optional<SlowStart> slow_start;  // absent = off
  // Extension: below this percentage of usable endpoints the cluster is in panic and balances
  // over all its endpoints, usable or not (Envoy's healthy_panic_threshold). 0 = never.
  double panic_threshold = 0;
  Upstream upstream;
  ClusterTls tls;
  UpstreamProtocol protocol = UpstreamProtocol::kHttp1;
  std::vector<Endpoint> endpoints;
  Discovery discovery;  // extension: absent = the static endpoints only

  // The block registered under key, or nullptr.
  const Block* block(std::string_view key) const {
    for (const auto& [k, b] : blocks) {
      if (k == key) return b.get();
    }
    return nullptr;
  }
  // The block registered under key as the type its reader made (the caller is that reader's
  // policy, so the type is known; no check is needed or made).
  template <typename T>
  const T& block_as(std::string_view key) const {
    return static_cast<const T&>(*block(key));
  }
};

struct Config {
  std::string source_path;
  uint32_t workers = 0;  // resolved: 0 -> hardware threads, by the loader
  Duration drain_timeout = 15s;
  Admin admin;
  AccessLog access_log;
  std::vector<Listener> listeners;
  std::vector<Cluster> clusters;
};

}  // namespace switchyard::config
