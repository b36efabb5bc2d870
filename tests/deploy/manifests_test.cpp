// The deployment files users apply (issue 15): every Kubernetes manifest under docker/k8s/
// parsed and held to what running switchyard in a pod needs, the switchyard.yaml each
// ConfigMap carries loaded by the real config loader, and docker/compose.yaml resolved by
// Debian's docker-compose and checked service by service.

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <set>
#include <string>

#include "switchyard/balancer/policy.h"
#include "switchyard/common/duration.h"
#include "switchyard/config/loader.h"

namespace {

namespace fs = std::filesystem;
const fs::path kRoot = SWITCHYARD_SOURCE_DIR;

std::vector<YAML::Node> documents(const fs::path& file) {
  std::vector<YAML::Node> out;
  for (auto& doc : YAML::LoadAllFromFile(file.string())) {
    if (doc && !doc.IsNull()) out.push_back(doc);
  }
  return out;
}

YAML::Node find_kind(const std::vector<YAML::Node>& docs, const std::string& kind) {
  for (const auto& d : docs) {
    if (d["kind"].as<std::string>() == kind) return d;
  }
  return YAML::Node();
}

// The pod template of a Pod or a Deployment, and its metadata (annotations live there).
std::pair<YAML::Node, YAML::Node> pod_of(const YAML::Node& workload) {
  const auto kind = workload["kind"].as<std::string>();
  if (kind == "Pod") return {workload["spec"], workload["metadata"]};
  return {workload["spec"]["template"]["spec"], workload["spec"]["template"]["metadata"]};
}

// Loads the ConfigMap's switchyard.yaml with the loader the daemon uses. The admin token file
// it names (mounted from the Secret in a pod) is written from the manifest's Secret to a
// temporary file first, so the loader reads the token the pod would.
std::shared_ptr<const switchyard::config::Config> load_embedded(const YAML::Node& configmap,
                                                                const std::string& name,
                                                                const YAML::Node& secret) {
  auto text = configmap["data"]["switchyard.yaml"].as<std::string>();
  const fs::path path = fs::temp_directory_path() / ("switchyard-k8s-" + name + ".yaml");
  const fs::path token = fs::temp_directory_path() / ("switchyard-k8s-" + name + ".token");
  const std::string mounted = "/etc/switchyard-admin/token";
  EXPECT_NE(text.find("token_file: " + mounted), std::string::npos) << name;
  EXPECT_TRUE(secret) << name << ": no Secret with the admin token";
  if (secret) std::ofstream(token) << secret["stringData"]["token"].as<std::string>();
  if (auto at = text.find(mounted); at != std::string::npos)
    text.replace(at, mounted.size(), token.string());
  std::ofstream(path) << text;
  auto result = switchyard::config::load_file(path.string(), switchyard::balancer::schema());
  fs::remove(path);
  fs::remove(token);
  std::string errors;
  for (const auto& e : result.errors) errors += e.to_string() + "\n";
  EXPECT_TRUE(result.ok()) << name << ":\n" << errors;
  return result.config;
}

void expect_switchyard_container(const YAML::Node& pod, const YAML::Node& meta,
                                 const switchyard::config::Config& cfg, const std::string& file) {
  SCOPED_TRACE(file);
  YAML::Node sy;
  for (const auto& c : pod["containers"]) {
    if (c["name"].as<std::string>() == "switchyard") sy.reset(static_cast<const YAML::Node&>(c));
  }
  ASSERT_TRUE(sy) << "no container named switchyard";
  // The config comes from the ConfigMap, mounted where the image looks for it.
  bool mounted = false;
  for (const auto& m : sy["volumeMounts"]) {
    mounted = mounted || m["mountPath"].as<std::string>() == "/etc/switchyard";
  }
  EXPECT_TRUE(mounted);
  bool from_configmap = false;
  for (const auto& v : pod["volumes"]) from_configmap = from_configmap || v["configMap"];
  EXPECT_TRUE(from_configmap);
  // Probes on the probe address: readiness on /readyz, liveness on /healthz.
  EXPECT_EQ(sy["readinessProbe"]["httpGet"]["path"].as<std::string>(), "/readyz");
  EXPECT_EQ(sy["livenessProbe"]["httpGet"]["path"].as<std::string>(), "/healthz");
  ASSERT_TRUE(cfg.admin.probe_listen) << "no admin.probe_listen";
  const uint16_t probe_port = cfg.admin.probe_listen->port();
  bool probes_named = false;
  for (const auto& p : sy["ports"]) {
    if (p["name"].as<std::string>() == sy["readinessProbe"]["httpGet"]["port"].as<std::string>())
      probes_named = p["containerPort"].as<uint16_t>() == probe_port;
    // The views' port is not published.
    EXPECT_NE(p["containerPort"].as<uint16_t>(), cfg.admin.listen.port());
  }
  EXPECT_TRUE(probes_named) << "the probes' port is not admin.probe_listen's " << probe_port;
  // The probes and listeners are reachable from outside the pod; the views and reload are not,
  // and reload needs the token.
  EXPECT_EQ(cfg.admin.probe_listen_text.rfind("0.0.0.0:", 0), 0u) << cfg.admin.probe_listen_text;
  EXPECT_EQ(cfg.admin.listen_text.rfind("127.0.0.1:", 0), 0u) << cfg.admin.listen_text;
  EXPECT_GE(cfg.admin.token.size(), 16u);
  bool token_mounted = false;
  for (const auto& m : sy["volumeMounts"]) {
    token_mounted = token_mounted || m["mountPath"].as<std::string>() == "/etc/switchyard-admin";
  }
  EXPECT_TRUE(token_mounted) << "the admin token is not mounted where token_file points";
  // Listeners face the pod network, except an egress listener: the app's own calls out, on
  // the pod's loopback where nothing outside the pod reaches it.
  for (const auto& l : cfg.listeners) {
    const bool egress = l.name == "egress";
    EXPECT_EQ(l.listen_text.rfind(egress ? "127.0.0.1:" : "0.0.0.0:", 0), 0u) << l.name;
  }
  // Drain fits the grace period: preStop sleep + drain_timeout < terminationGracePeriodSeconds.
  const auto pre_stop = sy["lifecycle"]["preStop"]["exec"]["command"];
  ASSERT_TRUE(pre_stop) << "no preStop";
  ASSERT_EQ(pre_stop[0].as<std::string>(), "sleep");
  const double sleep_s = pre_stop[1].as<double>();
  const double grace_s = pod["terminationGracePeriodSeconds"].as<double>();
  const double drain_s = std::chrono::duration<double>(cfg.drain_timeout).count();
  EXPECT_LT(sleep_s + drain_s, grace_s);
  // Resource requests, non-root, no privilege escalation.
  EXPECT_TRUE(sy["resources"]["requests"]["cpu"]);
  EXPECT_TRUE(sy["resources"]["requests"]["memory"]);
  EXPECT_TRUE(pod["securityContext"]["runAsNonRoot"].as<bool>());
  EXPECT_EQ(pod["securityContext"]["runAsUser"].as<int>(), 10001);  // the image's user
  EXPECT_FALSE(sy["securityContext"]["allowPrivilegeEscalation"].as<bool>());
  // Prometheus scrape annotations pointing at the probe address (it serves /metrics).
  const auto ann = meta["annotations"];
  EXPECT_EQ(ann["prometheus.io/scrape"].as<std::string>(), "true");
  EXPECT_EQ(ann["prometheus.io/port"].as<uint16_t>(), probe_port);
  EXPECT_EQ(ann["prometheus.io/path"].as<std::string>(), "/metrics");
  for (const auto& c : pod["containers"]) {
    EXPECT_TRUE(c["resources"]["requests"]) << c["name"].as<std::string>();
  }
}

bool contains(const YAML::Node& list, const std::string& value) {
  for (const auto& v : list) {
    if (v.as<std::string>() == value) return true;
  }
  return false;
}

// A cluster that reads EndpointSlices needs the pod's ServiceAccount to be allowed to get,
// list and watch them in its namespace (a Role bound to it), and no more than that.
void expect_endpointslice_rbac(const std::vector<YAML::Node>& docs, const YAML::Node& pod,
                               const switchyard::config::Config& cfg, const std::string& file) {
  SCOPED_TRACE(file);
  bool reads_slices = false;
  for (const auto& c : cfg.clusters) {
    if (!c.discovery.kubernetes) continue;
    reads_slices = true;
    // The pod's own namespace, the in-cluster API server, token and CA (mounted there by the
    // ServiceAccount admission).
    EXPECT_EQ(c.discovery.kubernetes->namespace_, "") << c.name;
    EXPECT_EQ(c.discovery.kubernetes->api_server, "") << c.name;
    EXPECT_EQ(c.discovery.kubernetes->token_file,
              "/var/run/secrets/kubernetes.io/serviceaccount/token");
  }
  ASSERT_TRUE(reads_slices) << "no cluster reads a Service's EndpointSlices";
  const auto account = find_kind(docs, "ServiceAccount");
  ASSERT_TRUE(account) << "no ServiceAccount";
  const auto name = account["metadata"]["name"].as<std::string>();
  ASSERT_TRUE(pod["serviceAccountName"]) << "the pod does not run as a ServiceAccount";
  EXPECT_EQ(pod["serviceAccountName"].as<std::string>(), name);
  if (pod["automountServiceAccountToken"]) {
    EXPECT_TRUE(pod["automountServiceAccountToken"].as<bool>()) << "discovery needs the token";
  }
  const auto role = find_kind(docs, "Role");
  const auto binding = find_kind(docs, "RoleBinding");
  ASSERT_TRUE(role) << "no Role";
  ASSERT_TRUE(binding) << "no RoleBinding";
  bool allowed = false;
  for (const auto& rule : role["rules"]) {
    EXPECT_TRUE(contains(rule["apiGroups"], "discovery.k8s.io"));
    EXPECT_TRUE(contains(rule["resources"], "endpointslices"));
    for (const auto& verb : rule["verbs"]) {
      const auto v = verb.as<std::string>();
      EXPECT_TRUE(v == "get" || v == "list" || v == "watch") << "more than needed: " << v;
    }
    allowed = allowed || (contains(rule["verbs"], "get") && contains(rule["verbs"], "list") &&
                          contains(rule["verbs"], "watch"));
  }
  EXPECT_TRUE(allowed) << "the Role does not allow get, list and watch of endpointslices";
  EXPECT_EQ(binding["roleRef"]["kind"].as<std::string>(), "Role");
  EXPECT_EQ(binding["roleRef"]["name"].as<std::string>(),
            role["metadata"]["name"].as<std::string>());
  bool bound = false;
  for (const auto& subject : binding["subjects"]) {
    bound = bound || (subject["kind"].as<std::string>() == "ServiceAccount" &&
                      subject["name"].as<std::string>() == name);
  }
  EXPECT_TRUE(bound) << "the RoleBinding does not bind the pod's ServiceAccount";
}

TEST(K8sManifests, SidecarPodHasTheAppAndSwitchyardInFrontOfIt) {
  const auto docs = documents(kRoot / "docker/k8s/sidecar.yaml");
  const auto cm = find_kind(docs, "ConfigMap");
  const auto pod = find_kind(docs, "Pod");
  ASSERT_TRUE(cm);
  ASSERT_TRUE(pod);
  auto cfg = load_embedded(cm, "sidecar", find_kind(docs, "Secret"));
  ASSERT_TRUE(cfg);
  auto [spec, meta] = pod_of(pod);
  EXPECT_EQ(spec["containers"].size(), 2u);
  expect_switchyard_container(spec, meta, *cfg, "sidecar.yaml");
  expect_endpointslice_rbac(docs, spec, *cfg, "sidecar.yaml");
  // The app listens where the sidecar's ingress cluster points: on the pod's loopback.
  ASSERT_GE(cfg->clusters.size(), 1u);
  ASSERT_EQ(cfg->clusters[0].name, cfg->listeners.at(0).routes.at(0).cluster);
  const auto& endpoint = cfg->clusters[0].endpoints.at(0).address_text;
  EXPECT_EQ(endpoint.rfind("127.0.0.1:", 0), 0u);
  bool app_matches = false;
  for (const auto& c : spec["containers"]) {
    if (c["name"].as<std::string>() == "switchyard") continue;
    for (const auto& arg : c["command"]) app_matches |= arg.as<std::string>() == endpoint;
  }
  EXPECT_TRUE(app_matches) << "no app container listening on " << endpoint;
  EXPECT_EQ(spec["volumes"][0]["configMap"]["name"].as<std::string>(),
            cm["metadata"]["name"].as<std::string>());
}

TEST(K8sManifests, EdgeDeploymentAndServiceMatch) {
  const auto docs = documents(kRoot / "docker/k8s/edge.yaml");
  const auto cm = find_kind(docs, "ConfigMap");
  const auto deploy = find_kind(docs, "Deployment");
  const auto service = find_kind(docs, "Service");
  ASSERT_TRUE(cm);
  ASSERT_TRUE(deploy);
  ASSERT_TRUE(service);
  auto cfg = load_embedded(cm, "edge", find_kind(docs, "Secret"));
  ASSERT_TRUE(cfg);
  auto [spec, meta] = pod_of(deploy);
  expect_switchyard_container(spec, meta, *cfg, "edge.yaml");
  expect_endpointslice_rbac(docs, spec, *cfg, "edge.yaml");
  EXPECT_GE(deploy["spec"]["replicas"].as<int>(), 2);
  EXPECT_EQ(deploy["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"].as<int>(), 0);
  // The Service selects the Deployment's pods and targets the listener's port.
  const auto labels = deploy["spec"]["template"]["metadata"]["labels"];
  for (const auto& kv : service["spec"]["selector"]) {
    EXPECT_EQ(labels[kv.first.as<std::string>()].as<std::string>(), kv.second.as<std::string>());
  }
  for (const auto& kv : deploy["spec"]["selector"]["matchLabels"]) {
    EXPECT_EQ(labels[kv.first.as<std::string>()].as<std::string>(), kv.second.as<std::string>());
  }
  const auto target = service["spec"]["ports"][0]["targetPort"].as<std::string>();
  bool found = false;
  for (const auto& p : spec["containers"][0]["ports"]) {
    if (p["name"].as<std::string>() == target) {
      found = true;
      EXPECT_EQ(p["containerPort"].as<uint16_t>(), cfg->listeners.at(0).listen.port());
    }
  }
  EXPECT_TRUE(found) << "targetPort " << target;
}

// docker-compose resolves the file (anchors, variables) without an engine.
std::string run(const std::string& command, int* status) {
  std::array<char, 4096> buf;
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return out;
  while (size_t n = fread(buf.data(), 1, buf.size(), pipe.get())) out.append(buf.data(), n);
  *status = pclose(pipe.release());
  return out;
}

TEST(Compose, ConfigResolvesAndEveryServiceCanGetItsImage) {
  int status = -1;
  const std::string out = run(
      "docker-compose -f '" + (kRoot / "docker/compose.yaml").string() + "' config 2>&1", &status);
  ASSERT_EQ(status, 0) << out << "\n(`make deps` installs Debian's docker-compose)";
  const YAML::Node doc = YAML::Load(out);
  const auto services = doc["services"];
  std::set<std::string> names;
  std::set<std::string> built;  // images some service builds
  for (const auto& s : services) {
    names.insert(s.first.as<std::string>());
    if (s.second["build"] && s.second["image"]) built.insert(s.second["image"].as<std::string>());
  }
  for (const char* want : {"switchyard", "east-a", "east-b", "west-a", "west-b", "prometheus"}) {
    EXPECT_TRUE(names.count(want)) << want;
  }
  std::set<std::string> regions;
  for (const auto& s : services) {
    const auto name = s.first.as<std::string>();
    SCOPED_TRACE(name);
    // Each service builds its image or names one a service of this file builds.
    ASSERT_TRUE(s.second["image"]);
    EXPECT_TRUE(s.second["build"] || built.count(s.second["image"].as<std::string>()));
    if (s.second["build"]) {
      const fs::path dockerfile = fs::path(s.second["build"]["context"].as<std::string>()) /
                                  s.second["build"]["dockerfile"].as<std::string>();
      EXPECT_TRUE(fs::exists(dockerfile)) << dockerfile;
    }
    if (name != "switchyard") {
      EXPECT_EQ(s.second["network_mode"].as<std::string>(), "service:switchyard");
    }
    const auto entry = s.second["entrypoint"];
    for (size_t i = 0; entry && i + 1 < entry.size(); ++i) {
      if (entry[i].as<std::string>() == "--region") regions.insert(entry[i + 1].as<std::string>());
    }
  }
  EXPECT_EQ(regions, (std::set<std::string>{"us-east", "eu-west"}));
  // Published ports reach the container config's listener and admin ports (0.0.0.0).
  std::set<std::string> published;
  for (const auto& p : services["switchyard"]["ports"]) {
    // "127.0.0.1:8080:8080/tcp" (compose v1) or {target: 8080, ...} (the long form).
    if (p.IsMap()) {
      published.insert(p["target"].as<std::string>());
    } else {
      auto text = p.as<std::string>();
      text = text.substr(0, text.find('/'));  // "/tcp"
      published.insert(text.substr(text.rfind(':') + 1));
    }
  }
  auto result = switchyard::config::load_file((kRoot / "docker/switchyard.yaml").string(),
                                              switchyard::balancer::schema());
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(published.count(std::to_string(result.config->admin.listen.port())));
  EXPECT_TRUE(published.count(std::to_string(result.config->listeners[0].listen.port())));
  EXPECT_EQ(result.config->admin.listen_text.rfind("0.0.0.0:", 0), 0u);
  // Prometheus scrapes the admin port.
  const auto prom = YAML::LoadFile((kRoot / "docker/prometheus.yml").string());
  EXPECT_EQ(prom["scrape_configs"][0]["static_configs"][0]["targets"][0].as<std::string>(),
            "127.0.0.1:" + std::to_string(result.config->admin.listen.port()));
}

}  // namespace
