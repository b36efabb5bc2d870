#include "downstream/request_plan.h"

namespace switchyard::proxy {
namespace {

void fail(RequestPlan& out, const routing::Decision& d) {
  out.status = d.status;
  out.reason = d.reason;
  out.close = d.close;
}

}  // namespace

void plan_request(const PlanInput& in, http::RequestHead& head, const http::HeadVerdict& verdict,
                  std::string& hash_key, RequestPlan& out, http::RequestForward& forward) {
  out = RequestPlan{};
  const auto& listener = *in.listener;
  routing::RequestSource src;
  src.listener = listener.config;
  src.router = &listener.router;
  src.client_ip = in.client_ip;
  src.client_addr = in.client_addr;
  src.client_uris = in.client_uris;
  src.has_body = in.has_body;
  routing::Decision d;
  if (!routing::route(src, head, d)) return fail(out, d);
  out.route = d.route;
  out.cluster_index = d.cluster_index;
  out.cluster = in.snapshot->clusters[d.cluster_index].get();
  out.origin_needs_slash = d.target.origin_needs_slash;
  const auto& locality = out.cluster->config().locality;
  routing::ClusterNeeds needs;
  needs.hash_key = out.cluster->hash_key();
  needs.reject_missing_key = out.cluster->reject_missing_key();
  needs.locality = locality ? &*locality : nullptr;
  if (!routing::place(src, head, needs, hash_key, d)) return fail(out, d);

  auto& pick = out.pick;
  pick.cross_region = d.route->cross_region;
  pick.client_region = d.client_region;
  pick.client_zone = d.client_zone;
  pick.hash_key = d.hash_key;
  pick.has_hash_key = d.has_hash_key;

  http::ForwardContext ctx;
  ctx.client_ip = in.client_ip;
  ctx.peer_trusted = d.peer_trusted;
  ctx.asserted_headers = listener.registry->asserted_headers;
  ctx.upgrade_protocols = listener.config->upgrade_protocols;
  ctx.has_body = in.has_body;
  ctx.scheme = in.scheme;
  ctx.client_cert = in.client_cert;
  if (locality) {
    ctx.region_header = locality->client_region_header;
    ctx.region_value = pick.client_region;
    if (!locality->client_zone_header.empty()) {
      ctx.zone_header = locality->client_zone_header;
      ctx.zone_value = pick.client_zone;
    }
  }
  http::plan_request_forward(head, verdict, d.target, ctx, forward);
}

}  // namespace switchyard::proxy
