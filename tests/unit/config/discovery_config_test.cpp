// The discovery block (README, "Service discovery") and discovery files' endpoints.

#include <gtest/gtest.h>

#include "switchyard/balancer/policy.h"
#include "switchyard/config/loader.h"

namespace switchyard::config {
namespace {

std::string with_cluster(const std::string& cluster_body) {
  return "listeners:\n"
         "  - name: in\n"
         "    listen: 127.0.0.1:8080\n"
         "    routes:\n"
         "      - cluster: app\n"
         "clusters:\n"
         "  - name: app\n" +
         cluster_body;
}

std::string errors_of(const LoadResult& r) {
  std::string all;
  for (const auto& e : r.errors) all += e.to_string() + "\n";
  return all;
}

TEST(DiscoveryConfig, DnsWithoutEndpointsLoadsWithDefaults) {
  auto r = load_string(with_cluster("    discovery:\n"
                                    "      dns: { name: api.example, port: 8080 }\n"),
                       "t.yaml", balancer::schema());
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const auto& d = *r.config->clusters[0].discovery.dns;
  EXPECT_EQ(d.name, "api.example");
  EXPECT_EQ(d.port, 8080);
  EXPECT_EQ(d.type, DnsRecord::kA);
  EXPECT_EQ(d.refresh, std::chrono::seconds(30));
  EXPECT_EQ(d.min_refresh, std::chrono::seconds(1));
  EXPECT_TRUE(r.config->clusters[0].endpoints.empty());
}

TEST(DiscoveryConfig, SrvNeedsNoPortAndResolversGetPort53) {
  auto r = load_string(with_cluster("    discovery:\n"
                                    "      dns:\n"
                                    "        name: _http._tcp.api.example\n"
                                    "        type: SRV\n"
                                    "        resolvers: [10.0.0.2, \"127.0.0.1:5353\", \"::1\"]\n"),
                       "t.yaml", balancer::schema());
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const auto& d = *r.config->clusters[0].discovery.dns;
  EXPECT_EQ(d.type, DnsRecord::kSrv);
  ASSERT_EQ(d.resolvers_text.size(), 3u);
  EXPECT_EQ(d.resolvers_text[0], "10.0.0.2:53");
  EXPECT_EQ(d.resolvers_text[1], "127.0.0.1:5353");
  EXPECT_EQ(d.resolvers_text[2], "[::1]:53");
}

TEST(DiscoveryConfig, MistakesAreReportedWhereTheyAre) {
  struct Case {
    std::string body;
    std::string expect;  // FILE:LINE:COL: path: text (a prefix of it)
  };
  const Case cases[] = {
      {"    discovery:\n      dns: { name: api.example }\n",
       "t.yaml:9:12: clusters[0].discovery.dns: needs a port"},
      {"    discovery:\n      dns: { name: a, port: 80 }\n      file: { path: /x }\n",
       "t.yaml:9:7: clusters[0].discovery: needs exactly one source"},
      {"    discovery: {}\n", "t.yaml:8:16: clusters[0].discovery: needs exactly one source"},
      {"    discovery:\n      dns: { name: a, port: 80, type: MX }\n",
       "t.yaml:9:39: clusters[0].discovery.dns.type: expected one of"},
      {"    discovery:\n      dns: { name: a, port: 80, min_refresh: 10ms }\n",
       "t.yaml:9:46: clusters[0].discovery.dns.min_refresh: must be at least 100ms"},
      {"    discovery:\n      dns: { name: a, port: 80, resolvers: [\"dns.example\"] }\n",
       "t.yaml:9:45: clusters[0].discovery.dns.resolvers[0]: invalid resolver"},
      {"    discovery:\n      consul: { service: a }\n",
       "t.yaml:9:7: clusters[0].discovery.consul: unknown key 'consul'"},
      {"    discovery:\n      kubernetes: { namespace: web }\n",
       "t.yaml:9:19: clusters[0].discovery.kubernetes.service: required key is missing"},
      {"    discovery:\n      kubernetes: { service: a, api_server: \"10.0.0.1:443\" }\n",
       "t.yaml:9:45: clusters[0].discovery.kubernetes.api_server: must be an https://"},
      {"    endpoints: []\n",
       "t.yaml:8:16: clusters[0].endpoints: must list at least one endpoint"},
      {"    strategy: maglev\n", "t.yaml:7:5: clusters[0].endpoints: required key is missing"},
  };
  for (const auto& c : cases) {
    auto r = load_string(with_cluster(c.body), "t.yaml", balancer::schema());
    ASSERT_FALSE(r.ok()) << c.body;
    ASSERT_EQ(r.errors.size(), 1u) << errors_of(r);
    EXPECT_EQ(r.errors[0].to_string().rfind(c.expect, 0), 0u) << c.expect << "\n" << errors_of(r);
  }
}

TEST(DiscoveryConfig, KubernetesDefaultsToTheInClusterAccount) {
  auto r = load_string(with_cluster("    discovery:\n"
                                    "      kubernetes: { service: api, port: http }\n"),
                       "t.yaml", balancer::schema());
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const auto& k = *r.config->clusters[0].discovery.kubernetes;
  EXPECT_EQ(k.service, "api");
  EXPECT_EQ(k.port, "http");
  EXPECT_EQ(k.namespace_, "");  // the pod's own
  EXPECT_EQ(k.api_server, "");  // $KUBERNETES_SERVICE_HOST
  EXPECT_EQ(k.token_file, "/var/run/secrets/kubernetes.io/serviceaccount/token");
  EXPECT_EQ(k.ca_file, "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt");
  EXPECT_TRUE(k.verify);
}

TEST(DiscoveryConfig, StaticEndpointsBesideASourceMayBeEmpty) {
  auto r = load_string(with_cluster("    endpoints: []\n"
                                    "    discovery: { file: { path: eps.yaml } }\n"),
                       "/etc/sy/t.yaml", balancer::schema());
  ASSERT_TRUE(r.ok()) << errors_of(r);
  // A relative path is taken relative to the config file's directory.
  EXPECT_EQ(r.config->clusters[0].discovery.file->path, "/etc/sy/eps.yaml");
}

TEST(EndpointsFile, ListOrMappingYamlOrJson) {
  auto a = load_endpoints(
      "- address: 10.0.0.1:80\n"
      "- { address: \"[::1]:81\", region: r, zone: z, weight: 3, priority: 1,\n"
      "    metadata: { cpu_usage: 0.5 } }\n",
      "e.yaml");
  ASSERT_TRUE(a.ok()) << a.errors[0].to_string();
  ASSERT_EQ(a.endpoints.size(), 2u);
  EXPECT_EQ(a.endpoints[1].address_text, "[::1]:81");
  EXPECT_EQ(a.endpoints[1].region, "r");
  EXPECT_EQ(a.endpoints[1].zone, "z");
  EXPECT_EQ(a.endpoints[1].weight, 3u);
  EXPECT_EQ(a.endpoints[1].priority, 1u);
  EXPECT_EQ(a.endpoints[1].cpu_usage, 0.5);
  auto b = load_endpoints(R"({"endpoints": [{"address": "10.0.0.1:80", "weight": 2}]})", "e.json");
  ASSERT_TRUE(b.ok()) << b.errors[0].to_string();
  ASSERT_EQ(b.endpoints.size(), 1u);
  EXPECT_EQ(b.endpoints[0].weight, 2u);
  auto empty = load_endpoints("endpoints: []\n", "e.yaml");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty.endpoints.empty());
}

TEST(EndpointsFile, ProblemsAreFileLineColAndKeepNothing) {
  struct Case {
    std::string text;
    std::string expect;
  };
  const Case cases[] = {
      {"", "e.yaml:1:1: (root): the file is empty"},
      {"- address: 10.0.0.1:80\n- address: [oops\n", "e.yaml:"},
      {"- address: 10.0.0.1:80\n- address: api.example:80\n",
       "e.yaml:2:12: [1].address: invalid address 'api.example:80': a discovery file lists "
       "IP:PORT"},
      {"- address: 10.0.0.1:80\n- address: 10.0.0.1:80\n",
       "e.yaml:2:3: [1].address: duplicate endpoint '10.0.0.1:80'"},
      {"- address: 10.0.0.1:80\n  weight: 0\n", "e.yaml:2:11: [0].weight:"},
      {"- address: 10.0.0.1:80\n  colour: red\n", "e.yaml:2:3: [0].colour: unknown key 'colour'"},
      {"servers: []\n", "e.yaml:1:1: servers: unknown key 'servers'"},
  };
  for (const auto& c : cases) {
    auto r = load_endpoints(c.text, "e.yaml");
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_TRUE(r.endpoints.empty());
    EXPECT_EQ(r.errors[0].to_string().rfind(c.expect, 0), 0u)
        << c.text << " -> " << r.errors[0].to_string();
  }
}

}  // namespace
}  // namespace switchyard::config
