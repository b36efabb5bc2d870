// libFuzzer target: arbitrary bytes as the query of GET /admin/explain (form decoding, the
// parameters, header and client parsing, then routing and the balancer's explain) against a
// snapshot with a locality cluster and a hashing one. It must answer 200 or 400 with JSON and
// never crash. Build: make fuzz-build.
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "switchyard/admin/admin_server.h"
#include "switchyard/balancer/policy.h"
#include "switchyard/config/loader.h"
#include "switchyard/control/runtime.h"

using namespace switchyard;

namespace {

constexpr const char* kConfig = R"(admin: { listen: 127.0.0.1:0 }
listeners:
  - name: ingress
    listen: 127.0.0.1:0
    local_region: us-east
    trusted_proxies: [127.0.0.0/8]
    region_map: { 10.2.0.0/16: eu-west }
    routes:
      - match: { path_prefix: /hash/ }
        cluster: hashed
      - match: { host: "*.example.com" }
        cluster: geo
        cross_region: failover_only
      - cluster: geo
clusters:
  - name: geo
    locality: { client_region: "header:X-Client-Region" }
    endpoints:
      - { address: 127.0.0.1:1, region: us-east }
      - { address: 127.0.0.1:2, region: eu-west }
  - name: hashed
    strategy: maglev
    hash: { key: "header:X-Key", on_missing_key: reject }
    endpoints:
      - { address: 127.0.0.1:3 }
      - { address: 127.0.0.1:4 }
)";

struct Env {
  Env() : runtime(control) {
    auto loaded = config::load_string(kConfig, "fuzz.yaml", balancer::schema());
    if (!loaded.ok()) std::abort();
    snapshot = runtime.apply(loaded.config);
  }
  boost::asio::io_context control;
  control::Runtime runtime;
  std::shared_ptr<const control::Snapshot> snapshot;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Env* env = new Env();
  unsigned status = 0;
  const auto body = admin::explain_json(
      *env->snapshot, std::string_view(reinterpret_cast<const char*>(data), size), &status);
  if (status != 200 && status != 400) std::abort();
  boost::system::error_code ec;
  (void)boost::json::parse(body, ec);
  if (ec) std::abort();  // always a JSON document
  return 0;
}
