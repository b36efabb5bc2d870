#pragma once

// Private to the proxy module. One request as the client side sees it, whichever protocol it
// came in on: an HTTP/1.1 Session and an HTTP/2 H2Stream each hold one, parse the head their
// own way, and then share everything from the plan to the log line: routing's decision and
// the forwarding plan (request_plan), the UpstreamAttempt that carries it, the status and
// bytes answered, and the access-log entry and status count when it ends. Worker thread.

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "downstream/request_plan.h"
#include "switchyard/common/net.h"
#include "upstream/upstream_attempt.h"
#include "worker/worker.h"

namespace switchyard::proxy {

// Who the client is, as its connection established it.
struct ClientIdentity {
  std::string ip;
  IpAddress addr;
  std::vector<std::string> uris;  // verified client certificate's URI SANs
  std::string cert;               // X-Forwarded-Client-Cert value, or empty
};

struct DownstreamExchange {
  explicit DownstreamExchange(Worker& worker) : attempt(worker) {}

  // A new request on this connection: the worker's current snapshot and the connection's
  // listener in it, its clock, nothing answered.
  void begin(const std::shared_ptr<WorkerView>& v, size_t listener_index, Clock::time_point t);

  // The head passed the request rules (verdict set): routes and plans it. False: answer
  // plan.status (plan.reason; plan.close ends an HTTP/1.1 connection) instead of forwarding.
  bool plan_request(const ClientIdentity& client, bool tls);

  // What the attempt is to send, as planned.
  AttemptRequest attempt_request() const {
    return AttemptRequest{&view->clusters[plan.cluster_index],
                          plan.cluster,
                          plan.route,
                          &head,
                          &forward,
                          plan.origin_needs_slash,
                          has_body,
                          plan.pick};
  }

  // The request is over: counts it under `status_sent` for its listener and writes its
  // access-log line. Callers make it once per request (logged).
  void record(unsigned status_sent, unsigned version, std::string_view client_ip,
              ListenerStats& stats, AccessLog& log) const;

  std::shared_ptr<WorkerView> view;
  const control::ListenerRuntime* listener = nullptr;
  const balancer::ClusterBalancer* cluster = nullptr;  // once planned
  http::RequestHead head;
  http::HeadVerdict verdict;
  RequestPlan plan;
  http::RequestForward forward;
  std::string hash_key;  // capacity reused
  bool has_body = false;
  Clock::time_point start;
  unsigned status = 0;  // of the response sent (or being sent)
  uint64_t response_bytes = 0;
  bool logged = false;
  UpstreamAttempt attempt;
};

}  // namespace switchyard::proxy
