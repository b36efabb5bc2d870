#include "switchyard/proxy/explain.h"

#include "downstream/request_plan.h"
#include "switchyard/routing/client_region.h"

namespace switchyard::proxy {
namespace {

// A header switchyard believes only from trusted_proxies: "" when it decided (the caller
// names the source), else the note that it was sent and ignored (or nothing when absent).
std::string header_note(std::string_view header, std::string_view value, bool trusted,
                        bool* decided) {
  *decided = !value.empty() && trusted;
  if (*decided) return "header " + std::string(header) + " from a trusted proxy";
  if (value.empty()) return "";
  return "header " + std::string(header) + " ignored (the peer is not in trusted_proxies); ";
}

// Why routing::client_region chose what it chose: the same order, in words.
std::string region_source(const config::Listener& listener, std::string_view header,
                          std::string_view header_value, bool trusted, const IpAddress& peer) {
  bool decided = false;
  std::string note = header_note(header, header_value, trusted, &decided);
  if (decided) return note;
  if (const auto* entry = routing::region_map_entry(listener, peer)) {
    return note + "region_map " + entry->cidr_text;
  }
  if (!listener.local_region.empty()) return note + "the listener's local_region";
  return note + "none: no header, no region_map entry, no local_region";
}

// Why routing::client_zone chose what it chose.
std::string zone_source(const config::Listener& listener, std::string_view header,
                        std::string_view header_value, bool trusted) {
  bool decided = false;
  std::string note = header_note(header, header_value, trusted, &decided);
  if (decided) return note;
  if (!listener.local_zone.empty()) return note + "the listener's local_zone";
  return note + "none: no zone preference";
}

}  // namespace

Explanation explain(const control::Snapshot& snapshot, const ExplainQuery& q) {
  Explanation out;
  const control::ListenerRuntime* listener = nullptr;
  for (const auto& l : snapshot.listeners) {
    if (q.listener.empty() || l.config->name == q.listener) {
      listener = &l;
      break;
    }
  }
  if (listener == nullptr) {
    out.status = 400;
    out.reason = "no listener named '" + q.listener + "'";
    out.bad_query = true;
    return out;
  }
  out.listener = listener->config;
  auto peer = IpAddress::parse(q.client_ip);
  if (!peer) {
    out.status = 400;
    out.reason = "client is not an IP address: '" + q.client_ip + "'";
    out.bad_query = true;
    return out;
  }
  http::RequestHead head;
  head.method_text = q.method;
  head.target = q.path;
  head.fields.items.push_back(http::Field{"Host", q.host, http::FieldId::kHost});
  for (const auto& [name, value] : q.headers) {
    head.fields.items.push_back(http::Field{name, value, http::classify_field(name)});
  }
  const http::HeadVerdict verdict = http::check_request_head(head, listener->config->limits);
  if (verdict.status != 0) {
    out.status = verdict.status;
    out.reason = verdict.reason;
    return out;
  }
  PlanInput in;
  in.snapshot = &snapshot;
  in.listener = listener;
  in.client_ip = q.client_ip;
  in.client_addr = *peer;
  std::string key;
  RequestPlan plan;
  http::RequestForward forward;
  plan_request(in, head, verdict, key, plan, forward);
  out.route = plan.route;
  out.cluster = plan.cluster;
  if (plan.route != nullptr) out.route_index = plan.route - listener->config->routes.data();
  if (plan.status != 0) {
    out.status = plan.status;
    out.reason = std::string(plan.reason);
    return out;
  }
  out.peer_trusted = routing::peer_trusted(*listener->config, *peer);
  if (const auto& locality = plan.cluster->config().locality) {
    out.client_region = std::string(plan.pick.client_region);
    out.region_source =
        region_source(*listener->config, locality->client_region_header,
                      head.fields.value(locality->client_region_header), out.peer_trusted, *peer);
    if (!locality->client_zone_header.empty()) {
      out.client_zone = std::string(plan.pick.client_zone);
      out.zone_source =
          zone_source(*listener->config, locality->client_zone_header,
                      head.fields.value(locality->client_zone_header), out.peer_trusted);
    }
  }
  out.has_hash_key = plan.pick.has_hash_key;
  out.hash_key = key;
  balancer::PickRequest req = plan.pick;
  req.hash_key = out.hash_key;  // the copy outlives `key`
  out.pick = plan.cluster->explain(req);
  return out;
}

}  // namespace switchyard::proxy
