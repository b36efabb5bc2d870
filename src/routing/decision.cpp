#include "switchyard/routing/decision.h"

#include <algorithm>

#include "switchyard/routing/client_region.h"
#include "switchyard/routing/hash_key.h"

namespace switchyard::routing {
namespace {

bool fail(Decision& out, unsigned status, std::string_view reason, bool close) {
  out.status = status;
  out.reason = reason;
  out.close = close;
  return false;
}

}  // namespace

bool route(const RequestSource& src, const http::RequestHead& head, Decision& out) {
  out = Decision{};
  out.target = http::parse_target(head.target, head.fields.value(http::FieldId::kHost));
  if (!out.target.valid) return fail(out, 400, "invalid request target", true);
  out.route = src.router->match(out.target.host, out.target.path, src.client_uris);
  if (out.route == nullptr) return fail(out, 404, "no route for this request", src.has_body);
  out.cluster_index = out.route->cluster_index;
  out.peer_trusted = peer_trusted(*src.listener, src.client_addr);
  return true;
}

bool place(const RequestSource& src, const http::RequestHead& head, const ClusterNeeds& needs,
           std::string& key_storage, Decision& out) {
  const bool trusted = out.peer_trusted;
  if (const config::Locality* locality = needs.locality) {
    out.client_region = client_region(
        *src.listener, head.fields.value(locality->client_region_header), trusted, src.client_addr);
    if (!locality->client_zone_header.empty()) {
      out.client_zone =
          client_zone(*src.listener, head.fields.value(locality->client_zone_header), trusted);
    }
  }
  // The key the cluster's policy hashes on (hash.key), copied: its source fields are views
  // into this request.
  key_storage.clear();
  out.has_hash_key = false;
  const config::HashKey* hk = needs.hash_key;
  if (hk == nullptr) return true;
  HashKeyInputs keys;
  keys.target = head.target;
  keys.path = out.target.path;
  if (hk->source == config::HashKeySource::kHeader) keys.header = head.fields.value(hk->name);
  if (hk->source == config::HashKeySource::kCookie) {
    keys.cookie = head.fields.value(http::FieldId::kCookie);
  }
  keys.client_ip = src.client_ip;
  if (trusted) keys.forwarded_for = head.fields.value(http::FieldId::kXForwardedFor);
  auto key = hash_key(*hk, keys);
  if (!key) {
    if (needs.reject_missing_key) return fail(out, 400, "request has no hash key", src.has_body);
    return true;
  }
  key_storage.assign(key->data(), std::min(key->size(), kMaxHashKeyBytes));
  out.hash_key = key_storage;
  out.has_hash_key = true;
  return true;
}

}  // namespace switchyard::routing
