"""TLS through the real daemon (issue 16), with certificates made at test time by openssl:
SNI with a wildcard, TLS 1.0/1.1 refused, a stalled handshake closed and counted, plaintext on
a TLS port closed, mutual TLS with routes on the client's SPIFFE ID and
X-Forwarded-Client-Cert, TLS and mutual TLS to a TLS demo backend (health checks included), and
a certificate swapped by a reload while a keep-alive connection stays open."""
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import unittest

from harness import ProxyTestCase
from test_admin_views import admin
from test_health import wait_for
from tls_certs import shared_pki as pki


def tls_config(backend, certs, extra_tls="", routes=None, cluster_tls="", top=""):
    certificates = "".join(f"          - {{ cert_file: {c}, key_file: {k} }}\n" for c, k in certs)
    routes = routes or "      - cluster: app\n"
    return ("workers: 2\n"
            "admin: { listen: 127.0.0.1:0 }\n"
            "access_log: { enabled: false }\n"
            f"{top}"
            "listeners:\n"
            "  - name: ingress\n    listen: 127.0.0.1:0\n"
            "    limits: { header_timeout: 1s }\n"
            "    tls:\n        certificates:\n" + certificates + extra_tls +
            "    routes:\n" + routes +
            "  - name: plain\n    listen: 127.0.0.1:0\n    routes:\n      - cluster: app\n"
            "clusters:\n  - name: app\n"
            f"{cluster_tls}"
            f"    endpoints:\n      - address: {backend.address}\n")


def client_context(cafile, cert=None, minimum=None, maximum=None):
    ctx = ssl.create_default_context(cafile=cafile)
    if cert:
        ctx.load_cert_chain(*cert)
    if minimum:
        ctx.minimum_version = minimum
    if maximum:
        ctx.maximum_version = maximum
    return ctx


def https(port, name, ctx, path="/", headers=None, conn=None):
    """One GET over TLS to 127.0.0.1:port with SNI name (a new connection unless conn is given);
    returns (status, headers, body, conn)."""
    if conn is None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.sock = ctx.wrap_socket(raw, server_hostname=name)
    conn.request("GET", path, headers={"Host": name, **(headers or {})})
    res = conn.getresponse()
    body = res.read()
    return res.status, {k.lower(): v for k, v in res.getheaders()}, body, conn


def served_name(port, name, cafile):
    ctx = client_context(cafile)
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as s:
            cert = s.getpeercert()
            return dict(x[0] for x in cert["subject"])["commonName"], s.version(), \
                s.selected_alpn_protocol()


class DownstreamTlsTest(ProxyTestCase):
    def test_sni_certificates_curl_and_forwarded_proto(self):
        p = pki()
        b = self.backend("one")
        sy = self.switchyard(tls_config(b, [p.a, p.b]), listeners=("ingress", "plain"))
        port = sy.ports["ingress"]
        self.assertEqual(served_name(port, "a.test", p.ca)[0], "a.test")
        self.assertEqual(served_name(port, "x.b.test", p.ca)[0], "*.b.test")
        self.assertEqual(served_name(port, "unknown.test", p.ca)[0], "a.test")  # the default
        # curl with --cacert against both names: verified, and the backend hears https.
        for name in ("a.test", "www.b.test"):
            out = subprocess.run(
                ["curl", "-sS", "--cacert", p.ca, "--resolve", f"{name}:{port}:127.0.0.1",
                 "-D", "-", f"https://{name}:{port}/echo"],
                capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn(" 200", out.stdout.splitlines()[0])
            self.assertRegex(out.stdout, r"(?im)^x-echo-xfp: https\r?$")
        # ALPN: http/1.1 is chosen; TLS 1.3 by default.
        _, version, alpn = served_name(port, "a.test", p.ca)
        self.assertEqual((version, alpn), ("TLSv1.3", None))
        ctx = client_context(p.ca)
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="a.test") as s:
                self.assertEqual(s.selected_alpn_protocol(), "h2")  # TLS default: [h2, http1]
        ctx.set_alpn_protocols(["http/1.1"])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="a.test") as s:
                self.assertEqual(s.selected_alpn_protocol(), "http/1.1")
        # /admin/config shows the TLS block with the names each certificate serves.
        doc = json.loads(admin(sy, "GET", "/admin/config")[2])
        tls = doc["listeners"][0]["tls"]
        self.assertEqual([c["names"] for c in tls["certificates"]], [["a.test"], ["*.b.test"]])
        self.assertEqual(tls["min_version"], "1.2")
        self.assertIsNone(doc["listeners"][1]["tls"])
        # Session resumption by ticket: a second connection with the first one's session.
        status, _, _, conn = https(port, "a.test", ctx)
        session = conn.sock.session
        conn.close()
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        with ctx.wrap_socket(raw, server_hostname="a.test", session=session) as s:
            self.assertTrue(s.session_reused)
        # The plaintext listener beside it still answers http, and says so.
        conn = http.client.HTTPConnection("127.0.0.1", sy.ports["plain"], timeout=10)
        conn.request("GET", "/echo")
        self.assertEqual(conn.getresponse().getheader("X-Echo-XFP"), "http")

    def test_old_versions_plaintext_and_stalled_handshakes(self):
        p = pki()
        b = self.backend("one")
        sy = self.switchyard(tls_config(b, [p.a]), listeners=("ingress", "plain"))
        port = sy.ports["ingress"]
        # TLS 1.0 and 1.1 are refused (openssl s_client, as testssl does).
        for flag in ("-tls1", "-tls1_1"):
            out = subprocess.run(["openssl", "s_client", flag, "-connect", f"127.0.0.1:{port}",
                                  "-servername", "a.test"], input="", capture_output=True,
                                 text=True, timeout=30)
            self.assertNotEqual(out.returncode, 0, flag)
            self.assertNotIn("Cipher is ECDHE", out.stdout)
        # TLS 1.2 with the default suites is accepted.
        ok = subprocess.run(["openssl", "s_client", "-tls1_2", "-connect", f"127.0.0.1:{port}",
                             "-servername", "a.test", "-CAfile", p.ca], input="",
                            capture_output=True, text=True, timeout=30)
        self.assertIn("Verify return code: 0 (ok)", ok.stdout)
        self.assertRegex(ok.stdout, r"Cipher is ECDHE-ECDSA-AES(128|256)-GCM")
        # Plaintext HTTP on the TLS port: the connection is closed, never answered in clear.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            self.assertNotIn(b"HTTP/1.1", data)
        # A client that stalls mid-handshake is closed after header_timeout (1 s), and a
        # normal client is served meanwhile.
        stalled = socket.create_connection(("127.0.0.1", port), timeout=10)
        stalled.sendall(b"\x16\x03\x01\x00\xff\x01")  # a ClientHello that never finishes
        started = time.monotonic()
        status, _, _, conn = https(port, "a.test", client_context(p.ca))
        self.assertEqual(status, 200)
        conn.close()
        self.assertEqual(stalled.recv(100), b"")  # closed by the proxy
        self.assertLess(time.monotonic() - started, 8)
        stalled.close()

        def counted():
            text = admin(sy, "GET", "/metrics")[2]
            get = lambda r: re.search(  # noqa: E731
                r'switchyard_downstream_tls_handshakes_total\{listener="ingress",result="%s"\} '
                r'(\d+)' % r, text)
            return (get("timeout") and int(get("timeout").group(1)) >= 1 and
                    int(get("failure").group(1)) >= 3 and int(get("success").group(1)) >= 2)
        self.assertIsNotNone(wait_for(counted, 10), admin(sy, "GET", "/metrics")[2][-3000:])


class MutualTlsTest(ProxyTestCase):
    def config(self, b, mode):
        p = pki()
        return tls_config(
            b, [p.a],
            extra_tls=f"        client_ca_file: {p.ca}\n        client_certificate: {mode}\n",
            routes=("      - match: { path_prefix: /web/, client_san: \"spiffe://test/ns/web/*\" }\n"
                    "        cluster: app\n"
                    "      - match: { path_prefix: /echo }\n        cluster: app\n"))

    def test_required_client_certificate_identity_and_routes(self):
        p = pki()
        b = self.backend("one")
        sy = self.switchyard(self.config(b, "required"), listeners=("ingress", "plain"))
        port = sy.ports["ingress"]
        # Without a certificate, or with one from another CA: refused in the handshake.
        for cert in (None, p.other_client):
            with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
                https(port, "a.test", client_context(p.ca, cert))
        # With the client certificate: served; the backend gets switchyard's
        # X-Forwarded-Client-Cert, never the client's own.
        ctx = client_context(p.ca, p.client)
        status, headers, _, conn = https(port, "a.test", ctx, "/echo",
                                         {"X-Forwarded-Client-Cert": "URI=spiffe://forged"})
        self.assertEqual(status, 200)
        xfcc = headers["x-echo-xfcc"]
        self.assertIn("URI=spiffe://test/ns/web/sa/client", xfcc)
        self.assertIn('Subject="CN=web client,O=switchyard"', xfcc)
        self.assertNotIn("forged", xfcc)
        # The route on the SPIFFE ID prefix matches this client.
        status, _, _, _ = https(port, "a.test", ctx, "/web/x", conn=conn)
        self.assertEqual(status, 200)
        conn.close()

    def test_identity_header_is_quoted_and_control_bytes_are_refused(self):
        # A URI SAN holding CR LF would inject a header (or a whole request on a pooled
        # connection) into X-Forwarded-Client-Cert: the connection is refused instead. One with
        # ';', '=' and '"' is quoted and escaped as Envoy's XFCC format does.
        p = pki()
        b = self.backend("one", extra=["--log-requests"])
        sy = self.switchyard(self.config(b, "optional"), listeners=("ingress", "plain"))
        port = sy.ports["ingress"]
        evil = p.client_with_uri("evil", "spiffe://test/x\r\nX-Injected: 1\r\n\r\nGET /smuggled")
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError, http.client.HTTPException)):
            https(port, "a.test", client_context(p.ca, evil), "/echo")
        odd = p.client_with_uri("odd", 'spiffe://test/ns/a;b="c\\d"')
        status, headers, _, _ = https(port, "a.test", client_context(p.ca, odd), "/echo")
        self.assertEqual(status, 200)
        self.assertIn('URI="spiffe://test/ns/a;b=\\"c\\\\d\\""', headers["x-echo-xfcc"])
        self.assertEqual(https(port, "a.test", client_context(p.ca), "/echo")[0], 200)
        self.assertFalse(any("smuggled" in line or "x-injected" in line.lower()
                             for line in b.stdout), "".join(b.stdout)[-2000:])

    def test_optional_client_certificate(self):
        p = pki()
        b = self.backend("one")
        sy = self.switchyard(self.config(b, "optional"), listeners=("ingress", "plain"))
        port = sy.ports["ingress"]
        # No certificate: served, but the client_san route does not match it (404), and no
        # identity header reaches the backend.
        status, headers, _, conn = https(port, "a.test", client_context(p.ca), "/echo",
                                         {"X-Forwarded-Client-Cert": "URI=spiffe://forged"})
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("x-echo-xfcc", ""), "")
        self.assertEqual(https(port, "a.test", client_context(p.ca), "/web/x", conn=conn)[0], 404)
        status, _, _, _ = https(port, "a.test", client_context(p.ca, p.client), "/web/x")
        self.assertEqual(status, 200)
        # A plaintext untrusted client's X-Forwarded-Client-Cert is stripped too.
        c = http.client.HTTPConnection("127.0.0.1", sy.ports["plain"], timeout=10)
        c.request("GET", "/echo", headers={"X-Forwarded-Client-Cert": "URI=spiffe://forged"})
        self.assertEqual(c.getresponse().getheader("X-Echo-XFCC"), "")


def resumption_config(backend, mtls_a_ca, mtls_b_ca):
    """Three TLS listeners on one certificate: public (no client certificates), mtls_a and
    mtls_b (client certificates required, each under its own CA, routing by the SPIFFE ID)."""
    p = pki()
    listeners = ""
    for name, ca in (("public", None), ("mtls_a", mtls_a_ca), ("mtls_b", mtls_b_ca)):
        mtls = (f"        client_ca_file: {ca}\n        client_certificate: required\n"
                if ca else "")
        route = ("      - match: { client_san: \"spiffe://test/*\" }\n        cluster: app\n"
                 if ca else "      - cluster: app\n")
        listeners += (f"  - name: {name}\n    listen: 127.0.0.1:0\n"
                      f"    tls:\n        certificates:\n"
                      f"          - {{ cert_file: {p.a[0]}, key_file: {p.a[1]} }}\n{mtls}"
                      f"    routes:\n{route}")
    return ("workers: 2\nadmin: { listen: 127.0.0.1:0 }\naccess_log: { enabled: false }\n"
            "listeners:\n" + listeners +
            f"clusters:\n  - name: app\n    endpoints:\n      - address: {backend.address}\n")


class ResumptionTest(ProxyTestCase):
    """A TLS session (TLS 1.2 ticket or TLS 1.3 PSK) never carries a client past a listener's
    client-certificate policy: not from a public listener to a mutual-TLS one, not from one CA's
    listener to another's, not across a reload that replaced the CA (openssl s_client's
    -sess_out / -sess_in, the outside audit's reproduction)."""

    REQUEST = "GET /echo HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"

    def s_client(self, port, version, *args):
        out = subprocess.run(
            ["openssl", "s_client", version, "-connect", f"127.0.0.1:{port}", "-servername",
             "a.test", "-CAfile", pki().ca, "-ign_eof", *args],
            input=self.REQUEST, capture_output=True, text=True, timeout=30)
        served = re.search(r"^HTTP/1\.1 (\d+)", out.stdout, re.M)
        return ("Reused," in out.stdout, served.group(1) if served else None)

    def session(self, port, version, *args):
        path = os.path.join(pki().dir, f"session-{port}-{version}-{len(args)}.pem")
        reused, status = self.s_client(port, version, "-sess_out", path, *args)
        self.assertEqual((reused, status), (False, "200"))
        self.assertTrue(os.path.getsize(path) > 0)
        return path

    def test_sessions_stay_on_their_listener_and_ca(self):
        p = pki()
        b = self.backend("one")
        sy = self.switchyard(resumption_config(b, p.ca, p.other_ca),
                             listeners=("public", "mtls_a", "mtls_b"))
        public, a, b_port = sy.ports["public"], sy.ports["mtls_a"], sy.ports["mtls_b"]
        cert = ["-cert", p.client[0], "-key", p.client[1]]
        for version in ("-tls1_2", "-tls1_3"):
            # Resumption works where it belongs (so the refusals below are not vacuous).
            own = self.session(public, version)
            self.assertEqual(self.s_client(public, version, "-sess_in", own), (True, "200"))
            mine = self.session(a, version, *cert)
            self.assertEqual(self.s_client(a, version, "-sess_in", mine), (True, "200"),
                             "a session made with a certificate resumes on its own listener")
            # A public listener's session, offered without a certificate to mutual TLS: no
            # resumption, and no request served.
            public_session = self.session(public, version)
            self.assertEqual(self.s_client(a, version, "-sess_in", public_session),
                             (False, None), version)
            # A session verified under CA 1 (listener A) offered to listener B (CA 2).
            a_session = self.session(a, version, *cert)
            self.assertEqual(self.s_client(b_port, version, "-sess_in", a_session),
                             (False, None), version)
        # A reload that replaces listener A's CA: sessions made under the old CA are refused.
        before = {v: self.session(a, v, *cert) for v in ("-tls1_2", "-tls1_3")}
        sy.rewrite_config(resumption_config(b, p.other_ca, p.other_ca))
        sy.signal(signal.SIGHUP)
        sy.wait_for_line(r"reload succeeded")
        for version, path in before.items():
            self.assertEqual(self.s_client(a, version, "-sess_in", path), (False, None), version)


class UpstreamTlsTest(ProxyTestCase):
    def test_tls_and_mtls_to_a_tls_backend_with_health_checks(self):
        p = pki()
        cert, key = p.backend
        b = self.backend("secure", extra=["--tls-cert", cert, "--tls-key", key,
                                          "--tls-client-ca", p.ca, "--log-requests"])
        checks = ("    health_check: { path: /healthz, interval: 200ms, timeout: 1s,"
                  " healthy_threshold: 1 }\n")
        ctls = (f"    tls: {{ sni: backend.test, ca_file: {p.ca},"
                f" cert_file: {p.client[0]}, key_file: {p.client[1]} }}\n")
        sy = self.switchyard(tls_config(b, [p.a], cluster_tls=ctls + checks),
                             listeners=("ingress", "plain"))

        def healthy():
            doc = json.loads(admin(sy, "GET", "/admin/clusters")[2])
            return doc["clusters"][0]["endpoints"][0]["healthy"]
        self.assertIsNotNone(wait_for(healthy, 10), "health checks over mutual TLS")
        conn = http.client.HTTPConnection("127.0.0.1", sy.ports["plain"], timeout=10)
        for _ in range(20):  # pooled TLS connections are reused
            conn.request("GET", "/echo")
            res = conn.getresponse()
            res.read()
            self.assertEqual(res.status, 200)
        conn.close()
        m = b.wait_for_line(r"tls peer (.*)")
        self.assertIn("CN=web client", m.group(1))
        handshakes = sum(1 for line in b.stdout if line.startswith("tls peer"))
        self.assertLess(handshakes, 12, "TLS connections to the endpoint are not reused")

    def test_verification_refuses_a_wrong_name_or_ca(self):
        p = pki()
        cert, key = p.backend
        b = self.backend("secure", extra=["--tls-cert", cert, "--tls-key", key])
        for tls in (f"{{ sni: wrong.test, ca_file: {p.ca} }}",
                    f"{{ sni: backend.test, ca_file: {p.other_ca} }}"):
            sy = self.switchyard(tls_config(b, [p.a], cluster_tls=f"    tls: {tls}\n"),
                                 listeners=("ingress", "plain"))
            conn = http.client.HTTPConnection("127.0.0.1", sy.ports["plain"], timeout=10)
            conn.request("GET", "/")
            self.assertEqual(conn.getresponse().status, 502, tls)
            sy.stop()
        sy = self.switchyard(tls_config(b, [p.a], cluster_tls="    tls: { verify: false }\n"),
                             listeners=("ingress", "plain"))
        conn = http.client.HTTPConnection("127.0.0.1", sy.ports["plain"], timeout=10)
        conn.request("GET", "/")
        self.assertEqual(conn.getresponse().status, 200)


class TlsReloadTest(ProxyTestCase):
    def test_reload_swaps_the_certificate_and_keeps_open_connections(self):
        p = pki()
        b = self.backend("one")
        sy = self.switchyard(tls_config(b, [p.a]), listeners=("ingress", "plain"))
        port = sy.ports["ingress"]
        ctx = client_context(p.ca)
        status, _, _, conn = https(port, "a.test", ctx)  # a keep-alive connection
        self.assertEqual(status, 200)
        first = conn.sock.getpeercert(binary_form=True)
        sy.rewrite_config(tls_config(b, [p.a2]))
        sy.signal(signal.SIGHUP)
        sy.wait_for_line(r"reload succeeded")
        # New connections get the new certificate; the open one goes on.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="a.test") as s:
                self.assertNotEqual(s.getpeercert(binary_form=True), first)
        status, _, _, _ = https(port, "a.test", ctx, conn=conn)
        self.assertEqual(status, 200)
        conn.close()
        # A reload with a key that does not match its certificate changes nothing, and says
        # where.
        bad = tls_config(b, [(p.a[0], p.b[1])])
        sy.rewrite_config(bad)
        status, _, body = admin(sy, "POST", "/admin/reload")
        self.assertEqual(status, 422, body)
        self.assertRegex(json.loads(body)["errors"][0],
                         r"\.yaml:\d+:\d+: listeners\[0\]\.tls\.certificates\[0\]: the key in")
        self.assertEqual(https(port, "a.test", ctx)[0], 200)
        check = subprocess.run([sy.args[0], "--check", "--config", sy.config_path],
                               capture_output=True, text=True, timeout=30)
        self.assertEqual(check.returncode, 1)
        self.assertIn("does not match the certificate", check.stderr)


if __name__ == "__main__":
    unittest.main()
