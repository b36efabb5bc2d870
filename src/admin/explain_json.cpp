// GET /admin/explain?listener=L&host=H&path=P&header=K:V&client=IP: proxy::explain() as JSON.

#include <boost/json.hpp>
#include <cstdio>
#include <string>

#include "balancing_json.h"
#include "switchyard/admin/admin_server.h"
#include "switchyard/proxy/explain.h"

namespace switchyard::admin {

namespace json = boost::json;

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded: '+' is a space, %XX a byte. False on a broken escape.
bool form_decode(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out->push_back(' ');
    } else if (in[i] == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out->push_back(in[i]);
    }
  }
  return true;
}

// Every query text the answer may echo must be valid UTF-8, or the answer would not be JSON
// (found by admin_query_fuzz: a parameter name with a lone 0xdc byte).
bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? c : c & (0x7f >> n);
    for (size_t k = 1; k < n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8 either.
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
      return false;
    }
    i += n;
  }
  return true;
}

// A prefix of valid UTF-8 cut at a byte count (the hash key is hashed on its first 256 bytes)
// may end inside a character: drop that partial character, so the echo stays UTF-8 (found by
// admin_query_fuzz: a key of 2-byte characters cut after 256 bytes).
std::string_view whole_utf8_prefix(std::string_view s) {
  size_t back = 0;
  while (back < 3 && back < s.size() &&
         (static_cast<unsigned char>(s[s.size() - 1 - back]) & 0xc0) == 0x80) {
    ++back;
  }
  if (back == s.size()) return s.substr(0, 0);
  const auto lead = static_cast<unsigned char>(s[s.size() - 1 - back]);
  const size_t n = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xe ? 3 : 4;
  return n == back + 1 ? s : s.substr(0, s.size() - 1 - back);
}

const char* locality_name(balancer::LocalityOutcome o) {
  switch (o) {
    case balancer::LocalityOutcome::kLocal:
      return "local";
    case balancer::LocalityOutcome::kFallback:
      return "fallback";
    case balancer::LocalityOutcome::kDenied:
      return "denied";
    case balancer::LocalityOutcome::kNone:
      break;
  }
  return "none";
}

// One sentence on the locality decision: why this region, and what its trend predicts.
std::string locality_why(const balancer::PickExplanation& p) {
  char buf[256];
  const auto& r = p.region;
  if (p.locality == balancer::LocalityOutcome::kNone) {
    return p.region_known ? "no locality decision" : "the client's region has no endpoints";
  }
  if (p.locality == balancer::LocalityOutcome::kDenied) {
    return "the client's region has nothing usable and the route denies cross-region traffic";
  }
  const char* where = p.locality == balancer::LocalityOutcome::kLocal ? "stays in" : "leaves";
  if (r.spill_cause == "predicted") {
    std::snprintf(buf, sizeof buf,
                  "%s the client's region: its endpoints are predicted to fail (latency %.1f ms "
                  "against a baseline of %.1f ms, %+.1f ms/s; %.0f%% errors; predicted healthy "
                  "%.0f%%), so %.0f%% of its traffic goes to %s",
                  where, r.predicted_ms, r.baseline_ms, r.trend_ms_per_s, r.error_rate * 100,
                  r.predicted_healthy * 100, r.spill * 100,
                  r.nearest.empty() ? "the nearest healthy region" : r.nearest.c_str());
  } else if (r.spill_cause == "unhealthy") {
    std::snprintf(buf, sizeof buf,
                  "%s the client's region: %u of %u endpoints usable, below the minimum healthy "
                  "fraction, so %.0f%% of its traffic goes to %s",
                  where, r.usable, r.endpoints, r.spill * 100,
                  r.nearest.empty() ? "the nearest healthy region" : r.nearest.c_str());
  } else if (r.predicted_healthy >= 0) {
    std::snprintf(buf, sizeof buf,
                  "%s the client's region: healthy, and its trend predicts it stays so "
                  "(predicted healthy %.0f%%)",
                  where, r.predicted_healthy * 100);
  } else {
    std::snprintf(buf, sizeof buf, "%s the client's region: healthy", where);
  }
  return buf;
}

json::object endpoint_json(const balancer::ClusterBalancer& cluster,
                           const balancer::EndpointRef& ref, int64_t now_ns) {
  const auto load = cluster.load_estimate(ref, now_ns);
  return {{"address", ref.endpoint->address_text},
          {"region", ref.endpoint->region},
          {"zone", ref.endpoint->zone},
          {"weight", ref.endpoint->weight},
          {"active_requests", ref.load->active_requests.load(std::memory_order_relaxed)},
          {"load_score", load.score},
          {"latency_ms", load.latency_ms < 0 ? json::value(nullptr) : json::value(load.latency_ms)},
          {"latency_cost", load.latency_cost},
          {"fused_cost", load.fused_cost}};
}

json::object error(unsigned* status, unsigned code, std::string reason) {
  *status = code;
  return {{"error", std::move(reason)}};
}

}  // namespace

std::string explain_json(const control::Snapshot& snapshot, std::string_view query,
                         unsigned* status) {
  *status = 200;
  proxy::ExplainQuery q;
  std::string client;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    std::string key, value;
    if (!form_decode(pair.substr(0, eq), &key) ||
        !form_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), &value)) {
      return json::serialize(error(status, 400, "malformed percent-escape in the query")) + "\n";
    }
    if (!valid_utf8(key) || !valid_utf8(value)) {
      return json::serialize(error(status, 400, "the query is not UTF-8")) + "\n";
    }
    if (key == "listener") {
      q.listener = value;
    } else if (key == "host") {
      q.host = value;
    } else if (key == "path") {
      q.path = value;
    } else if (key == "method") {
      q.method = value;
    } else if (key == "client") {
      q.client_ip = value;
    } else if (key == "header") {
      const size_t colon = value.find(':');
      if (colon == std::string::npos || colon == 0) {
        return json::serialize(
                   error(status, 400, "header=NAME:VALUE expected, got '" + value + "'")) +
               "\n";
      }
      std::string v = value.substr(colon + 1);
      v.erase(0, v.find_first_not_of(' '));
      q.headers.emplace_back(value.substr(0, colon), std::move(v));
    } else {
      return json::serialize(error(
                 status, 400,
                 "unknown parameter '" + key + "'; use listener host path header client method")) +
             "\n";
    }
  }
  if (q.path.empty() || q.path[0] != '/') {
    return json::serialize(error(status, 400, "path must start with '/'")) + "\n";
  }
  const auto e = proxy::explain(snapshot, q);
  json::object doc{{"version", snapshot.version}};
  json::object request{{"listener", e.listener ? json::value(e.listener->name) : nullptr},
                       {"method", q.method},
                       {"host", q.host},
                       {"path", q.path},
                       {"client", q.client_ip}};
  json::array headers;
  for (const auto& [k, v] : q.headers) headers.push_back(json::value(k + ": " + v));
  request["headers"] = std::move(headers);
  doc["request"] = std::move(request);
  if (e.route != nullptr) {
    doc["route"] = json::object{
        {"index", e.route_index},
        {"host", e.route->host ? json::value(*e.route->host) : nullptr},
        {"path_prefix", e.route->path_prefix ? json::value(*e.route->path_prefix) : nullptr},
        {"cluster", e.route->cluster},
        {"cross_region", config::to_string(e.route->cross_region)},
    };
  } else {
    doc["route"] = nullptr;
  }
  if (e.status != 0) {
    // A bad query (no such listener, not an IP) is the caller's 400; a request the proxy would
    // refuse (404, 400) is a valid explanation.
    if (e.bad_query) *status = 400;
    doc["answer"] = json::object{{"status", e.status}, {"reason", e.reason}};
    return json::serialize(doc) + "\n";
  }
  const auto& cluster = *e.cluster;
  const int64_t now_ns = balancer::steady_now_ns();
  doc["cluster"] = cluster.config().name;
  doc["strategy"] = cluster.policy().name();
  doc["peer_trusted"] = e.peer_trusted;
  if (cluster.config().locality) {
    const auto& p = e.pick;
    json::object locality{
        {"client_region", e.client_region},
        {"region_source", e.region_source},
        {"client_zone", e.client_zone.empty() ? json::value(nullptr) : json::value(e.client_zone)},
        {"zone_source", e.zone_source.empty() ? json::value(nullptr) : json::value(e.zone_source)},
        {"decision", locality_name(p.locality)},
        {"region_has_endpoints", p.region_known},
        {"region_healthy", p.region_healthy},
        {"spill_fraction", p.spill},
        {"spill_region",
         p.spill_region.empty() ? json::value(nullptr) : json::value(p.spill_region)},
        {"spill_cause",
         p.region.spill_cause.empty() ? json::value(nullptr) : json::value(p.region.spill_cause)},
        {"prediction", p.region_known ? region_prediction(p.region) : json::value(nullptr)},
        {"why", locality_why(p)},
    };
    doc["locality"] = std::move(locality);
  }
  if (cluster.policy().name() == "resource_aware") {
    doc["resource_weights"] = resource_weights_json(cluster);
  }
  if (cluster.hash_key() != nullptr) {
    doc["hash_key"] = json::object{
        {"source", cluster.hash_key()->to_string()},
        {"present", e.has_hash_key},
        {"value", e.has_hash_key ? json::value(whole_utf8_prefix(e.hash_key)) : nullptr},
    };
  }
  json::array candidates;
  for (size_t i = 0; i < e.pick.order.size(); ++i) {
    auto c = endpoint_json(cluster, *e.pick.order[i], now_ns);
    c["rank"] = i;
    candidates.push_back(std::move(c));
  }
  doc["candidates_from"] =
      e.pick.group.empty() ? json::value("cluster") : json::value("region " + e.pick.group);
  doc["candidates"] = std::move(candidates);
  if (e.pick.endpoint != nullptr) {
    doc["endpoint"] = endpoint_json(cluster, *e.pick.endpoint, now_ns);
    doc["answer"] = json::object{{"status", nullptr}, {"reason", "forwarded"}};
  } else {
    doc["endpoint"] = nullptr;
    doc["answer"] = json::object{{"status", 503}, {"reason", "no usable endpoint"}};
  }
  return json::serialize(doc) + "\n";
}

}  // namespace switchyard::admin
