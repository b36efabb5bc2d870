#pragma once

// Private to the proxy module. What a request head decides before it goes upstream: routing's
// decision (routing/decision.h: route, client region and zone, hash key) for the snapshot's
// cluster, as the balancer's pick request, and the forwarding plan. No I/O; the same for an
// HTTP/1.1 request and an HTTP/2 stream.

#include <span>
#include <string>
#include <string_view>

#include "switchyard/balancer/front_door.h"
#include "switchyard/common/net.h"
#include "switchyard/control/runtime.h"
#include "switchyard/http/request_rules.h"
#include "switchyard/routing/decision.h"

namespace switchyard::proxy {

struct PlanInput {
  const control::Snapshot* snapshot = nullptr;
  const control::ListenerRuntime* listener = nullptr;
  std::string_view client_ip;
  IpAddress client_addr;
  bool has_body = false;
  // TLS listeners: "https", the verified client certificate's URI SANs (routes may match them)
  // and the X-Forwarded-Client-Cert value switchyard asserts.
  std::string_view scheme = "http";
  std::span<const std::string> client_uris;
  std::string_view client_cert;
};

struct RequestPlan {
  unsigned status = 0;  // not 0: answer with it (and reason) instead of forwarding
  std::string_view reason;
  bool close = false;  // the error ends the connection
  const config::Route* route = nullptr;
  size_t cluster_index = 0;
  const balancer::ClusterBalancer* cluster = nullptr;
  bool origin_needs_slash = false;
  balancer::PickRequest pick;  // views into the head, the snapshot's config and hash_key
};

// Routes the head (after check_request_head passed) and plans its forwarding into `forward`.
// hash_key holds the key's bytes (its capacity is reused from request to request).
void plan_request(const PlanInput& in, http::RequestHead& head, const http::HeadVerdict& verdict,
                  std::string& hash_key, RequestPlan& out, http::RequestForward& forward);

}  // namespace switchyard::proxy
