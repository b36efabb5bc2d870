"""Test certificates made at test time with the openssl command: a test CA, server
certificates for two SNI names (one a wildcard), a client certificate with a SPIFFE URI SAN,
and a client certificate from another CA. ECDSA P-256 throughout."""
import os
import subprocess
import tempfile


def _run(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


class TestPKI:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="switchyard-pki-")
        d = self.dir
        self.ca = self._ca("ca", "switchyard test CA")
        self.other_ca = self._ca("other-ca", "another CA")
        self.a = self._leaf("a", "a.test", "DNS:a.test", "ca")
        self.b = self._leaf("b", "*.b.test", "DNS:*.b.test", "ca")
        self.a2 = self._leaf("a2", "a.test", "DNS:a.test", "ca")  # a second cert for a.test
        self.backend = self._leaf("backend", "backend.test", "DNS:backend.test,IP:127.0.0.1", "ca")
        self.client = self._leaf("client", "web client", "URI:spiffe://test/ns/web/sa/client",
                                 "ca", client=True)
        self.other_client = self._leaf("other", "intruder", "URI:spiffe://test/ns/web/sa/client",
                                       "other-ca", client=True)
        self.path = lambda name: os.path.join(d, name)

    def _ca(self, name, cn):
        _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={cn}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)
        return os.path.join(self.dir, f"{name}.pem")

    def client_with_uri(self, name, uri):
        """A client certificate (signed by the test CA) whose one URI SAN is `uri` as given,
        bytes and all: the SAN is written as raw DER, so it may hold what openssl's config
        syntax cannot (CR LF, quotes)."""
        def der(tag, body):
            n = len(body)
            length = bytes([n]) if n < 128 else bytes([0x81, n]) if n < 256 else \
                bytes([0x82, n >> 8, n & 0xff])
            return bytes([tag]) + length + body
        san = der(0x30, der(0x86, uri.encode("latin-1"))).hex()
        return self._leaf(name, "odd client", f"DER:{san}", "ca", client=True)

    def _leaf(self, name, cn, san, ca, client=False):
        _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/O=switchyard/CN={cn}",
             cwd=self.dir)
        ext = os.path.join(self.dir, f"{name}.ext")
        with open(ext, "w") as f:
            f.write(f"subjectAltName={san}\n"
                    f"extendedKeyUsage={'clientAuth' if client else 'serverAuth'}\n")
        _run("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", ext,
             cwd=self.dir)
        return (os.path.join(self.dir, f"{name}.pem"), os.path.join(self.dir, f"{name}.key"))


_SHARED = None


def shared_pki():
    """One TestPKI for a whole test module (making one takes a second of openssl)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = TestPKI()
    return _SHARED
