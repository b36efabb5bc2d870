#!/usr/bin/env python3
"""Sends the same raw requests to switchyard, HAProxy and NGINX (each proxying to one
demo_backend on 127.0.0.1) and prints, per case, the status codes each answers; after each case
the same connection carries a second request (GET /smuggled): "SMUGGLED" marks a proxy that
forwarded it to the backend without answering it to the client, "(2nd forwarded)" one that
accepted the first request leniently and answered the second as an ordinary pipelined request. Needs haproxy and nginx installed (apt-get install
haproxy nginx-light) and a built tree (make). Usage: tests/bench/wire_compare.py"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import Backend, Switchyard, config, free_port  # noqa: E402
from test_wire import CASES, SMUGGLED  # noqa: E402

EXTRA = [
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400),
    ("duplicate host", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("missing host (1.1)", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("target 3 KiB", b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 200),
    ("target 10 KiB", b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ("head 20 KiB", b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 431),
    ("target 20 KiB", b"GET /" + b"a" * 20480 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ("cookie 10 KiB", b"GET / HTTP/1.1\r\nHost: x\r\nCookie: s=" + b"c" * 10240 + b"\r\n\r\n", 200),
    ("12 KiB of headers", b"GET / HTTP/1.1\r\nHost: x\r\n" +
     b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 4000) for i in range(3)) + b"\r\n", 200),
    ("connection: content-length", b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: Content-Length"
     b"\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED, 400),
]


def exchange(port, data, timeout=3):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    lines = [l for l in out.split(b"\r\n") if l.startswith(b"HTTP/1.")]
    if not lines:
        return "(closed, no response)" if not out else "(no status line)"
    return " + ".join(l[9:12].decode() for l in lines)


def main():
    for tool in ("haproxy", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"missing {tool}: apt-get install haproxy nginx-light")
    work = tempfile.mkdtemp(prefix="wire_compare.")
    backend = Backend("b", extra=("--log-requests",))
    sy = Switchyard(config([backend]))
    hp_port, ng_port = free_port(), free_port()
    with open(f"{work}/haproxy.cfg", "w") as f:
        f.write(f"""global
  maxconn 100
defaults
  mode http
  timeout connect 2s
  timeout client 5s
  timeout server 5s
frontend fe
  bind 127.0.0.1:{hp_port}
  default_backend be
backend be
  server b {backend.address}
""")
    with open(f"{work}/nginx.conf", "w") as f:
        f.write(f"""daemon off; worker_processes 1; pid {work}/nginx.pid; error_log {work}/nginx.err;
events {{ worker_connections 128; }}
http {{ access_log off; client_body_temp_path {work};
  server {{ listen 127.0.0.1:{ng_port};
    location / {{ proxy_pass http://{backend.address}; proxy_http_version 1.1;
                 proxy_set_header Connection ""; }} }} }}
""")
    procs = [subprocess.Popen(["haproxy", "-f", f"{work}/haproxy.cfg"], stderr=subprocess.DEVNULL),
             subprocess.Popen(["nginx", "-c", f"{work}/nginx.conf"], stderr=subprocess.DEVNULL)]
    time.sleep(0.7)
    try:
        print("| case | switchyard | HAProxy 2.6 | NGINX 1.22 |")
        print("|---|---|---|---|")
        for name, data, _ in CASES + EXTRA:
            smuggle = SMUGGLED if (name, data) in [(c[0], c[1]) for c in CASES] else b""
            row = []
            for port in (sy.port, hp_port, ng_port):
                before = sum("smuggled" in l for l in backend.stdout)
                result = exchange(port, data + smuggle)
                time.sleep(0.05)
                if sum("smuggled" in l for l in backend.stdout) > before:
                    # The second request reached the backend: smuggled if the client did not
                    # get a response for it, merely pipelined (leniently) if it did.
                    result += " (2nd forwarded)" if "+" in result else " SMUGGLED"
                row.append(result)
            print(f"| {name} | " + " | ".join(row) + " |")
    finally:
        for p in procs:
            p.terminate()
        sy.stop()
        backend.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
