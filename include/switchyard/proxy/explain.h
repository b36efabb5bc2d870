#pragma once

// What switchyard would do with a request like this, now, without sending anything
// (GET /admin/explain): its route, the client's region and zone and why, the hash key, the
// locality decision and the endpoint the balancer would pick. The request goes through the same
// head checks, routing and planning as a real one (request_plan), then the cluster's
// ClusterBalancer::explain. Any thread; reads the snapshot only.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "switchyard/balancer/front_door.h"
#include "switchyard/control/runtime.h"

namespace switchyard::proxy {

struct ExplainQuery {
  std::string listener;  // empty: the first
  std::string method = "GET";
  std::string host = "localhost";  // the Host header
  std::string path = "/";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string client_ip = "127.0.0.1";  // the peer the request would come from
};

struct Explanation {
  // Not 0: the request would be answered with this status before any pick (bad query, 400,
  // 404), for this reason.
  unsigned status = 0;
  std::string reason;
  bool bad_query = false;  // the query itself is wrong (no such listener, not an IP)
  const config::Listener* listener = nullptr;
  const config::Route* route = nullptr;
  size_t route_index = 0;
  const balancer::ClusterBalancer* cluster = nullptr;
  bool peer_trusted = false;
  std::string client_region, region_source;  // locality clusters only
  std::string client_zone, zone_source;
  bool has_hash_key = false;  // hashing clusters: the key routing extracted
  std::string hash_key;
  balancer::PickExplanation pick;
};

Explanation explain(const control::Snapshot& snapshot, const ExplainQuery& query);

}  // namespace switchyard::proxy
