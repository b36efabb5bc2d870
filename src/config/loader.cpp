#include "switchyard/config/loader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace switchyard::config {

std::string Diagnostic::to_string() const {
  std::ostringstream out;
  out << file << ':' << line << ':' << column << ": " << (path.empty() ? "(root)" : path) << ": "
      << message;
  return out.str();
}

const char* to_string(Strategy s) {
  switch (s) {
    case Strategy::kRoundRobin:
      return "round_robin";
    case Strategy::kLeastRequest:
      return "least_request";
    case Strategy::kRandom:
      return "random";
    case Strategy::kResourceAware:
      return "resource_aware";
    case Strategy::kConsistentHash:
      return "consistent_hash";
    case Strategy::kMaglev:
      return "maglev";
  }
  return "?";
}

namespace {

// Limits that are not in the contract but keep one typo from exhausting memory.
constexpr uint32_t kMaxWeight = 10000;
constexpr uint64_t kMaxRingPoints = 10'000'000;

// Collects diagnostics while the typed readers below walk the YAML tree. Every reader takes the
// key path it reports under, so errors come out as `FILE:LINE:COL: key.path: message`.
class Loader {
 public:
  explicit Loader(std::string file) : file_(std::move(file)) {}

  std::vector<Diagnostic>& errors() { return errors_; }

  void error(const YAML::Mark& mark, const std::string& path, std::string message) {
    Diagnostic d;
    d.file = file_;
    // yaml-cpp marks are 0-based; a missing mark (-1) still prints as 1:1.
    d.line = mark.line >= 0 ? mark.line + 1 : 1;
    d.column = mark.column >= 0 ? mark.column + 1 : 1;
    d.path = path;
    d.message = std::move(message);
    errors_.push_back(std::move(d));
  }
  void error(const YAML::Node& node, const std::string& path, std::string message) {
    error(node.Mark(), path, std::move(message));
  }

  // --- scalar readers: each returns false (and reports) when the node is not acceptable ---

  bool scalar(const YAML::Node& node, const std::string& path, std::string* out) {
    if (!node.IsScalar()) {
      error(node, path, "expected a string");
      return false;
    }
    *out = node.Scalar();
    return true;
  }

  bool boolean(const YAML::Node& node, const std::string& path, bool* out) {
    std::string s;
    if (node.IsScalar()) s = node.Scalar();
    if (s == "true") {
      *out = true;
    } else if (s == "false") {
      *out = false;
    } else {
      error(node, path, "expected true or false");
      return false;
    }
    return true;
  }

  template <typename Int>
  bool integer(const YAML::Node& node, const std::string& path, Int* out, Int min, Int max) {
    std::string s;
    if (node.IsScalar()) s = node.Scalar();
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || value < uint64_t(min) ||
        value > uint64_t(max)) {
      error(node, path,
            "expected a whole number from " + std::to_string(min) + " to " + std::to_string(max));
      return false;
    }
    *out = static_cast<Int>(value);
    return true;
  }

  bool number(const YAML::Node& node, const std::string& path, double* out, double min,
              double max) {
    std::string s;
    if (node.IsScalar()) s = node.Scalar();
    double value = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || !std::isfinite(value) ||
        value < min || value > max) {
      std::ostringstream msg;
      msg << "expected a number from " << min << " to " << max;
      error(node, path, msg.str());
      return false;
    }
    *out = value;
    return true;
  }

  bool duration(const YAML::Node& node, const std::string& path, Duration* out,
                bool allow_zero = false) {
    std::optional<Duration> d;
    if (node.IsScalar()) d = parse_duration(node.Scalar());
    if (!d) {
      error(node, path, "expected a duration with a unit, like 250ms, 2s or 1m");
      return false;
    }
    if (!allow_zero && d->count() == 0) {
      error(node, path, "must be greater than 0");
      return false;
    }
    *out = *d;
    return true;
  }

  bool address(const YAML::Node& node, const std::string& path, bool allow_port_zero,
               std::string* text, SocketAddress* out) {
    if (!scalar(node, path, text)) return false;
    std::string why;
    auto addr = parse_host_port(*text, allow_port_zero, &why);
    if (!addr) {
      error(node, path, "invalid address '" + *text + "': " + why);
      return false;
    }
    *out = *addr;
    return true;
  }

  bool cidr(const YAML::Node& node, const std::string& path, Cidr* out) {
    std::string s;
    if (!scalar(node, path, &s)) return false;
    auto c = Cidr::parse(s);
    if (!c) {
      error(node, path, "invalid CIDR '" + s + "' (expected like 10.0.0.0/8 or ::1/128)");
      return false;
    }
    *out = *c;
    return true;
  }

  template <typename Enum>
  bool choice(const YAML::Node& node, const std::string& path, Enum* out,
              std::initializer_list<std::pair<const char*, Enum>> options) {
    std::string s;
    if (node.IsScalar()) s = node.Scalar();
    for (const auto& [name, value] : options) {
      if (s == name) {
        *out = value;
        return true;
      }
    }
    std::string list;
    for (const auto& option : options)
      list += std::string(list.empty() ? "" : " | ") + option.first;
    error(node, path, "expected one of " + list);
    return false;
  }

 private:
  std::string file_;
  std::vector<Diagnostic> errors_;
};

// A mapping being read: rejects unknown and duplicate keys on construction, then hands out
// values by key. A null node (an absent block) reads as an empty mapping.
class MapView {
 public:
  MapView(Loader& loader, const YAML::Node& node, std::string path,
          std::initializer_list<const char*> allowed)
      : loader_(loader), node_(node), path_(std::move(path)) {
    if (!node.IsDefined() || node.IsNull()) return;
    if (!node.IsMap()) {
      loader.error(node, path_, "expected a mapping");
      valid_ = false;
      return;
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
      YAML::Node key = it->first;  // a copy: yaml-cpp's operator-> returns a temporary
      std::string name = key.IsScalar() ? key.Scalar() : "";
      bool known =
          std::any_of(allowed.begin(), allowed.end(), [&](const char* a) { return name == a; });
      if (!known) {
        loader.error(key, child(name), "unknown key '" + name + "'");
        continue;
      }
      if (std::any_of(fields_.begin(), fields_.end(),
                      [&](const auto& f) { return f.first == name; })) {
        loader.error(key, child(name), "duplicate key '" + name + "'");
        continue;
      }
      fields_.emplace_back(name, it->second);
    }
  }

  bool valid() const { return valid_; }
  const YAML::Node& node() const { return node_; }
  std::string child(const std::string& key) const {
    return path_.empty() ? key : path_ + "." + key;
  }

  // The value under key, or an undefined node.
  YAML::Node get(const char* key) const {
    for (const auto& [name, value] : fields_) {
      if (name == key) return value;
    }
    return YAML::Node(YAML::NodeType::Undefined);
  }
  bool has(const char* key) const { return get(key).IsDefined(); }

  YAML::Node required(const char* key) {
    YAML::Node value = get(key);
    if (!value.IsDefined() && valid_) {
      loader_.error(node_, child(key), "required key is missing");
    }
    return value;
  }

 private:
  Loader& loader_;
  YAML::Node node_;
  std::string path_;
  bool valid_ = true;
  std::vector<std::pair<std::string, YAML::Node>> fields_;
};

std::string indexed(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

// Returns the items of a sequence (reporting anything else); empty for an absent node.
std::vector<YAML::Node> sequence(Loader& loader, const YAML::Node& node, const std::string& path) {
  std::vector<YAML::Node> items;
  if (!node.IsDefined() || node.IsNull()) return items;
  if (!node.IsSequence()) {
    loader.error(node, path, "expected a list");
    return items;
  }
  for (const auto& item : node) items.push_back(item);
  return items;
}

bool valid_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

void read_admin(Loader& l, const YAML::Node& node, Admin* out) {
  MapView m(l, node, "admin", {"listen"});
  if (auto v = m.get("listen"); v.IsDefined()) {
    l.address(v, m.child("listen"), true, &out->listen_text, &out->listen);
  } else {
    std::string why;
    out->listen = *parse_host_port(out->listen_text, false, &why);
  }
}

void read_access_log(Loader& l, const YAML::Node& node, AccessLog* out) {
  MapView m(l, node, "access_log", {"enabled", "format"});
  if (auto v = m.get("enabled"); v.IsDefined()) l.boolean(v, m.child("enabled"), &out->enabled);
  if (auto v = m.get("format"); v.IsDefined()) {
    l.choice(v, m.child("format"), &out->format,
             {{"text", AccessLogFormat::kText}, {"json", AccessLogFormat::kJson}});
  }
}

void read_limits(Loader& l, const YAML::Node& node, const std::string& path, Limits* out) {
  MapView m(l, node, path,
            {"max_connections", "max_request_header_bytes", "max_request_body_bytes",
             "header_timeout", "idle_timeout"});
  if (auto v = m.get("max_connections"); v.IsDefined()) {
    l.integer<uint32_t>(v, m.child("max_connections"), &out->max_connections, 1, 1'000'000);
  }
  if (auto v = m.get("max_request_header_bytes"); v.IsDefined()) {
    l.integer<uint32_t>(v, m.child("max_request_header_bytes"), &out->max_request_header_bytes,
                        1024, 1 << 20);
  }
  if (auto v = m.get("max_request_body_bytes"); v.IsDefined()) {
    l.integer<uint64_t>(v, m.child("max_request_body_bytes"), &out->max_request_body_bytes, 0,
                        uint64_t(1) << 50);
  }
  if (auto v = m.get("header_timeout"); v.IsDefined()) {
    l.duration(v, m.child("header_timeout"), &out->header_timeout);
  }
  if (auto v = m.get("idle_timeout"); v.IsDefined()) {
    l.duration(v, m.child("idle_timeout"), &out->idle_timeout);
  }
}

void read_retries(Loader& l, const YAML::Node& node, const std::string& path, Retries* out) {
  MapView m(l, node, path, {"attempts", "on", "max_body_bytes", "non_idempotent"});
  if (auto v = m.get("non_idempotent"); v.IsDefined()) {
    l.boolean(v, m.child("non_idempotent"), &out->non_idempotent);
  }
  if (auto v = m.get("attempts"); v.IsDefined()) {
    l.integer<uint32_t>(v, m.child("attempts"), &out->attempts, 0, 10);
  }
  if (auto v = m.get("max_body_bytes"); v.IsDefined()) {
    l.integer<uint32_t>(v, m.child("max_body_bytes"), &out->max_body_bytes, 0, 16u << 20);
  }
  if (auto v = m.get("on"); v.IsDefined()) {
    out->on_mask = 0;
    auto items = sequence(l, v, m.child("on"));
    for (size_t i = 0; i < items.size(); ++i) {
      std::string p = indexed(m.child("on"), i);
      std::string s;
      if (!l.scalar(items[i], p, &s)) continue;
      if (s == "connect_failure") {
        out->on_mask |= static_cast<uint32_t>(RetryOn::kConnectFailure);
      } else if (s == "reset") {
        out->on_mask |= static_cast<uint32_t>(RetryOn::kReset);
      } else if (s == "timeout") {
        out->on_mask |= static_cast<uint32_t>(RetryOn::kTimeout);
      } else {
        uint16_t code = 0;
        if (l.integer<uint16_t>(items[i], p, &code, 100, 599)) out->on_status.push_back(code);
      }
    }
  }
}

void read_route(Loader& l, const YAML::Node& node, const std::string& path,
                const std::vector<Cluster>& clusters, Route* out) {
  MapView m(l, node, path, {"match", "cluster", "timeout", "retries", "cross_region"});
  if (!m.valid()) return;
  if (auto v = m.get("match"); v.IsDefined()) {
    MapView match(l, v, m.child("match"), {"host", "path_prefix"});
    if (auto h = match.get("host"); h.IsDefined()) {
      std::string host;
      if (l.scalar(h, match.child("host"), &host)) {
        std::transform(host.begin(), host.end(), host.begin(),
                       [](unsigned char c) { return std::tolower(c); });
        if (host.empty() || host.find_first_of(" /\t") != std::string::npos) {
          l.error(h, match.child("host"), "invalid host '" + host + "'");
        }
        out->host = host;
      }
    }
    if (auto p = match.get("path_prefix"); p.IsDefined()) {
      std::string prefix;
      if (l.scalar(p, match.child("path_prefix"), &prefix)) {
        if (prefix.empty() || prefix[0] != '/') {
          l.error(p, match.child("path_prefix"), "must start with '/'");
        }
        out->path_prefix = prefix;
      }
    }
  }
  if (auto v = m.required("cluster"); v.IsDefined()) {
    if (l.scalar(v, m.child("cluster"), &out->cluster)) {
      auto it = std::find_if(clusters.begin(), clusters.end(),
                             [&](const Cluster& c) { return c.name == out->cluster; });
      if (it == clusters.end()) {
        l.error(v, m.child("cluster"), "no cluster named '" + out->cluster + "'");
      } else {
        out->cluster_index = static_cast<size_t>(it - clusters.begin());
      }
    }
  }
  if (auto v = m.get("timeout"); v.IsDefined()) l.duration(v, m.child("timeout"), &out->timeout);
  if (auto v = m.get("retries"); v.IsDefined()) {
    read_retries(l, v, m.child("retries"), &out->retries);
  }
  if (auto v = m.get("cross_region"); v.IsDefined()) {
    l.choice(v, m.child("cross_region"), &out->cross_region,
             {{"allow", CrossRegion::kAllow},
              {"failover_only", CrossRegion::kFailoverOnly},
              {"deny", CrossRegion::kDeny}});
  }
}

void read_listener(Loader& l, const YAML::Node& node, const std::string& path,
                   const std::vector<Cluster>& clusters, Listener* out) {
  MapView m(l, node, path,
            {"name", "listen", "local_region", "local_zone", "debug_headers", "trusted_proxies",
             "region_map", "limits", "upgrade_protocols", "routes"});
  if (!m.valid()) return;
  if (auto v = m.required("name"); v.IsDefined()) {
    if (l.scalar(v, m.child("name"), &out->name) && out->name.empty()) {
      l.error(v, m.child("name"), "must not be empty");
    }
  }
  if (auto v = m.required("listen"); v.IsDefined()) {
    l.address(v, m.child("listen"), true, &out->listen_text, &out->listen);
  }
  if (auto v = m.get("local_zone"); v.IsDefined()) {
    l.scalar(v, m.child("local_zone"), &out->local_zone);
  }
  if (auto v = m.get("local_region"); v.IsDefined()) {
    l.scalar(v, m.child("local_region"), &out->local_region);
  }
  if (auto v = m.get("debug_headers"); v.IsDefined()) {
    l.boolean(v, m.child("debug_headers"), &out->debug_headers);
  }
  if (auto v = m.get("trusted_proxies"); v.IsDefined()) {
    auto items = sequence(l, v, m.child("trusted_proxies"));
    for (size_t i = 0; i < items.size(); ++i) {
      Cidr c;
      if (l.cidr(items[i], indexed(m.child("trusted_proxies"), i), &c)) {
        out->trusted_proxies.push_back(c);
      }
    }
  }
  if (auto v = m.get("region_map"); v.IsDefined()) {
    if (!v.IsMap() && !v.IsNull()) {
      l.error(v, m.child("region_map"), "expected a mapping of CIDR to region");
    } else if (v.IsMap()) {
      for (auto it = v.begin(); it != v.end(); ++it) {
        RegionMapEntry entry;
        std::string p = m.child("region_map");
        if (!l.cidr(it->first, p, &entry.cidr)) continue;
        entry.cidr_text = it->first.Scalar();
        p += "." + entry.cidr_text;
        if (l.scalar(it->second, p, &entry.region) && entry.region.empty()) {
          l.error(it->second, p, "region must not be empty");
        }
        out->region_map.push_back(std::move(entry));
      }
    }
  }
  read_limits(l, m.get("limits"), m.child("limits"), &out->limits);
  if (auto v = m.get("upgrade_protocols"); v.IsDefined()) {
    out->upgrade_protocols.clear();
    auto items = sequence(l, v, m.child("upgrade_protocols"));
    for (size_t i = 0; i < items.size(); ++i) {
      std::string p = indexed(m.child("upgrade_protocols"), i);
      std::string s;
      if (!l.scalar(items[i], p, &s)) continue;
      std::string lower = s;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      if (!valid_token(s)) {
        l.error(items[i], p, "expected a protocol name, like websocket");
      } else if (lower == "h2c") {
        l.error(items[i], p, "h2c is never tunnelled (it would bypass routing and limits)");
      } else {
        out->upgrade_protocols.push_back(s);
      }
    }
  }
  auto routes_node = m.required("routes");
  if (routes_node.IsDefined()) {
    auto items = sequence(l, routes_node, m.child("routes"));
    if (items.empty() && (routes_node.IsSequence() || routes_node.IsNull())) {
      l.error(routes_node, m.child("routes"), "must list at least one route");
    }
    for (size_t i = 0; i < items.size(); ++i) {
      Route route;
      read_route(l, items[i], indexed(m.child("routes"), i), clusters, &route);
      out->routes.push_back(std::move(route));
    }
  }
}

void read_hash_key(Loader& l, const YAML::Node& node, const std::string& path, HashKey* out) {
  std::string s;
  if (!l.scalar(node, path, &s)) return;
  if (s == "path") {
    out->source = HashKeySource::kPath;
    return;
  }
  if (s == "client_ip") {
    out->source = HashKeySource::kClientIp;
    return;
  }
  auto colon = s.find(':');
  std::string kind = s.substr(0, colon);
  std::string name = colon == std::string::npos ? "" : s.substr(colon + 1);
  if (kind == "header") {
    out->source = HashKeySource::kHeader;
  } else if (kind == "cookie") {
    out->source = HashKeySource::kCookie;
  } else if (kind == "query") {
    out->source = HashKeySource::kQuery;
  } else {
    l.error(node, path, "expected header:NAME | cookie:NAME | query:NAME | path | client_ip");
    return;
  }
  if (colon == std::string::npos || !valid_token(name)) {
    l.error(node, path, "'" + kind + ":' needs a name, like " + kind + ":X-User-Id");
    return;
  }
  out->name = name;
}

void read_expect_status(Loader& l, const YAML::Node& node, const std::string& path,
                        std::vector<StatusRange>* out) {
  std::string s;
  if (!l.scalar(node, path, &s)) return;
  std::vector<StatusRange> ranges;
  std::stringstream items(s);
  std::string item;
  bool ok = !s.empty();
  while (ok && std::getline(items, item, ',')) {
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    auto dash = item.find('-');
    auto parse = [](std::string_view t, uint16_t* v) {
      auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), *v);
      return !t.empty() && ec == std::errc{} && end == t.data() + t.size() && *v >= 100 &&
             *v <= 599;
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
    l.error(node, path, "expected status codes or ranges from 100 to 599, like \"200-299\"");
    return;
  }
  *out = std::move(ranges);
}

void read_endpoint(Loader& l, const YAML::Node& node, const std::string& path, Endpoint* out) {
  MapView m(l, node, path, {"address", "region", "zone", "weight", "metadata"});
  if (!m.valid()) return;
  if (auto v = m.required("address"); v.IsDefined()) {
    l.address(v, m.child("address"), false, &out->address_text, &out->address);
  }
  if (auto v = m.get("region"); v.IsDefined()) l.scalar(v, m.child("region"), &out->region);
  if (auto v = m.get("zone"); v.IsDefined()) l.scalar(v, m.child("zone"), &out->zone);
  if (auto v = m.get("weight"); v.IsDefined()) {
    l.integer<uint32_t>(v, m.child("weight"), &out->weight, 1, kMaxWeight);
  }
  MapView meta(l, m.get("metadata"), m.child("metadata"), {"cpu_usage", "memory_usage"});
  if (auto v = meta.get("cpu_usage"); v.IsDefined()) {
    double d = 0;
    if (l.number(v, meta.child("cpu_usage"), &d, 0, 1)) out->cpu_usage = d;
  }
  if (auto v = meta.get("memory_usage"); v.IsDefined()) {
    double d = 0;
    if (l.number(v, meta.child("memory_usage"), &d, 0, 1)) out->memory_usage = d;
  }
}

void read_cluster(Loader& l, const YAML::Node& node, const std::string& path, Cluster* out) {
  MapView m(l, node, path,
            {"name", "strategy", "resource_aware", "hash", "locality", "health_check",
             "circuit_breaker", "upstream", "endpoints"});
  if (!m.valid()) return;
  if (auto v = m.required("name"); v.IsDefined()) {
    if (l.scalar(v, m.child("name"), &out->name) && out->name.empty()) {
      l.error(v, m.child("name"), "must not be empty");
    }
  }
  if (auto v = m.get("strategy"); v.IsDefined()) {
    l.choice(v, m.child("strategy"), &out->strategy,
             {{"round_robin", Strategy::kRoundRobin},
              {"least_request", Strategy::kLeastRequest},
              {"random", Strategy::kRandom},
              {"resource_aware", Strategy::kResourceAware},
              {"consistent_hash", Strategy::kConsistentHash},
              {"maglev", Strategy::kMaglev}});
  }
  {
    MapView ra(l, m.get("resource_aware"), m.child("resource_aware"),
               {"cpu_weight", "memory_weight", "connection_weight", "connection_capacity",
                "max_report_age"});
    auto& r = out->resource_aware;
    if (auto v = ra.get("cpu_weight"); v.IsDefined()) {
      l.number(v, ra.child("cpu_weight"), &r.cpu_weight, 0, 1000);
    }
    if (auto v = ra.get("memory_weight"); v.IsDefined()) {
      l.number(v, ra.child("memory_weight"), &r.memory_weight, 0, 1000);
    }
    if (auto v = ra.get("connection_weight"); v.IsDefined()) {
      l.number(v, ra.child("connection_weight"), &r.connection_weight, 0, 1000);
    }
    if (ra.node().IsMap() && r.cpu_weight + r.memory_weight + r.connection_weight <= 0) {
      l.error(ra.node(), ra.child("cpu_weight"), "the three weights must not all be 0");
    }
    if (auto v = ra.get("connection_capacity"); v.IsDefined()) {
      l.integer<uint32_t>(v, ra.child("connection_capacity"), &r.connection_capacity, 1,
                          10'000'000);
    }
    if (auto v = ra.get("max_report_age"); v.IsDefined()) {
      if (l.duration(v, ra.child("max_report_age"), &r.max_report_age) &&
          r.max_report_age < std::chrono::milliseconds(100)) {
        l.error(v, ra.child("max_report_age"), "must be at least 100ms");
      }
    }
  }
  {
    MapView h(l, m.get("hash"), m.child("hash"),
              {"key", "virtual_nodes", "ring_probes", "seed", "bounded_load", "on_missing_key"});
    auto& hash = out->hash;
    if (auto v = h.get("key"); v.IsDefined()) read_hash_key(l, v, h.child("key"), &hash.key);
    if (auto v = h.get("virtual_nodes"); v.IsDefined()) {
      l.integer<uint32_t>(v, h.child("virtual_nodes"), &hash.virtual_nodes, 1, 10000);
    }
    if (auto v = h.get("ring_probes"); v.IsDefined()) {
      l.integer<uint32_t>(v, h.child("ring_probes"), &hash.ring_probes, 1, 64);
    }
    if (auto v = h.get("seed"); v.IsDefined()) l.scalar(v, h.child("seed"), &hash.seed);
    if (auto v = h.get("bounded_load"); v.IsDefined()) {
      if (l.number(v, h.child("bounded_load"), &hash.bounded_load, 0, 100) &&
          hash.bounded_load != 0 && hash.bounded_load < 1) {
        l.error(v, h.child("bounded_load"), "must be 0 (off) or at least 1.0");
      }
    }
    if (auto v = h.get("on_missing_key"); v.IsDefined()) {
      l.choice(v, h.child("on_missing_key"), &hash.on_missing_key,
               {{"random", OnMissingKey::kRandom}, {"reject", OnMissingKey::kReject}});
    }
  }
  if (auto v = m.get("locality"); v.IsDefined()) {
    Locality loc;
    MapView lm(l, v, m.child("locality"),
               {"client_region", "client_zone", "min_healthy_fraction", "fallback"});
    for (auto [key, out_header] : {std::pair{"client_region", &loc.client_region_header},
                                   std::pair{"client_zone", &loc.client_zone_header}}) {
      auto c = lm.get(key);
      if (!c.IsDefined()) continue;
      std::string s;
      if (l.scalar(c, lm.child(key), &s)) {
        if (s.rfind("header:", 0) != 0 || !valid_token(s.substr(7))) {
          l.error(c, lm.child(key), "expected header:NAME");
        } else {
          *out_header = s.substr(7);
        }
      }
    }
    if (auto c = lm.get("min_healthy_fraction"); c.IsDefined()) {
      l.number(c, lm.child("min_healthy_fraction"), &loc.min_healthy_fraction, 0, 1);
    }
    if (auto c = lm.get("fallback"); c.IsDefined()) {
      l.choice(
          c, lm.child("fallback"), &loc.fallback,
          {{"nearest", Fallback::kNearest}, {"any", Fallback::kAny}, {"none", Fallback::kNone}});
    }
    out->locality = loc;
  }
  if (auto v = m.get("health_check"); v.IsDefined()) {
    HealthCheck hc;
    MapView hm(l, v, m.child("health_check"),
               {"path", "interval", "timeout", "healthy_threshold", "unhealthy_threshold",
                "expect_status"});
    if (auto c = hm.get("path"); c.IsDefined()) {
      if (l.scalar(c, hm.child("path"), &hc.path) && (hc.path.empty() || hc.path[0] != '/')) {
        l.error(c, hm.child("path"), "must start with '/'");
      }
    }
    if (auto c = hm.get("interval"); c.IsDefined()) {
      l.duration(c, hm.child("interval"), &hc.interval);
    }
    if (auto c = hm.get("timeout"); c.IsDefined()) l.duration(c, hm.child("timeout"), &hc.timeout);
    if (auto c = hm.get("healthy_threshold"); c.IsDefined()) {
      l.integer<uint32_t>(c, hm.child("healthy_threshold"), &hc.healthy_threshold, 1, 100);
    }
    if (auto c = hm.get("unhealthy_threshold"); c.IsDefined()) {
      l.integer<uint32_t>(c, hm.child("unhealthy_threshold"), &hc.unhealthy_threshold, 1, 100);
    }
    if (auto c = hm.get("expect_status"); c.IsDefined()) {
      read_expect_status(l, c, hm.child("expect_status"), &hc.expect_status);
    }
    out->health_check = hc;
  }
  {
    MapView cb(l, m.get("circuit_breaker"), m.child("circuit_breaker"),
               {"consecutive_failures", "base_ejection", "max_ejection", "max_ejected_fraction",
                "max_pending_requests"});
    auto& c = out->circuit_breaker;
    if (auto v = cb.get("consecutive_failures"); v.IsDefined()) {
      l.integer<uint32_t>(v, cb.child("consecutive_failures"), &c.consecutive_failures, 0, 1000);
    }
    if (auto v = cb.get("base_ejection"); v.IsDefined()) {
      l.duration(v, cb.child("base_ejection"), &c.base_ejection);
    }
    if (auto v = cb.get("max_ejection"); v.IsDefined()) {
      if (l.duration(v, cb.child("max_ejection"), &c.max_ejection) &&
          c.max_ejection < c.base_ejection) {
        l.error(v, cb.child("max_ejection"), "must be at least base_ejection");
      }
    }
    if (auto v = cb.get("max_ejected_fraction"); v.IsDefined()) {
      l.number(v, cb.child("max_ejected_fraction"), &c.max_ejected_fraction, 0, 1);
    }
    if (auto v = cb.get("max_pending_requests"); v.IsDefined()) {
      l.integer<uint32_t>(v, cb.child("max_pending_requests"), &c.max_pending_requests, 1,
                          10'000'000);
    }
  }
  {
    MapView up(l, m.get("upstream"), m.child("upstream"),
               {"connect_timeout", "idle_timeout", "max_idle_per_endpoint"});
    auto& u = out->upstream;
    if (auto v = up.get("connect_timeout"); v.IsDefined()) {
      l.duration(v, up.child("connect_timeout"), &u.connect_timeout);
    }
    if (auto v = up.get("idle_timeout"); v.IsDefined()) {
      l.duration(v, up.child("idle_timeout"), &u.idle_timeout);
    }
    if (auto v = up.get("max_idle_per_endpoint"); v.IsDefined()) {
      l.integer<uint32_t>(v, up.child("max_idle_per_endpoint"), &u.max_idle_per_endpoint, 0,
                          100'000);
    }
  }
  auto endpoints = m.required("endpoints");
  if (endpoints.IsDefined()) {
    auto items = sequence(l, endpoints, m.child("endpoints"));
    if (items.empty() && (endpoints.IsSequence() || endpoints.IsNull())) {
      l.error(endpoints, m.child("endpoints"), "must list at least one endpoint");
    }
    uint64_t ring_points = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      Endpoint ep;
      std::string p = indexed(m.child("endpoints"), i);
      read_endpoint(l, items[i], p, &ep);
      for (const auto& other : out->endpoints) {
        if (!ep.address_text.empty() && other.address_text == ep.address_text) {
          l.error(items[i], p + ".address", "duplicate endpoint '" + ep.address_text + "'");
        }
      }
      ring_points += uint64_t(ep.weight) * out->hash.virtual_nodes;
      out->endpoints.push_back(std::move(ep));
    }
    if (ring_points > kMaxRingPoints && (out->strategy == Strategy::kConsistentHash)) {
      l.error(endpoints, m.child("endpoints"),
              "hash ring would have " + std::to_string(ring_points) +
                  " points (virtual_nodes x weights); the limit is " +
                  std::to_string(kMaxRingPoints));
    }
  }
}

Config read_config(Loader& l, const YAML::Node& root) {
  Config cfg;
  MapView m(l, root, "",
            {"workers", "drain_timeout", "admin", "access_log", "listeners", "clusters"});
  if (!m.valid()) return cfg;
  if (auto v = m.get("workers"); v.IsDefined()) {
    l.integer<uint32_t>(v, "workers", &cfg.workers, 0, 256);
  }
  if (auto v = m.get("drain_timeout"); v.IsDefined()) {
    l.duration(v, "drain_timeout", &cfg.drain_timeout, true);
  }
  read_admin(l, m.get("admin"), &cfg.admin);
  read_access_log(l, m.get("access_log"), &cfg.access_log);

  // Clusters first, so that routes can be checked against their names.
  auto clusters_node = m.required("clusters");
  auto clusters = sequence(l, clusters_node, "clusters");
  if (clusters_node.IsDefined() && clusters.empty() &&
      (clusters_node.IsSequence() || clusters_node.IsNull())) {
    l.error(clusters_node, "clusters", "must list at least one cluster");
  }
  std::set<std::string> cluster_names;
  for (size_t i = 0; i < clusters.size(); ++i) {
    Cluster c;
    read_cluster(l, clusters[i], indexed("clusters", i), &c);
    if (!c.name.empty() && !cluster_names.insert(c.name).second) {
      l.error(clusters[i]["name"], indexed("clusters", i) + ".name",
              "duplicate cluster name '" + c.name + "'");
    }
    cfg.clusters.push_back(std::move(c));
  }

  auto listeners_node = m.required("listeners");
  auto listeners = sequence(l, listeners_node, "listeners");
  if (listeners_node.IsDefined() && listeners.empty() &&
      (listeners_node.IsSequence() || listeners_node.IsNull())) {
    l.error(listeners_node, "listeners", "must list at least one listener");
  }
  std::set<std::string> listener_names;
  for (size_t i = 0; i < listeners.size(); ++i) {
    Listener li;
    std::string p = indexed("listeners", i);
    read_listener(l, listeners[i], p, cfg.clusters, &li);
    if (!li.name.empty() && !listener_names.insert(li.name).second) {
      l.error(listeners[i]["name"], p + ".name", "duplicate listener name '" + li.name + "'");
    }
    bool port_zero = li.listen.length != 0 && li.listen.port() == 0;
    for (const auto& other : cfg.listeners) {
      if (!port_zero && li.listen.length != 0 && other.listen == li.listen) {
        l.error(listeners[i]["listen"], p + ".listen",
                "address already used by listener '" + other.name + "'");
      }
    }
    if (!port_zero && li.listen.length != 0 && li.listen == cfg.admin.listen) {
      l.error(listeners[i]["listen"], p + ".listen", "address already used by admin.listen");
    }
    cfg.listeners.push_back(std::move(li));
  }
  if (cfg.workers == 0) cfg.workers = std::max(1u, std::thread::hardware_concurrency());
  return cfg;
}

}  // namespace

LoadResult load_string(std::string_view yaml, const std::string& file_name) {
  Loader loader(file_name);
  LoadResult result;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    loader.error(e.mark, "", "YAML syntax error: " + e.msg);
    result.errors = std::move(loader.errors());
    return result;
  }
  if (!root.IsDefined() || root.IsNull()) {
    loader.error(root.Mark(), "", "the file is empty");
    result.errors = std::move(loader.errors());
    return result;
  }
  Config cfg;
  try {
    cfg = read_config(loader, root);
  } catch (const YAML::Exception& e) {
    // Should not happen (the readers check node types first); never let it escape.
    loader.error(e.mark, "", std::string("unexpected YAML error: ") + e.msg);
  }
  cfg.source_path = file_name;
  result.errors = std::move(loader.errors());
  std::stable_sort(result.errors.begin(), result.errors.end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     return a.line != b.line ? a.line < b.line : a.column < b.column;
                   });
  if (result.errors.empty()) result.config = std::make_shared<const Config>(std::move(cfg));
  return result;
}

LoadResult load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult result;
    result.errors.push_back(Diagnostic{path, 1, 1, "", "cannot read the file"});
    return result;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return load_string(buffer.str(), path);
}

}  // namespace switchyard::config
