"""gRPC through switchyard (issue 17) with a real server and client (Debian's python3-grpcio):
calls on one client connection balanced per call over three servers (round robin within 5% of a
third each; consistent_hash on a metadata key: each key on one server), server-streaming,
UNAVAILABLE from a server, trailers intact (ORCA endpoint-load-metrics-bin taken out and
counted), grpc-timeout honoured by switchyard as DEADLINE_EXCEEDED, no endpoint as UNAVAILABLE,
and grpc health checks (health_check.protocol: grpc)."""
import json
import os
import re
import subprocess
import sys
import time
import unittest

try:
    import grpc
except ImportError:  # pyenv and friends: Debian's python3 has python3-grpcio
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3", "-m", "unittest", *sys.argv[1:]])
    raise

from grpc_peer import down_file
from harness import ProxyTestCase, Process, free_port
from test_admin_views import admin
from test_health import wait_for

HERE = os.path.dirname(os.path.abspath(__file__))


class GrpcServer(Process):
    def __init__(self, name, extra=()):
        self.port = free_port()
        self.name = name
        self.address = f"127.0.0.1:{self.port}"
        super().__init__([sys.executable, os.path.join(HERE, "grpc_peer.py"), "serve",
                          str(self.port), name, *extra])
        self.wait_for_line(r"^ready")


def grpc_config(servers, strategy="round_robin", extra_cluster=""):
    endpoints = "\n".join(f"      - address: {s.address}" for s in servers)
    return ("workers: 2\n"
            "admin: { listen: 127.0.0.1:0 }\n"
            "access_log: { enabled: false }\n"
            "listeners:\n"
            "  - name: ingress\n    listen: 127.0.0.1:0\n    protocols: [h2, http1]\n"
            "    routes:\n      - cluster: app\n"
            "clusters:\n"
            f"  - name: app\n    strategy: {strategy}\n    protocol: h2c\n{extra_cluster}"
            f"    endpoints:\n{endpoints}\n")


def grpc_curl(port, path, timeout):
    """A gRPC call by curl (HTTP/2 prior knowledge): the response head and trailers as text."""
    t0 = time.monotonic()
    out = subprocess.run(
        ["curl", "-s", "-i", "--http2-prior-knowledge", "--max-time", "10",
         "-H", "content-type: application/grpc", "-H", "te: trailers",
         "-H", f"grpc-timeout: {timeout}", "--data-binary", "@-",
         f"http://127.0.0.1:{port}{path}"],
        input=b"\x00\x00\x00\x00\x00", capture_output=True, timeout=20)
    return out.stdout.decode(errors="replace"), time.monotonic() - t0


def unary(channel, method="/test.Echo/Unary"):
    return channel.unary_unary(method, request_serializer=None, response_deserializer=None)


class GrpcTest(ProxyTestCase):
    def servers(self, n, extra=()):
        out = [GrpcServer(f"s{i}", extra) for i in range(n)]
        self.processes.extend(out)
        return out

    def channel(self, sy):
        ch = grpc.insecure_channel(f"127.0.0.1:{sy.port}")
        self.addCleanup(ch.close)
        return ch

    def test_round_robin_spreads_calls_of_one_connection(self):
        servers = self.servers(3)
        sy = self.switchyard(grpc_config(servers))
        ch = self.channel(sy)
        call = unary(ch)
        counts = {s.name: 0 for s in servers}
        n = 300
        for i in range(n):
            reply, c = call.with_call(b"hi")
            name = reply.decode().split(":")[0]
            counts[name] += 1
            self.assertIn(("x-served-by", name), c.trailing_metadata())  # trailers intact
        for name, got in counts.items():
            self.assertLessEqual(abs(got - n / 3), 0.05 * n / 3, counts)
        effective = json.loads(admin(sy, "GET", "/admin/config")[2])
        self.assertEqual(effective["listeners"][0]["protocols"], ["h2", "http1"])
        self.assertEqual(effective["clusters"][0]["protocol"], "h2c")
        # Server-streaming calls are balanced per call too, and arrive whole.
        stream = ch.unary_stream("/test.Echo/Stream", request_serializer=None,
                                 response_deserializer=None)
        seen = set()
        for _ in range(30):
            msgs = [m.decode() for m in stream(b"")]
            self.assertEqual(len(msgs), 3, msgs)
            prefix = {m.split(":")[0] for m in msgs}
            self.assertEqual(len(prefix), 1, msgs)
            seen |= prefix
        self.assertEqual(seen, {s.name for s in servers})

    def test_consistent_hash_on_metadata_keeps_each_key_on_one_server(self):
        servers = self.servers(3)
        sy = self.switchyard(grpc_config(
            servers, "consistent_hash", "    hash: { key: \"header:x-user\" }\n"))
        call = unary(self.channel(sy))
        owners = {}
        for rnd in range(4):
            for k in range(24):
                reply = call(b"x", metadata=(("x-user", f"user-{k}"),))
                owners.setdefault(k, set()).add(reply.decode().split(":")[0])
        self.assertTrue(all(len(v) == 1 for v in owners.values()), owners)
        self.assertGreater(len({next(iter(v)) for v in owners.values()}), 1, owners)

    def test_client_streaming_and_bidirectional_calls(self):
        # Client streaming (100 messages, then 8 x 1 MiB) arrives whole; a bidirectional call
        # in lock step (each message sent only after the previous answer came back) needs
        # switchyard to forward both directions of the stream as they come.
        import queue
        servers = self.servers(2)
        sy = self.switchyard(grpc_config(servers))
        big = (("grpc.max_receive_message_length", 64 << 20),
               ("grpc.max_send_message_length", 64 << 20))
        ch = grpc.insecure_channel(f"127.0.0.1:{sy.port}", options=big)
        self.addCleanup(ch.close)
        collect = ch.stream_unary("/test.Echo/Collect", request_serializer=None,
                                  response_deserializer=None)
        self.assertRegex(collect(iter([b"a" * 1000] * 100), timeout=10), rb"^s\d:100:100000$")
        self.assertRegex(collect(iter([b"b" * (1 << 20)] * 8), timeout=30),
                         rb"^s\d:8:8388608$")
        chat = ch.stream_stream("/test.Echo/Chat", request_serializer=None,
                                response_deserializer=None)
        for _ in range(2):  # once on each server
            answers = queue.Queue()

            def lock_step():
                for i in range(20):
                    yield f"m{i}".encode()
                    answers.get(timeout=5)  # raises (and fails the call) if nothing came back

            got = []
            for reply in chat(lock_step(), timeout=15):
                got.append(reply)
                answers.put(reply)
            self.assertEqual([r.split(b":")[1] for r in got], [f"m{i}".encode() for i in range(20)])
            self.assertEqual(len({r.split(b":")[0] for r in got}), 1)
        unary_big = ch.unary_unary("/test.Echo/Unary", request_serializer=None,
                                   response_deserializer=None)
        self.assertEqual(len(unary_big(b"x" * (4 << 20), timeout=30)), (4 << 20) + 3)

    def test_tls_on_both_sides(self):
        # A gRPC client over TLS (h2 by ALPN) to switchyard, and switchyard to gRPC servers over
        # TLS (clusters[].protocol: h2, the chain and name verified), health checked by gRPC
        # over the same TLS: calls of one connection spread over both servers.
        from test_tls import pki
        p = pki()
        servers = self.servers(2, ("--tls", *p.backend))
        cert, key = p.a
        cfg = grpc_config(servers, extra_cluster=(
            f"    tls: {{ sni: backend.test, ca_file: {p.ca} }}\n"
            "    health_check: { protocol: grpc, interval: 200ms, healthy_threshold: 1 }\n"))
        cfg = cfg.replace("    protocol: h2c\n", "    protocol: h2\n").replace(
            "    protocols: [h2, http1]\n",
            f"    tls:\n      certificates:\n        - {{ cert_file: {cert}, key_file: {key} }}\n")
        sy = self.switchyard(cfg)
        def passed():  # every endpoint has passed a grpc check over TLS
            text = admin(sy, "GET", "/metrics")[2]
            return len(re.findall(r'health_checks_total\{[^}]*result="pass"\} [1-9]', text)) == 2

        self.assertIsNotNone(wait_for(passed, 10))
        with open(p.ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        ch = grpc.secure_channel(f"127.0.0.1:{sy.port}", creds,
                                 options=(("grpc.ssl_target_name_override", "a.test"),))
        self.addCleanup(ch.close)
        call = unary(ch)
        counts = {}
        for _ in range(40):
            name = call(b"hi", timeout=10).decode().split(":")[0]
            counts[name] = counts.get(name, 0) + 1
        self.assertEqual(counts, {"s0": 20, "s1": 20})

    def test_long_lived_streams_and_route_timeout(self):
        # The route timeout bounds the whole call (Envoy's rule): a server stream that outlives
        # it ends with DEADLINE_EXCEEDED in trailers after the messages that came (not a bare
        # stream reset). timeout: 0s lifts that for long-lived streams; a silence longer than
        # upstream.idle_timeout still ends the call.
        servers = self.servers(1)
        ticks_of = lambda sy: self.channel(sy).unary_stream(
            "/test.Echo/Ticks", request_serializer=None, response_deserializer=None)

        def run(ticks, ask):
            got = []
            started = time.monotonic()
            try:
                for m in ticks(ask):  # no client deadline: switchyard's timeouts decide
                    got.append(m)
                return got, None, None, time.monotonic() - started
            except grpc.RpcError as e:
                return got, e.code(), e.details(), time.monotonic() - started

        limited = self.switchyard(grpc_config(servers).replace(
            "      - cluster: app\n", "      - cluster: app\n        timeout: 1s\n"))
        got, code, details, took = run(ticks_of(limited), b"20 0.2")
        self.assertEqual(code, grpc.StatusCode.DEADLINE_EXCEEDED, details)
        self.assertEqual(details, "upstream timeout")
        self.assertTrue(2 <= len(got) < 20, got)  # what came before the timeout got through
        self.assertLess(took, 3)
        streaming = self.switchyard(grpc_config(
            servers, extra_cluster="    upstream: { idle_timeout: 1s }\n").replace(
            "      - cluster: app\n", "      - cluster: app\n        timeout: 0s\n"))
        ticks = ticks_of(streaming)
        got, code, details, took = run(ticks, b"12 0.25")  # 2.75 s, never quiet for 1 s
        self.assertIsNone(code, details)
        self.assertEqual(len(got), 12)
        got, code, details, took = run(ticks, b"3 2.5")  # quiet for 2.5 s
        self.assertEqual(code, grpc.StatusCode.DEADLINE_EXCEEDED, details)
        self.assertEqual(len(got), 1)
        self.assertLess(took, 2.4)
        effective = json.loads(admin(streaming, "GET", "/admin/config")[2])
        self.assertEqual(effective["listeners"][0]["routes"][0]["timeout"], "0s")

    def test_status_from_server_and_from_switchyard(self):
        servers = self.servers(1)
        dead = free_port()
        sy = self.switchyard(grpc_config(servers))
        ch = self.channel(sy)
        with self.assertRaises(grpc.RpcError) as e:
            unary(ch, "/test.Echo/Fail")(b"")
        self.assertEqual(e.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(e.exception.details(), "s0 is down")
        # grpc-timeout goes to the server (which answers DEADLINE_EXCEEDED in time)...
        text, took = grpc_curl(sy.port, "/test.Echo/Slow", "300m")
        self.assertIn("grpc-status: 4", text)
        self.assertLess(took, 1.8, text)  # the server sleeps 2 s
        # ...and is the call's route timeout in switchyard: an endpoint that ignores it (an
        # HTTP/1.1 backend, 3 s late) gets a DEADLINE_EXCEEDED from switchyard itself.
        slow = self.backend("slow", extra=("--latency-ms", "3000"))
        sy_slow = self.switchyard(grpc_config([slow]).replace("    protocol: h2c\n", ""))
        text, took = grpc_curl(sy_slow.port, "/test.Echo/Unary", "400m")
        self.assertIn("grpc-status: 4", text)
        self.assertIn("grpc-message: upstream timeout", text)
        self.assertLess(took, 2.5, text)
        # No endpoint: UNAVAILABLE with switchyard's reason.
        sy2 = self.switchyard(grpc_config([type("D", (), {"address": f"127.0.0.1:{dead}"})]))
        with self.assertRaises(grpc.RpcError) as e:
            unary(self.channel(sy2))(b"", timeout=10)
        self.assertEqual(e.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertIn("upstream", e.exception.details())

    def test_orca_binary_load_reports_in_trailers(self):
        servers = self.servers(2, ("--orca", "0.7"))
        sy = self.switchyard(grpc_config(servers, "resource_aware"))
        call = unary(self.channel(sy))
        for _ in range(20):
            _, c = call.with_call(b"x")
            keys = [k for k, _ in c.trailing_metadata()]
            self.assertNotIn("endpoint-load-metrics-bin", keys)  # for the proxy only
        _, _, metrics = admin(sy, "GET", "/metrics")
        m = re.search(r'switchyard_load_reports_total\{cluster="app",result="ok"\} (\d+)', metrics)
        self.assertIsNotNone(m, metrics[-2000:])
        self.assertEqual(int(m.group(1)), 20)
        _, _, clusters = admin(sy, "GET", "/admin/clusters")
        eps = json.loads(clusters)["clusters"][0]["endpoints"]
        self.assertEqual(sum(e["load_report"]["reports"] for e in eps), 20)
        for e in eps:
            self.assertAlmostEqual(e["load_report"]["cpu"], 0.7)

    def test_grpc_health_checks(self):
        servers = self.servers(2)
        sy = self.switchyard(grpc_config(
            servers, extra_cluster=("    health_check: { protocol: grpc, interval: 200ms,"
                                    " timeout: 500ms, healthy_threshold: 1,"
                                    " unhealthy_threshold: 1 }\n")))
        call = unary(self.channel(sy))

        def names(n=12):
            try:
                return {call(b"", timeout=5).decode().split(":")[0] for _ in range(n)}
            except grpc.RpcError:
                return set()  # pending: not checked yet

        self.assertIsNotNone(wait_for(lambda: names() == {"s0", "s1"}, 5))
        down = down_file(servers[1].port)
        open(down, "w").close()
        self.addCleanup(lambda: os.path.exists(down) and os.unlink(down))
        self.assertIsNotNone(wait_for(lambda: names() == {"s0"}, 5))
        os.unlink(down)
        self.assertIsNotNone(wait_for(lambda: names() == {"s0", "s1"}, 5))


class UpstreamTlsReloadTest(ProxyTestCase):
    def test_reloads_under_tls_requests_with_short_client_timeouts(self):
        # 50 reloads, each changing both clusters' TLS (min_version 1.2 <-> 1.3: new contexts,
        # old pooled connections drained), while clients with timeouts of 5-150 ms keep TLS
        # connects, handshakes and exchanges to an HTTP/1.1 and an h2 endpoint in flight and
        # give up on them. Upstream contexts are shared-owned by whatever uses them, so nothing
        # is freed under a pending connect (under ASan this is the proof); afterwards both
        # clusters still answer under the last rules.
        import http.client
        import random
        import threading
        from test_tls import pki
        p = pki()
        grpc_server = GrpcServer("g", ("--tls", *p.backend))
        self.processes.append(grpc_server)
        cert, key = p.backend
        h1 = self.backend("h1", extra=["--tls-cert", cert, "--tls-key", key])

        def cfg(version):
            tls = f"    tls: {{ sni: backend.test, ca_file: {p.ca}, min_version: \"{version}\" }}\n"
            return ("workers: 2\nadmin: { listen: 127.0.0.1:0 }\naccess_log: { enabled: false }\n"
                    "listeners:\n  - name: ingress\n    listen: 127.0.0.1:0\n"
                    "    protocols: [h2, http1]\n    routes:\n"
                    "      - match: { path_prefix: /test.Echo/ }\n        cluster: g\n"
                    "      - cluster: h1\n"
                    "clusters:\n"
                    f"  - name: g\n    protocol: h2\n{tls}"
                    f"    endpoints:\n      - address: {grpc_server.address}\n"
                    f"  - name: h1\n{tls}"
                    "    upstream: { max_idle_per_endpoint: 4 }\n"
                    f"    endpoints:\n      - address: {h1.address}\n")

        sy = self.switchyard(cfg("1.2"))
        stop = threading.Event()
        done = [0]

        def h1_client():
            while not stop.is_set():
                try:
                    c = http.client.HTTPConnection("127.0.0.1", sy.port,
                                                   timeout=random.uniform(0.005, 0.15))
                    c.request("GET", f"/sleep?ms={random.randint(0, 60)}")
                    c.getresponse().read()
                    done[0] += 1
                except (OSError, http.client.HTTPException):
                    pass
                finally:
                    c.close()

        ch = grpc.insecure_channel(f"127.0.0.1:{sy.port}")
        self.addCleanup(ch.close)
        call = unary(ch)

        def grpc_client():
            while not stop.is_set():
                try:
                    call(b"x", timeout=random.uniform(0.005, 0.15))
                    done[0] += 1
                except grpc.RpcError:
                    pass

        threads = [threading.Thread(target=f, daemon=True)
                   for f in (h1_client, h1_client, grpc_client, grpc_client)]
        for t in threads:
            t.start()
        for i in range(50):
            sy.rewrite_config(cfg("1.3" if i % 2 == 0 else "1.2"))
            status, _, body = admin(sy, "POST", "/admin/reload")
            self.assertEqual(status, 200, body)
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(timeout=10)
        self.assertIsNone(sy.proc.poll(), "switchyard died")
        self.assertGreater(done[0], 20)
        self.assertEqual(call(b"after", timeout=10), b"g:after")
        import http.client as hc
        c = hc.HTTPConnection("127.0.0.1", sy.port, timeout=10)
        c.request("GET", "/")
        self.assertEqual(c.getresponse().status, 200)
        c.close()


if __name__ == "__main__":
    unittest.main()
