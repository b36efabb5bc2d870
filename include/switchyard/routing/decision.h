#pragma once

// What a request head decides before anything goes upstream (DESIGN.md Part B: "router
// (route, client region, hash key)"): its route and cluster, the client's region and zone,
// and the hash key. No I/O, no allocation beyond the caller's reused key storage; the same
// for an HTTP/1.1 request and an HTTP/2 stream. The proxy's downstream exchange calls
// route() and then place() with what the routed cluster's policy needs.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "switchyard/common/net.h"
#include "switchyard/config/config.h"
#include "switchyard/http/message.h"
#include "switchyard/http/target.h"
#include "switchyard/routing/router.h"

namespace switchyard::routing {

// Hash keys are hashed on at most this prefix.
constexpr size_t kMaxHashKeyBytes = 256;

// The downstream connection's side of the decision.
struct RequestSource {
  const config::Listener* listener = nullptr;
  const Router* router = nullptr;
  std::string_view client_ip;
  IpAddress client_addr;
  // TLS listeners: the verified client certificate's URI SANs (routes may match them).
  std::span<const std::string> client_uris;
  bool has_body = false;  // an error then closes the connection (the body is not read)
};

// What the routed cluster asks of routing, from its policy (balancer::ClusterBalancer).
struct ClusterNeeds {
  const config::HashKey* hash_key = nullptr;   // nullptr: the policy hashes on nothing
  bool reject_missing_key = false;             // a request without one is a 400
  const config::Locality* locality = nullptr;  // nullptr: no geographic layer
};

struct Decision {
  unsigned status = 0;  // not 0: answer with it (and reason) instead of forwarding
  std::string_view reason;
  bool close = false;  // the error ends the connection
  http::RequestTarget target;
  const config::Route* route = nullptr;
  size_t cluster_index = 0;
  bool peer_trusted = false;
  std::string_view client_region;  // empty unless the cluster has a locality block
  std::string_view client_zone;
  bool has_hash_key = false;
  std::string_view hash_key;  // views the caller's key storage
};

// The target and the route (first match). False (status set) for an invalid target (400,
// close) or no route (404).
bool route(const RequestSource& src, const http::RequestHead& head, Decision& out);

// The client's region and zone (when the cluster has a locality block) and the hash key
// (copied into key_storage, at most kMaxHashKeyBytes). False (400) when the key is missing and
// the cluster rejects such requests.
bool place(const RequestSource& src, const http::RequestHead& head, const ClusterNeeds& needs,
           std::string& key_storage, Decision& out);

}  // namespace switchyard::routing
