#include "downstream/exchange.h"

namespace switchyard::proxy {

void DownstreamExchange::begin(const std::shared_ptr<WorkerView>& v, size_t listener_index,
                               Clock::time_point t) {
  view = v;
  listener = &v->snapshot->listeners[listener_index];
  cluster = nullptr;
  has_body = false;
  start = t;
  status = 0;
  response_bytes = 0;
  logged = false;
}

bool DownstreamExchange::plan_request(const ClientIdentity& client, bool tls) {
  PlanInput in;
  in.snapshot = view->snapshot.get();
  in.listener = listener;
  in.client_ip = client.ip;
  in.client_addr = client.addr;
  in.has_body = has_body;
  if (tls) {
    in.scheme = "https";
    in.client_uris = client.uris;
    in.client_cert = client.cert;
  }
  proxy::plan_request(in, head, verdict, hash_key, plan, forward);
  if (plan.status != 0) return false;
  cluster = plan.cluster;
  return true;
}

void DownstreamExchange::record(unsigned status_sent, unsigned version, std::string_view client_ip,
                                ListenerStats& stats, AccessLog& log) const {
  stats.downstream_requests.add(status_sent);
  const auto& cfg = *view->snapshot->config;
  if (!cfg.access_log.enabled) return;
  AccessEntry entry;
  entry.listener = listener->config->name;
  entry.client = client_ip;
  entry.method = head.method_text.empty() ? std::string_view("-") : head.method_text;
  entry.target =
      head.method_text.empty() || head.target.empty() ? std::string_view("-") : head.target;
  entry.version = version;
  entry.status = status_sent;
  entry.bytes_sent = response_bytes;
  if (cluster) entry.cluster = cluster->config().name;
  if (const auto* ep = attempt.endpoint()) entry.endpoint = ep->address_text;
  entry.hedge = attempt.hedge_outcome();
  entry.duration = Clock::now() - start;
  log.append(entry, cfg.access_log.format);
}

}  // namespace switchyard::proxy
