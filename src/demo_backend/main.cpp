// demo_backend: a small HTTP/1.1 server for the demo and the integration tests.
//
//   GET  /                 "hello from NAME (region REGION)"; --latency-ms, --error-rate apply
//   GET  /healthz          200, or 500 while failing (--fail-health, or /control/health?fail=1)
//   ANY  /echo...          echoes the request body back; X-Echo-* headers describe the request
//   GET  /bytes?n=N        N bytes of a fixed pattern (byte i = 'a' + i % 26), streamed; &chunked=1
//   POST /discard          reads and drops the body (any size), answers X-Received-Length
//   GET  /sleep?ms=N       answers after N ms
//   GET  /status?code=N    answers with status N
//   GET  /control/health?fail=0|1   flips /healthz at run time
//   GET  /control/errors?rate=F     sets the --error-rate of / at run time
//   GET  /control/load?cpu=F&mem=F  reports these static values from now on
//   GET  /control/latency?ms=N      delays every answer by N more ms from now on (/healthz too:
//                                   a host that slows down)
//
// --log-requests prints "HEADERS METHOD TARGET" for each request head and "REQUEST METHOD
// TARGET" for each whole request received.
// Every response carries X-Backend-Name and X-Backend-Region. Load reports
// (`endpoint-load-metrics: TEXT cpu_utilization=..., mem_utilization=...`, or JSON with
// --report-json) go on every response:
//   --cpu F / --mem F   static values;
//   --load              synthetic: cpu = base + (1 - 1/handicap) + in-flight / capacity
//                       (base = --cpu or 0.05, capacity = --capacity, default 100), mem =
//                       --mem or 0.3: the report follows the work the backend really has.
// --handicap F: a backend with only 1/F of its CPU (a noisy neighbour has the rest): the
// latency of / (--latency-ms) is F times longer and the synthetic CPU report includes the
// neighbour's share (1 - 1/F).
// --slots N: at most N requests of / at once, the rest queue; reports cpu = busy slots / N.
// --idle-close-ms N closes a keep-alive connection N ms after its last answer (gunicorn's 2 s
// keep-alive timeout, shorter).
// --rtt-ms N delays every response by N ms (/healthz and /control included): a backend that
// far away on the network, for the geographic tests.
// --latency-follows cpu|mem with --latency-scale MS: / takes MS x the reported CPU (or memory)
// more: a backend whose latency that signal drives (the adaptive-weights tests).
// Prints "demo_backend NAME listening on HOST:PORT" once ready (port 0 picks a free port).

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/crc.hpp>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <deque>
#include <iostream>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

struct Options {
  std::string listen = "127.0.0.1:0";
  std::string name = "backend";
  std::string region = "local";
  int latency_ms = 0;
  double error_rate = 0;
  double cpu = -1;
  double mem = -1;
  bool fail_health = false;
  bool log_requests = false;
  int threads = 1;
  bool synthetic_load = false;
  bool report_json = false;
  double handicap = 1;
  double capacity = 100;
  int rtt_ms = 0;
  int idle_close_ms = 0;
  int slots = 0;
  std::string latency_follows;  // "", "cpu" or "mem"
  double latency_scale = 0;
  std::string tls_cert;  // --tls-cert/--tls-key: serve HTTPS
  std::string tls_key;
  std::string tls_client_ca;  // --tls-client-ca: require a client certificate from these CAs
};

std::atomic<bool> g_fail_health{false};
std::atomic<double> g_cpu{-1};  // static reported values (--cpu/--mem, /control/load)
std::atomic<double> g_mem{-1};
std::atomic<int> g_in_flight{0};
std::atomic<bool> g_synthetic{false};
std::atomic<double> g_error_rate{0};
std::atomic<int> g_extra_ms{0};  // /control/latency
Options g_opt;
// A request waiting for a --slots slot.
class Slotted {
 public:
  virtual ~Slotted() = default;
  virtual void take_slot() = 0;  // any thread: the slot is this request's now
};
std::mutex g_slots_mutex;  // --slots (the demo backend may run several threads)
int g_busy_slots = 0;
std::deque<std::shared_ptr<Slotted>> g_slot_queue;

std::string_view query_param(std::string_view target, std::string_view name) {
  auto q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    auto eq = item.find('=');
    if (item.substr(0, eq) == name) {
      return eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
    }
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
  }
  return {};
}

uint64_t to_u64(std::string_view s, uint64_t fallback) {
  uint64_t v = fallback;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// One client connection, over plain TCP or TLS (--tls-cert).
template <typename Stream>
class Session : public Slotted, public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <typename... Args>
  explicit Session(tcp::socket socket, Args&... tls)
      : stream_(std::move(socket), tls...), timer_(stream_.get_executor()) {
    buffer_.reserve(64 * 1024);  // Beast reads as much as the buffer has room for (else 512 B)
  }

  void start() {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      lowest().expires_after(std::chrono::seconds(10));
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) {
                                  if (g_opt.log_requests) {
                                    std::printf("tls handshake failed: %s\n", ec.message().c_str());
                                    std::fflush(stdout);
                                  }
                                  return;
                                }
                                self->log_peer();
                                self->read();
                              });
    } else {
      read();
    }
  }

  void take_slot() override {
    has_slot_ = true;  // the slot passes on
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] { self->serve(); });
  }

 private:
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  // --log-requests: the client certificate's subject, once per connection.
  void log_peer() {
    if (!g_opt.log_requests) return;
    X509* cert = SSL_get1_peer_certificate(stream_.native_handle());
    char subject[256] = "none";
    if (cert != nullptr) {
      X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
      X509_free(cert);
    }
    std::printf("tls peer %s\n", subject);
    std::fflush(stdout);
  }

 public:
 private:
  // The head first: /discard streams its body away (any size), everything else reads the
  // body whole (up to 64 MiB).
  void read() {
    head_parser_.emplace();
    head_parser_->body_limit(boost::none);
    head_parser_->header_limit(64 * 1024);  // big heads are for the proxy to judge
    // --idle-close-ms: a keep-alive timeout as short as gunicorn's or Node's (an idle
    // connection is closed that long after the last answer).
    lowest().expires_after(g_opt.idle_close_ms > 0 ? std::chrono::milliseconds(g_opt.idle_close_ms)
                                                   : std::chrono::milliseconds(60000));
    http::async_read_header(stream_, buffer_, *head_parser_,
                            [self = this->shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return;
                              self->on_header();
                            });
  }

  void on_header() {
    std::string_view target = head_parser_->get().target();
    if (g_opt.log_requests) {
      // A head received (its body may never complete): for tests of what reached the backend.
      std::string line = "HEADERS " + std::string(head_parser_->get().method_string()) + " " +
                         std::string(target) + "\n";
      std::fwrite(line.data(), 1, line.size(), stdout);
      std::fflush(stdout);
    }
    if (target.substr(0, target.find('?')) == "/discard") {
      discarded_ = 0;
      return discard();
    }
    parser_.emplace(std::move(*head_parser_));
    parser_->body_limit(64 * 1024 * 1024);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return;
                       self->handle();
                     });
  }

  // POST /discard: counts the body and throws it away as it arrives, then answers with the
  // count (X-Received-Length): an upload sink that holds no more than 64 KiB at a time.
  void discard() {
    if (head_parser_->is_done()) return answer_discard();
    auto& body = head_parser_->get().body();
    body.data = scratch_.data();
    body.size = scratch_.size();
    lowest().expires_after(std::chrono::seconds(60));
    http::async_read_some(stream_, buffer_, *head_parser_,
                          [self = this->shared_from_this()](beast::error_code ec, size_t) {
                            if (ec == http::error::need_buffer) ec = {};
                            if (ec) return;
                            self->discarded_ +=
                                self->scratch_.size() - self->head_parser_->get().body().size;
                            self->discard();
                          });
  }

  void answer_discard() {
    res_ = {};
    res_.version(11);
    res_.result(http::status::ok);
    res_.set("X-Backend-Name", g_opt.name);
    res_.set("X-Received-Length", std::to_string(discarded_));
    res_.body() = "discarded " + std::to_string(discarded_) + " bytes\n";
    res_.keep_alive(head_parser_->keep_alive());
    res_.prepare_payload();
    write();
  }

  // GET /bytes?n=N[&chunked=1]: N bytes of the pattern, streamed in blocks whatever N is (a
  // multi-gigabyte download costs 64 KiB of memory).
  void stream_bytes(uint64_t n, bool chunked, bool keep_alive, bool head_only) {
    std::string head = "HTTP/1.1 200 OK\r\nX-Backend-Name: " + g_opt.name +
                       "\r\nX-Backend-Region: " + g_opt.region + "\r\nContent-Type: text/plain\r\n";
    head += chunked ? "Transfer-Encoding: chunked\r\n"
                    : "Content-Length: " + std::to_string(n) + "\r\n";
    if (!keep_alive) head += "Connection: close\r\n";
    head += "\r\n";
    stream_head_ = std::move(head);
    stream_left_ = head_only ? 0 : n;
    stream_chunked_ = chunked && !head_only;
    stream_keep_alive_ = keep_alive;
    if (pattern_.empty()) {
      pattern_.resize(kPatternBlock);
      for (size_t i = 0; i < pattern_.size(); ++i) pattern_[i] = static_cast<char>('a' + i % 26);
    }
    if (in_flight_) {
      g_in_flight.fetch_sub(1, std::memory_order_relaxed);
      in_flight_ = false;
    }
    lowest().expires_after(std::chrono::seconds(60));
    asio::async_write(stream_, asio::buffer(stream_head_),
                      [self = this->shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) return;
                        self->stream_block();
                      });
  }

  void stream_block() {
    if (stream_left_ == 0) {
      if (stream_chunked_) {
        stream_chunked_ = false;
        asio::async_write(stream_, asio::buffer("0\r\n\r\n", 5),
                          [self = this->shared_from_this()](beast::error_code ec, size_t) {
                            if (!ec) self->stream_block();
                          });
        return;
      }
      if (!stream_keep_alive_) {
        beast::error_code ignored;
        lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
        return;
      }
      return read();
    }
    size_t n = static_cast<size_t>(std::min<uint64_t>(stream_left_, pattern_.size()));
    stream_left_ -= n;
    lowest().expires_after(std::chrono::seconds(60));
    if (stream_chunked_) {
      char line[24];
      int len = std::snprintf(line, sizeof(line), "%zx\r\n", n);
      chunk_line_.assign(line, static_cast<size_t>(len));
      std::array<asio::const_buffer, 3> bufs{
          asio::buffer(chunk_line_), asio::buffer(pattern_.data(), n), asio::buffer("\r\n", 2)};
      asio::async_write(stream_, bufs,
                        [self = this->shared_from_this()](beast::error_code ec, size_t) {
                          if (!ec) self->stream_block();
                        });
      return;
    }
    asio::async_write(stream_, asio::buffer(pattern_.data(), n),
                      [self = this->shared_from_this()](beast::error_code ec, size_t) {
                        if (!ec) self->stream_block();
                      });
  }

  void handle() {
    auto& req = parser_->get();
    std::string_view target = req.target();
    std::string_view path = target.substr(0, target.find('?'));
    if (g_opt.log_requests) {
      // One line per request received, for tests that prove what did (not) reach the backend.
      std::string line =
          "REQUEST " + std::string(req.method_string()) + " " + std::string(target) + "\n";
      std::fwrite(line.data(), 1, line.size(), stdout);
      std::fflush(stdout);
    }
    res_ = {};
    res_.version(11);
    res_.result(http::status::ok);
    res_.set("X-Backend-Name", g_opt.name);
    res_.set("X-Backend-Region", g_opt.region);
    res_.set(http::field::content_type, "text/plain");
    g_in_flight.fetch_add(1, std::memory_order_relaxed);
    in_flight_ = true;
    int delay_ms = 0;
    if (path == "/healthz") {
      bool failing = g_fail_health.load();
      res_.result(failing ? http::status::internal_server_error : http::status::ok);
      res_.body() = failing ? "failing\n" : "ok\n";
    } else if (path == "/control/health") {
      g_fail_health = query_param(target, "fail") == "1";
      res_.body() = g_fail_health ? "healthz now fails\n" : "healthz now passes\n";
    } else if (path == "/control/load") {
      g_cpu = std::clamp(std::strtod(std::string(query_param(target, "cpu")).c_str(), nullptr), 0.0,
                         1.0);
      g_mem = std::clamp(std::strtod(std::string(query_param(target, "mem")).c_str(), nullptr), 0.0,
                         1.0);
      g_synthetic = false;
      res_.body() = "load now reported as cpu " + std::to_string(g_cpu.load()) + ", mem " +
                    std::to_string(g_mem.load()) + "\n";
    } else if (path == "/control/latency") {
      g_extra_ms =
          static_cast<int>(std::min<uint64_t>(to_u64(query_param(target, "ms"), 0), 60000));
      res_.body() = "extra latency now " + std::to_string(g_extra_ms.load()) + " ms\n";
    } else if (path == "/control/errors") {
      std::string rate(query_param(target, "rate"));
      g_error_rate = std::clamp(std::strtod(rate.c_str(), nullptr), 0.0, 1.0);
      res_.body() = "error rate now " + std::to_string(g_error_rate.load()) + "\n";
    } else if (path.rfind("/echo", 0) == 0) {
      boost::crc_32_type crc;
      crc.process_bytes(req.body().data(), req.body().size());
      res_.set("X-Echo-Method", req.method_string());
      res_.set("X-Echo-Target", req.target());
      res_.set("X-Echo-Host", req[http::field::host]);
      res_.set("X-Echo-Version", std::to_string(req.version()));
      res_.set("X-Echo-XFF", req["X-Forwarded-For"]);
      res_.set("X-Echo-XFP", req["X-Forwarded-Proto"]);
      res_.set("X-Echo-XFCC", req["X-Forwarded-Client-Cert"]);
      std::string names;
      for (const auto& f : req) {
        if (!names.empty()) names += ",";
        names += std::string(f.name_string());
      }
      res_.set("X-Echo-Headers", names);
      res_.set("X-Received-Length", std::to_string(req.body().size()));
      res_.set("X-Received-Crc32", std::to_string(crc.checksum()));
      res_.set("X-Received-Chunked", parser_->chunked() ? "1" : "0");
      res_.set(http::field::content_type, "application/octet-stream");
      res_.body() = std::move(req.body());
    } else if (path == "/bytes") {
      uint64_t n = to_u64(query_param(target, "n"), 0);
      return stream_bytes(n, query_param(target, "chunked") == "1", req.keep_alive(),
                          req.method() == http::verb::head);
    } else if (path == "/sleep") {
      delay_ms = static_cast<int>(to_u64(query_param(target, "ms"), 0));
      res_.body() = "slept\n";
    } else if (path == "/status") {
      unsigned code = static_cast<unsigned>(to_u64(query_param(target, "code"), 200));
      if (code < 200 || code > 599) code = 400;
      res_.result(code);
      // 204 and 304 have no body (Beast refuses to frame one).
      if (code != 204 && code != 304) {
        res_.body() = "status " + std::to_string(code) + " from " + g_opt.name + "\n";
      }
    } else {
      delay_ms = static_cast<int>(g_opt.latency_ms * g_opt.handicap);
      if (!g_opt.latency_follows.empty()) {
        const double v = g_opt.latency_follows == "cpu" ? g_cpu.load() : g_mem.load();
        delay_ms += static_cast<int>(g_opt.latency_scale * std::max(0.0, v) + 0.5);
      }
      thread_local std::mt19937_64 rng{std::random_device{}()};
      double error_rate = g_error_rate.load(std::memory_order_relaxed);
      if (error_rate > 0 && std::uniform_real_distribution<double>(0, 1)(rng) < error_rate) {
        res_.result(http::status::internal_server_error);
        res_.body() = "injected error from " + g_opt.name + "\n";
      } else {
        res_.body() = "hello from " + g_opt.name + " (region " + g_opt.region + ")\n";
      }
    }
    if (path.rfind("/control/", 0) != 0) delay_ms += g_extra_ms.load(std::memory_order_relaxed);
    delay_ms += g_opt.rtt_ms;  // a network this far away: every answer, /healthz included
    res_.keep_alive(req.keep_alive());
    if (!res_.chunked()) res_.prepare_payload();
    if (req.method() == http::verb::head) res_.body().clear();
    delay_ms_ = delay_ms;
    if (g_opt.slots > 0 && path == "/") return acquire_slot();
    serve();
  }

  // --slots N: at most N requests of / are worked on at once (a server with N workers); the
  // rest wait their turn, and the load report is the busy fraction.
  void acquire_slot() {
    {
      std::lock_guard<std::mutex> lock(g_slots_mutex);
      if (g_busy_slots >= g_opt.slots) {
        g_slot_queue.push_back(this->shared_from_this());
        return;
      }
      ++g_busy_slots;
    }
    has_slot_ = true;
    serve();
  }

  static void release_slot() {
    std::shared_ptr<Slotted> next;
    {
      std::lock_guard<std::mutex> lock(g_slots_mutex);
      if (g_slot_queue.empty()) {
        --g_busy_slots;
        return;
      }
      next = std::move(g_slot_queue.front());
      g_slot_queue.pop_front();
    }
    next->take_slot();
  }

  void serve() {
    if (delay_ms_ > 0) {
      timer_.expires_after(std::chrono::milliseconds(delay_ms_));
      timer_.async_wait([self = this->shared_from_this()](beast::error_code) { self->write(); });
      return;
    }
    write();
  }

  // The load report, computed when the response leaves: it counts the requests in flight now.
  void set_load_report() {
    double cpu = g_cpu.load(std::memory_order_relaxed);
    double mem = g_mem.load(std::memory_order_relaxed);
    if (g_opt.slots > 0) {
      int busy;
      {
        std::lock_guard<std::mutex> lock(g_slots_mutex);
        busy = g_busy_slots;
      }
      char buf[64];
      std::snprintf(buf, sizeof(buf), "TEXT cpu_utilization=%.3f",
                    std::min(1.0, static_cast<double>(busy) / g_opt.slots));
      res_.set("endpoint-load-metrics", buf);
      return;
    }
    if (g_synthetic.load(std::memory_order_relaxed)) {
      int in_flight = g_in_flight.load(std::memory_order_relaxed);
      cpu = std::min(1.0, (cpu < 0 ? 0.05 : cpu) + (1 - 1 / std::max(1.0, g_opt.handicap)) +
                              in_flight / g_opt.capacity);
      if (mem < 0) mem = 0.3;
    }
    if (cpu < 0 && mem < 0) return;
    char buf[128];
    std::snprintf(buf, sizeof(buf),
                  g_opt.report_json ? "JSON {\"cpu_utilization\":%.3f,\"mem_utilization\":%.3f}"
                                    : "TEXT cpu_utilization=%.3f, mem_utilization=%.3f",
                  cpu < 0 ? 0 : cpu, mem < 0 ? 0 : mem);
    res_.set("endpoint-load-metrics", buf);
  }

  void write() {
    if (has_slot_) {
      has_slot_ = false;
      release_slot();
    }
    set_load_report();
    if (in_flight_) {
      g_in_flight.fetch_sub(1, std::memory_order_relaxed);
      in_flight_ = false;
    }
    lowest().expires_after(std::chrono::seconds(60));
    http::async_write(stream_, res_,
                      [self = this->shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) return;
                        if (!self->res_.keep_alive()) {
                          beast::error_code ignored;
                          self->lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
                          return;
                        }
                        self->read();
                      });
  }

  Stream stream_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  static constexpr size_t kPatternBlock = 26 * 2520;  // 65,520: whole pattern periods
  std::optional<http::request_parser<http::buffer_body>> head_parser_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  bool in_flight_ = false;
  bool has_slot_ = false;
  int delay_ms_ = 0;
  std::array<char, 65536> scratch_;
  uint64_t discarded_ = 0;
  std::string pattern_;
  std::string stream_head_;
  std::string chunk_line_;
  uint64_t stream_left_ = 0;
  bool stream_chunked_ = false;
  bool stream_keep_alive_ = true;
};

void accept_loop(tcp::acceptor& acceptor, asio::ssl::context* tls) {
  acceptor.async_accept(
      asio::make_strand(acceptor.get_executor()),
      [&acceptor, tls](beast::error_code ec, tcp::socket socket) {
        if (!ec) {
          socket.set_option(tcp::no_delay(true), ec);
          if (tls != nullptr) {
            std::make_shared<Session<TlsStream>>(std::move(socket), *tls)->start();
          } else {
            std::make_shared<Session<PlainStream>>(std::move(socket))->start();
          }
        }
        accept_loop(acceptor, tls);
      });
}

void usage() {
  std::cerr << "usage: demo_backend [--listen HOST:PORT] [--name N] [--region R]\n"
               "                    [--latency-ms MS] [--error-rate F] [--fail-health]\n"
               "                    [--cpu F] [--mem F] [--load] [--capacity N] [--handicap F]\n"
               "                    [--report-json] [--rtt-ms MS] [--threads N] [--log-requests]\n"
               "                    [--idle-close-ms MS] [--slots N]\n"
               "                    [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM]]\n";
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--listen") {
      g_opt.listen = next();
    } else if (a == "--name") {
      g_opt.name = next();
    } else if (a == "--region") {
      g_opt.region = next();
    } else if (a == "--latency-ms") {
      g_opt.latency_ms = std::stoi(next());
    } else if (a == "--error-rate") {
      g_opt.error_rate = std::stod(next());
    } else if (a == "--cpu") {
      g_opt.cpu = std::stod(next());
    } else if (a == "--mem") {
      g_opt.mem = std::stod(next());
    } else if (a == "--rtt-ms") {
      g_opt.rtt_ms = std::max(0, std::stoi(next()));
    } else if (a == "--latency-follows") {
      g_opt.latency_follows = next();
      if (g_opt.latency_follows != "cpu" && g_opt.latency_follows != "mem") {
        std::cerr << "--latency-follows takes cpu or mem\n";
        return 2;
      }
    } else if (a == "--latency-scale") {
      g_opt.latency_scale = std::max(0.0, std::stod(next()));
    } else if (a == "--slots") {
      g_opt.slots = std::max(0, std::stoi(next()));
    } else if (a == "--idle-close-ms") {
      g_opt.idle_close_ms = std::max(0, std::stoi(next()));
    } else if (a == "--load") {
      g_opt.synthetic_load = true;
    } else if (a == "--report-json") {
      g_opt.report_json = true;
    } else if (a == "--handicap") {
      g_opt.handicap = std::max(0.0, std::stod(next()));
    } else if (a == "--capacity") {
      g_opt.capacity = std::max(1.0, std::stod(next()));
    } else if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else if (a == "--log-requests") {
      g_opt.log_requests = true;
    } else if (a == "--fail-health") {
      g_opt.fail_health = true;
    } else if (a == "--tls-cert") {
      g_opt.tls_cert = next();
    } else if (a == "--tls-key") {
      g_opt.tls_key = next();
    } else if (a == "--tls-client-ca") {
      g_opt.tls_client_ca = next();
    } else if (a == "--threads") {
      g_opt.threads = std::max(1, std::stoi(next()));
    } else {
      usage();
      return 2;
    }
  }
  g_fail_health = g_opt.fail_health;
  g_error_rate = g_opt.error_rate;
  g_cpu = g_opt.cpu;
  g_synthetic = g_opt.synthetic_load;
  g_mem = g_opt.mem;
  auto colon = g_opt.listen.rfind(':');
  if (colon == std::string::npos) {
    usage();
    return 2;
  }
  std::string host = g_opt.listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  asio::io_context ioc(g_opt.threads);
  tcp::endpoint ep(asio::ip::make_address(host),
                   static_cast<unsigned short>(std::stoi(g_opt.listen.substr(colon + 1))));
  tcp::acceptor acceptor(ioc);
  acceptor.open(ep.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  acceptor.bind(ep);
  acceptor.listen(asio::socket_base::max_listen_connections);
  auto bound = acceptor.local_endpoint();
  std::printf("demo_backend %s listening on %s:%u%s\n", g_opt.name.c_str(),
              bound.address().to_string().c_str(), bound.port(),
              g_opt.tls_cert.empty() ? "" : " (tls)");
  std::fflush(stdout);
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](beast::error_code, int) { ioc.stop(); });
  std::optional<asio::ssl::context> tls;
  if (!g_opt.tls_cert.empty()) {
    tls.emplace(asio::ssl::context::tls_server);
    tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1);
    tls->use_certificate_chain_file(g_opt.tls_cert);
    tls->use_private_key_file(g_opt.tls_key.empty() ? g_opt.tls_cert : g_opt.tls_key,
                              asio::ssl::context::pem);
    if (!g_opt.tls_client_ca.empty()) {
      tls->load_verify_file(g_opt.tls_client_ca);
      tls->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
    }
  }
  accept_loop(acceptor, tls ? &*tls : nullptr);
  std::vector<std::thread> threads;
  for (int i = 1; i < g_opt.threads; ++i) threads.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : threads) t.join();
  return 0;
}
