"""A real gRPC server and client (Debian's python3-grpcio) for the HTTP/2 tests.

No generated code: methods are generic handlers over raw bytes, so the messages are just the
bytes the test chooses. Run as a server:
    grpc_peer.py serve PORT NAME [--orca CPU] [--tls CERT KEY]
  /test.Echo/Unary         -> b"NAME:" + request; trailing metadata x-served-by: NAME
  /test.Echo/Stream        -> 3 messages b"NAME:i", same trailers
  /test.Echo/Fail          -> status UNAVAILABLE, details "NAME is down"
  /test.Echo/Slow          -> sleeps 2 s, then answers (for deadlines)
  /test.Echo/Collect       -> client streaming: b"NAME:" + the number of messages and bytes
  /test.Echo/Chat          -> bidirectional: each message answered at once by b"NAME:" + it
  /test.Echo/Ticks         -> server streaming, long-lived: b"COUNT GAP" asks for COUNT
                              messages b"NAME:i", GAP seconds apart
  /grpc.health.v1.Health/Check -> HealthCheckResponse{status: SERVING} (or NOT_SERVING while
                                 the file down_file(PORT) exists, in the temporary directory)
With --orca CPU every unary answer carries endpoint-load-metrics-bin (an OrcaLoadReport with
cpu_utilization CPU) in its trailers. With --tls the server speaks TLS (h2 by ALPN) with that
certificate.
"""
import os
import struct
import sys
import tempfile
import time
from concurrent import futures

import grpc


def orca_report(cpu):
    # OrcaLoadReport: field 1 (cpu_utilization, double) and 2 (mem_utilization, double).
    return b"\x09" + struct.pack("<d", cpu) + b"\x11" + struct.pack("<d", 0.1)


def serve(port, name, orca, tls):
    def trailers(context):
        md = [("x-served-by", name)]
        if orca is not None:
            md.append(("endpoint-load-metrics-bin", orca_report(orca)))
        context.set_trailing_metadata(md)

    def unary(request, context):
        trailers(context)
        return name.encode() + b":" + request

    def stream(request, context):
        trailers(context)
        for i in range(3):
            yield f"{name}:{i}".encode()

    def fail(request, context):
        context.abort(grpc.StatusCode.UNAVAILABLE, f"{name} is down")

    def slow(request, context):
        time.sleep(2)
        return b"late"

    def collect(requests, context):
        trailers(context)
        n = size = 0
        for r in requests:
            n += 1
            size += len(r)
        return f"{name}:{n}:{size}".encode()

    def chat(requests, context):
        trailers(context)
        for r in requests:
            yield name.encode() + b":" + r

    def ticks(request, context):
        trailers(context)
        count, gap = request.split()
        for i in range(int(count)):
            if i:
                time.sleep(float(gap))
            yield f"{name}:{i}".encode()

    def health(request, context):
        down = os.path.exists(down_file(port))
        return b"\x08\x02" if down else b"\x08\x01"

    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Stream": grpc.unary_stream_rpc_method_handler(stream),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
        "Collect": grpc.stream_unary_rpc_method_handler(collect),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
        "Ticks": grpc.unary_stream_rpc_method_handler(ticks),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=(
        ("grpc.max_receive_message_length", 64 << 20),
        ("grpc.max_send_message_length", 64 << 20)))
    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler("test.Echo", handlers),
        grpc.method_handlers_generic_handler(
            "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(health)}),
    ))
    if tls:
        with open(tls[0], "rb") as c, open(tls[1], "rb") as k:
            creds = grpc.ssl_server_credentials(((k.read(), c.read()),))
        server.add_secure_port(f"127.0.0.1:{port}", creds)
    else:
        server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print("ready", flush=True)
    server.wait_for_termination()


def down_file(port):
    """The file whose presence makes the server on PORT answer health checks NOT_SERVING
    (outside the source tree: tests run with their folder as the working directory)."""
    return os.path.join(tempfile.gettempdir(), f"switchyard-grpc-peer-{port}.down")


def main():
    if sys.argv[1] == "serve":
        orca = float(sys.argv[sys.argv.index("--orca") + 1]) if "--orca" in sys.argv else None
        tls = sys.argv[sys.argv.index("--tls") + 1:][:2] if "--tls" in sys.argv else None
        serve(int(sys.argv[2]), sys.argv[3], orca, tls)


if __name__ == "__main__":
    main()
