#include "request_plan.h"

#include <algorithm>

#include "switchyard/routing/client_region.h"
#include "switchyard/routing/hash_key.h"

namespace switchyard::proxy {
namespace {

// Hash keys are hashed on at most this prefix.
constexpr size_t kMaxHashKeyBytes = 256;

void fail(RequestPlan& out, unsigned status, std::string_view reason, bool close) {
  out.status = status;
  out.reason = reason;
  out.close = close;
}

// The key the cluster's policy hashes on (hash.key), copied: its source fields are views into
// this request. False when it is missing and on_missing_key is reject.
bool extract_hash_key(const balancer::ClusterBalancer& cluster, const RequestHead& head,
                      const routing::Target& target, const PlanInput& in, bool peer_trusted,
                      std::string& storage, balancer::PickRequest& pick) {
  storage.clear();
  pick.has_hash_key = false;
  const config::HashKey* hk = cluster.hash_key();
  if (hk == nullptr) return true;
  routing::HashKeyInputs keys;
  keys.target = head.target;
  keys.path = target.path;
  if (hk->source == config::HashKeySource::kHeader) keys.header = head.fields.value(hk->name);
  if (hk->source == config::HashKeySource::kCookie)
    keys.cookie = head.fields.value(FieldId::kCookie);
  keys.client_ip = in.client_ip;
  if (peer_trusted) keys.forwarded_for = head.fields.value(FieldId::kXForwardedFor);
  auto key = routing::hash_key(*hk, keys);
  if (!key) return !cluster.reject_missing_key();
  storage.assign(key->data(), std::min(key->size(), kMaxHashKeyBytes));
  pick.hash_key = storage;
  pick.has_hash_key = true;
  return true;
}

}  // namespace

void plan_request(const PlanInput& in, RequestHead& head, const HeadVerdict& verdict,
                  std::string& hash_key, RequestPlan& out, RequestForward& forward) {
  out = RequestPlan{};
  const auto& listener = *in.listener;
  const auto target = routing::parse_target(head.target, head.fields.value(FieldId::kHost));
  if (!target.valid) return fail(out, 400, "invalid request target", true);
  out.route = listener.router.match(target.host, target.path, in.client_uris);
  if (out.route == nullptr) return fail(out, 404, "no route for this request", in.has_body);
  out.cluster_index = out.route->cluster_index;
  out.cluster = in.snapshot->clusters[out.cluster_index].get();
  out.origin_needs_slash = target.origin_needs_slash;
  const bool trusted = routing::peer_trusted(*listener.config, in.client_addr);
  auto& pick = out.pick;
  pick.cross_region = out.route->cross_region;

  ForwardContext ctx;
  ctx.client_ip = in.client_ip;
  ctx.peer_trusted = trusted;
  ctx.asserted_headers = listener.registry->asserted_headers;
  ctx.upgrade_protocols = listener.config->upgrade_protocols;
  ctx.has_body = in.has_body;
  ctx.scheme = in.scheme;
  ctx.client_cert = in.client_cert;
  if (const auto& locality = out.cluster->config().locality) {
    pick.client_region =
        routing::client_region(*listener.config, head.fields.value(locality->client_region_header),
                               trusted, in.client_addr);
    ctx.region_header = locality->client_region_header;
    ctx.region_value = pick.client_region;
    if (!locality->client_zone_header.empty()) {
      pick.client_zone = routing::client_zone(
          *listener.config, head.fields.value(locality->client_zone_header), trusted);
      ctx.zone_header = locality->client_zone_header;
      ctx.zone_value = pick.client_zone;
    }
  }
  if (!extract_hash_key(*out.cluster, head, target, in, trusted, hash_key, pick)) {
    return fail(out, 400, "request has no hash key", in.has_body);
  }
  plan_request_forward(head, verdict, target, ctx, forward);
}

}  // namespace switchyard::proxy
