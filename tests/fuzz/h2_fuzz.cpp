// libFuzzer target: arbitrary bytes into switchyard's own HTTP/2 sessions, through their real
// nghttp2 callbacks and on a real worker's event loop (nothing mocked but the peer):
// - server side (first byte even): an H2Session on one end of a socketpair gets the client
//   preface and the input as what the client sent, with the flood, reset, CONTINUATION and
//   stalled-body defences, the in-flight cap and the request-body timeout as configured; every
//   complete request is planned, routed and started like a real one (its endpoint refuses the
//   connection, so each ends in a 502 or a retry, without leaving the loopback);
// - client side (first byte odd): an H2Client that submitted two requests (one with a body)
//   gets the input as what the endpoint answered: response heads, DATA, trailers, resets,
//   GOAWAY and SETTINGS through its pending-stream bookkeeping, window handling and delivery.
// The loop runs until it has nothing more to do (bounded), then the connection is closed and
// everything it held must be released. Build: cmake -DSWITCHYARD_FUZZ=ON
// -DCMAKE_CXX_COMPILER=clang++ (make fuzz-build).
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "downstream/h2_session.h"
#include "switchyard/balancer/policy.h"
#include "switchyard/common/logging.h"
#include "switchyard/config/loader.h"
#include "switchyard/control/runtime.h"
#include "upstream/h2_client.h"
#include "upstream/upstream_pools.h"
#include "worker/worker.h"

using namespace switchyard;

namespace {

constexpr const char* kConfig = R"(workers: 1
admin: { listen: 127.0.0.1:0 }
access_log: { enabled: false }
listeners:
  - name: ingress
    listen: 127.0.0.1:0
    protocols: [h2, http1]
    limits: { max_concurrent_streams: 16, max_requests_in_flight: 4, request_body_timeout: 1s }
    routes:
      - match: { path_prefix: /grpc }
        cluster: app
        timeout: 0s
      - cluster: app
clusters:
  - name: app
    circuit_breaker: { consecutive_failures: 0 }
    endpoints:
      - address: 127.0.0.1:1
)";

// What the client side's stream owner is told; it takes every piece at once.
struct Owner final : proxy::H2ClientStream {
  std::shared_ptr<proxy::H2Client> client;
  int32_t id = 0;
  bool closed = false;
  size_t body_sent = 0;
  size_t got = 0;
  void h2_ready(bool) override {}
  void h2_header(std::string_view n, std::string_view v) override { got += n.size() + v.size(); }
  void h2_headers_end() override {}
  void h2_data(const uint8_t*, size_t size) override { got += size; }
  void h2_end_stream() override {}
  void h2_closed(uint32_t) override { closed = true; }
  void h2_deliver() override {
    if (got > 0 && !closed && id > 0) client->consume(id, got);
    got = 0;
  }
  ssize_t h2_read_body(uint8_t* buf, size_t length, uint32_t* flags) override {
    const size_t n = std::min<size_t>(length, 300 - body_sent);
    std::memset(buf, 'b', n);
    body_sent += n;
    if (body_sent == 300) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }
};

struct Env {
  Env() : runtime(control), worker(0, shared) {
    std::signal(SIGPIPE, SIG_IGN);  // as the daemon: a peer that left is an error code
    logs::init("error");
    worker.set_upstream(std::make_unique<proxy::UpstreamPools>(worker));
    auto loaded = config::load_string(kConfig, "fuzz.yaml", balancer::schema());
    if (!loaded.ok()) std::abort();
    auto snapshot = runtime.apply(loaded.config);
    worker.publish(snapshot, stats.build(snapshot));
    run();
  }
  // Runs the worker's loop until it is idle (bounded: a hostile input cannot spin it).
  void run() {
    for (int i = 0; i < 256 && worker.ioc().poll() > 0; ++i) {
    }
    worker.ioc().restart();
  }
  boost::asio::io_context control;
  control::Runtime runtime;
  proxy::StatsRegistry stats;
  proxy::SharedCounters shared{1};
  proxy::Worker worker;
};

Env& env() {
  static Env* e = new Env();  // never destroyed: the worker's handlers may outlive an input
  return *e;
}

proxy::Socket adopt(Env& e, int fd) {
  proxy::Socket s(e.worker.ioc().get_executor());
  boost::system::error_code ec;
  s.assign(boost::asio::ip::tcp::v4(), fd, ec);
  return s;
}

void write_all(int fd, const uint8_t* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) return;  // the session closed its end (a GOAWAY and close): fine
    data += n;
    size -= static_cast<size_t>(n);
  }
}

void drain(int fd) {
  uint8_t buf[65536];
  while (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
  }
}

void server_side(Env& e, const uint8_t* data, size_t size) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return;
  proxy::ClientIdentity id{"192.0.2.1", *IpAddress::parse("192.0.2.1"), {}, {}};
  auto session = std::make_shared<proxy::H2Session>(e.worker, 0, proxy::Stream(adopt(e, fds[0])),
                                                    proxy::ConnectionSlot(), std::move(id));
  static const std::string kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  session->start(kPreface);
  e.run();
  // The rest in two writes, as a socket might deliver it.
  const size_t half = size / 2;
  write_all(fds[1], data, half);
  e.run();
  drain(fds[1]);
  write_all(fds[1], data + half, size - half);
  e.run();
  drain(fds[1]);
  ::close(fds[1]);  // the client leaves: everything the session holds must be let go
  e.run();
  session->abort();
  session.reset();
  e.run();
}

void client_side(Env& e, const uint8_t* data, size_t size) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return;
  auto client =
      std::make_shared<proxy::H2Client>(e.worker, SocketAddress{}, "fuzz", nullptr,
                                        std::chrono::seconds(1), std::chrono::seconds(10));
  client->start_connected(adopt(e, fds[0]));
  Owner get, post;
  get.client = post.client = client;
  const nghttp2_nv nv[] = {{(uint8_t*)":method", (uint8_t*)"GET", 7, 3, 0},
                           {(uint8_t*)":path", (uint8_t*)"/", 5, 1, 0},
                           {(uint8_t*)":scheme", (uint8_t*)"http", 7, 4, 0},
                           {(uint8_t*)":authority", (uint8_t*)"a", 10, 1, 0}};
  get.id = client->submit(nv, 4, false, &get);
  nghttp2_nv post_nv[4];
  std::memcpy(post_nv, nv, sizeof nv);
  post_nv[0].value = (uint8_t*)"POST";
  post_nv[0].valuelen = 4;
  post.id = client->submit(post_nv, 4, true, &post);
  client->flush();
  e.run();
  drain(fds[1]);
  // The endpoint's side: its SETTINGS first (the connection preface of a server), then the
  // input in two writes.
  static const uint8_t kSettings[] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
  write_all(fds[1], kSettings, sizeof kSettings);
  const size_t half = size / 2;
  write_all(fds[1], data, half);
  e.run();
  drain(fds[1]);
  // The owners give up their streams, as attempts do when their client leaves.
  client->cancel(get.id, &get);
  write_all(fds[1], data + half, size - half);
  e.run();
  client->cancel(post.id, &post);
  ::close(fds[1]);
  e.run();
  client->close();
  client.reset();
  get.client.reset();
  post.client.reset();
  e.run();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Env& e = env();
  if ((data[0] & 1) == 0) {
    server_side(e, data + 1, size - 1);
  } else {
    client_side(e, data + 1, size - 1);
  }
  return 0;
}
