"""Writes docker/compose.yaml as tests/container/compose.sh runs it: argv[1] the repository,
argv[2] the output folder; ports from the environment (PROXY ADMIN PROM B1..B4).

Only what a machine without a bridge network needs changes: every service joins the host's
network (no published ports), every address is 127.0.0.1 with this run's ports, builds use
the host network, and the configs switchyard and Prometheus read are rewritten copies."""
import os
import re
import sys

import yaml

root, out = sys.argv[1], sys.argv[2]
env = os.environ
backend_ports = {"9001": env["B1"], "9002": env["B2"], "9003": env["B3"], "9004": env["B4"]}


def ports(text):
    text = text.replace("0.0.0.0:8080", f"127.0.0.1:{env['PROXY']}")
    text = text.replace("0.0.0.0:9901", f"127.0.0.1:{env['ADMIN']}")
    text = text.replace("127.0.0.1:9901", f"127.0.0.1:{env['ADMIN']}")
    return re.sub(r"127\.0\.0\.1:(900[1-4])", lambda m: "127.0.0.1:" + backend_ports[m.group(1)],
                  text)


with open(os.path.join(root, "docker/compose.yaml")) as f:
    compose = yaml.safe_load(f)
with open(os.path.join(root, "docker/switchyard.yaml")) as f:
    switchyard_yaml = ports(f.read())
with open(os.path.join(root, "docker/prometheus.yml")) as f:
    prometheus_yml = ports(f.read())
for name, text in (("switchyard.yaml", switchyard_yaml), ("prometheus.yml", prometheus_yml)):
    path = os.path.join(out, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
assert f"127.0.0.1:{env['PROXY']}" in switchyard_yaml, "switchyard.yaml: listener not found"
assert f"127.0.0.1:{env['ADMIN']}" in prometheus_yml, "prometheus.yml: target not found"

services = compose["services"]
for required in ("switchyard", "east-a", "east-b", "west-a", "west-b", "prometheus"):
    assert required in services, f"compose.yaml has no service {required}"
for name, svc in services.items():
    svc.pop("ports", None)
    svc["network_mode"] = "host"
    svc.pop("restart", None)
    if "build" in svc:
        svc["build"]["context"] = os.path.normpath(os.path.join(root, "docker",
                                                                svc["build"]["context"]))
        svc["build"]["network"] = "host"
    if "image" in svc:  # the test's own tags, never a user's switchyard:latest
        svc["image"] = svc["image"].split(":")[0] + ":compose-test"
    if "entrypoint" in svc:
        svc["entrypoint"] = [ports(str(a)) for a in svc["entrypoint"]]
services["switchyard"]["environment"] = {"SWITCHYARD_ADMIN_PORT": env["ADMIN"]}
services["switchyard"]["volumes"] = [
    f"{out}/switchyard.yaml:/etc/switchyard/switchyard.yaml:ro"]
prom = services["prometheus"]
prom["volumes"] = [f"{out}/prometheus.yml:/etc/prometheus/prometheus.yml:ro"]
prom["entrypoint"] = ["prometheus", "--config.file=/etc/prometheus/prometheus.yml",
                      "--storage.tsdb.path=/var/lib/prometheus/metrics2",
                      f"--web.listen-address=127.0.0.1:{env['PROM']}"]

with open(os.path.join(out, "compose.yaml"), "w") as f:
    yaml.safe_dump(compose, f, sort_keys=False)
