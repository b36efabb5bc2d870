"""A small Kubernetes API server for the EndpointSlice source's tests (no real one can be
installed here). It speaks the part of the API the source uses, as the Kubernetes API
documents it (https://kubernetes.io/docs/reference/using-api/api-concepts/):

- GET /apis/discovery.k8s.io/v1/namespaces/NS/endpointslices?labelSelector=
  kubernetes.io/service-name%3DSVC&limit=N[&continue=T]: an EndpointSliceList, a page at a
  time (`page_size` caps the page below the client's limit, as a server may), with the
  list's resourceVersion and a `continue` token while pages remain;
- the same with watch=1&resourceVersion=RV&allowWatchBookmarks=true&timeoutSeconds=S: HTTP/1.1
  chunked, one JSON event per line (ADDED / MODIFIED / DELETED / BOOKMARK), every change after
  RV; a watch from a version older than the oldest kept answers an ERROR event with a 410
  Status (or, with `gone_as_status`, an HTTP 410), as the API server does once its watch
  cache moved on;
- Bearer token authentication (401 Status otherwise), and on demand any status for every
  request (`fail_with`), watches that break in the middle of a line (`break_watches`),
  events written a few bytes at a time (`dribble`), watches held without events (`pause`).

Every request is recorded (path, query, Authorization) for the tests to check.
"""
import http.server
import json
import socket
import ssl
import threading
import time
import urllib.parse

GROUP = "/apis/discovery.k8s.io/v1/namespaces/"


def status_object(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def endpoint(ip, ready=True, serving=None, terminating=None, zone=None, node=None):
    conditions = {}
    if ready is not None:
        conditions["ready"] = ready
    if serving is not None:
        conditions["serving"] = serving
    if terminating is not None:
        conditions["terminating"] = terminating
    out = {"addresses": [ip], "conditions": conditions}
    if zone:
        out["zone"] = zone
    if node:
        out["nodeName"] = node
    return out


class FakeKubeAPI:
    def __init__(self, token="secret-token", tls=None, page_size=None, watch_seconds_cap=None):
        self.cv = threading.Condition()
        self.token = token
        self.rv = 1000
        self.oldest = 0           # watches from a version below this get 410
        self.slices = {}          # (namespace, name) -> EndpointSlice
        self.log = []             # (rv, namespace, type, object), in order
        self.requests = []        # dicts: path, query, authorization, watch
        self.fail = None          # (code, reason) answered to every request
        self.gone_as_status = False
        self.paused = False
        self.dribble = False
        self.page_size = page_size
        self.watch_seconds_cap = watch_seconds_cap
        self.generation = 0       # bumped by break_watches
        self.open_watches = 0
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                api._serve(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        with self.cv:
            self.generation += 1
            self.cv.notify_all()
        self.server.shutdown()
        self.server.server_close()

    # --- what the tests change -------------------------------------------------------------
    def put_slice(self, name, endpoints, ports=(("http", 80),), service="app",
                  namespace="default", address_type="IPv4"):
        with self.cv:
            self.rv += 1
            key = (namespace, name)
            kind = "MODIFIED" if key in self.slices else "ADDED"
            obj = {
                "kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
                "metadata": {"name": name, "namespace": namespace,
                             "resourceVersion": str(self.rv),
                             "labels": {"kubernetes.io/service-name": service}},
                "addressType": address_type,
                "endpoints": list(endpoints),
                "ports": [{"name": n, "port": p, "protocol": "TCP"} for n, p in ports],
            }
            self.slices[key] = obj
            self.log.append((self.rv, namespace, kind, obj))
            self.cv.notify_all()

    def delete_slice(self, name, namespace="default"):
        with self.cv:
            self.rv += 1
            obj = dict(self.slices.pop((namespace, name)))
            obj["metadata"] = dict(obj["metadata"], resourceVersion=str(self.rv))
            self.log.append((self.rv, namespace, "DELETED", obj))
            self.cv.notify_all()

    def bookmark(self, namespace="default"):
        with self.cv:
            self.rv += 1  # other objects moved the store's version on
            obj = {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
                   "metadata": {"resourceVersion": str(self.rv)}}
            self.log.append((self.rv, namespace, "BOOKMARK", obj))
            self.cv.notify_all()
            return self.rv

    def compact(self):
        """Forgets every event so far: a watch from an older version gets 410."""
        with self.cv:
            self.oldest = self.rv
            self.log = []

    def break_watches(self):
        with self.cv:
            self.generation += 1
            self.cv.notify_all()

    def set(self, **kwargs):
        with self.cv:
            for k, v in kwargs.items():
                setattr(self, k, v)
            self.cv.notify_all()

    def requests_of(self, watch):
        with self.cv:
            return [r for r in self.requests if r["watch"] == watch]

    # --- serving ---------------------------------------------------------------------------
    def _serve(self, h):
        url = urllib.parse.urlsplit(h.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        watch = query.get("watch") in ("1", "true")
        with self.cv:
            self.requests.append({"path": url.path, "query": query, "watch": watch,
                                  "authorization": h.headers.get("Authorization")})
            fail = self.fail
        if fail:
            return self._status(h, *fail)
        if self.token and h.headers.get("Authorization") != f"Bearer {self.token}":
            return self._status(h, 401, "Unauthorized")
        parts = url.path[len(GROUP):].split("/") if url.path.startswith(GROUP) else []
        if len(parts) != 2 or parts[1] != "endpointslices":
            return self._status(h, 404, "NotFound")
        namespace = parts[0]
        selector = query.get("labelSelector", "")
        if not selector.startswith("kubernetes.io/service-name="):
            return self._status(h, 400, "BadRequest", "the source must select by service name")
        service = selector.split("=", 1)[1]
        if watch:
            return self._watch(h, namespace, service, query)
        return self._list(h, namespace, service, query)

    def _matches(self, obj, namespace, service):
        md = obj["metadata"]
        return (md.get("namespace", namespace) == namespace and
                md.get("labels", {}).get("kubernetes.io/service-name", service) == service)

    def _send_json(self, h, code, obj):
        body = json.dumps(obj).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _status(self, h, code, reason, message=None):
        self._send_json(h, code, status_object(code, reason, message or reason))

    def _list(self, h, namespace, service, query):
        limit = int(query.get("limit", "0") or 0)
        if self.page_size:
            limit = min(limit, self.page_size) if limit else self.page_size
        with self.cv:
            if "continue" in query:
                version, start = query["continue"].split(":")
                start = int(start)
            else:
                version, start = str(self.rv), 0
            items = sorted((o for (ns, _), o in self.slices.items()
                            if ns == namespace and self._matches(o, namespace, service)),
                           key=lambda o: o["metadata"]["name"])
        page = items[start:start + limit] if limit else items[start:]
        metadata = {"resourceVersion": version}
        if limit and start + limit < len(items):
            metadata["continue"] = f"{version}:{start + limit}"
        self._send_json(h, 200, {"kind": "EndpointSliceList", "apiVersion": "discovery.k8s.io/v1",
                                 "metadata": metadata, "items": page})

    def _watch(self, h, namespace, service, query):
        since = int(query.get("resourceVersion") or 0)
        seconds = float(query.get("timeoutSeconds", "1800"))
        if self.watch_seconds_cap:
            seconds = min(seconds, self.watch_seconds_cap)
        with self.cv:
            too_old = since < self.oldest
            gone_as_status = self.gone_as_status
        if too_old and gone_as_status:
            return self._status(h, 410, "Expired", f"too old resource version: {since}")
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        h.wfile.flush()
        if too_old:
            self._event(h, {"type": "ERROR", "object": status_object(
                410, "Expired", f"too old resource version: {since} ({self.oldest})")})
            return self._end(h)
        deadline = time.monotonic() + seconds
        with self.cv:
            generation = self.generation
            self.open_watches += 1
        try:
            while True:
                with self.cv:
                    while True:
                        if self.generation != generation:
                            return self._break(h)
                        if time.monotonic() >= deadline:
                            return self._end(h)
                        pending = [] if self.paused else [
                            (rv, kind, obj) for rv, ns, kind, obj in self.log
                            if rv > since and ns == namespace and
                            (kind == "BOOKMARK" or self._matches(obj, namespace, service))]
                        if pending:
                            break
                        self.cv.wait(timeout=min(0.2, max(0.01, deadline - time.monotonic())))
                    dribble = self.dribble
                for rv, kind, obj in pending:
                    self._event(h, {"type": kind, "object": obj}, dribble)
                    since = rv
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            h.close_connection = True
        finally:
            with self.cv:
                self.open_watches -= 1

    def _event(self, h, event, dribble=False):
        line = (json.dumps(event) + "\n").encode()
        if not dribble:
            h.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            h.wfile.flush()
            return
        for i in range(0, len(line), 7):  # 7 bytes a chunk, 5 ms apart
            piece = line[i:i + 7]
            h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            h.wfile.flush()
            time.sleep(0.005)

    def _end(self, h):
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()

    def _break(self, h):
        """Half an event, then the connection goes (a proxy or API server restart)."""
        try:
            h.wfile.write(b"40\r\n{\"type\":\"MODIFIED\",\"obj")
            h.wfile.flush()
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        h.close_connection = True
