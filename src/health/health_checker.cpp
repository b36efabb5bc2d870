#include "switchyard/health/health_checker.h"

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <map>
#include <random>

#include "grpc_check.h"
#include "switchyard/common/asio_endpoint.h"
#include "switchyard/common/logging.h"

namespace switchyard::health {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

bool expected(const config::HealthCheck& hc, unsigned status) {
  for (const auto& range : hc.expect_status) {
    if (status >= range.low && status <= range.high) return true;
  }
  return false;
}

// One endpoint's probe loop. Owned by the checker's map; the pending operation keeps it alive
// until it completes after stop().
class Probe : public std::enable_shared_from_this<Probe> {
 public:
  Probe(asio::io_context& ioc, std::shared_ptr<const HealthChecker::Observer> observer,
        std::shared_ptr<EndpointHealth> state, const HealthChecker::Target& target,
        config::HealthCheck hc)
      : ioc_(ioc),
        observer_(std::move(observer)),
        timer_(ioc),
        state_(std::move(state)),
        key_(target.key),
        cluster_(target.cluster),
        address_text_(target.address_text),
        address_(to_endpoint(target.address)),
        hc_(std::move(hc)),
        tls_context_(target.tls) {
    request_.method(http::verb::get);
    request_.target(hc_.path);
    request_.version(11);
    request_.set(http::field::host, address_text_);
    request_.set(http::field::user_agent, "switchyard-health-check");
    request_.keep_alive(true);
  }

  void start(bool pending) {
    if (pending) {
      state_->healthy.store(false, std::memory_order_relaxed);
      first_ = true;
    }
    schedule(std::chrono::milliseconds(0));
  }

  // Takes a changed health_check block on reload (same endpoint, new settings). A new TLS
  // context (a reload builds one) is used from the next connection on.
  void reconfigure(config::HealthCheck hc, std::shared_ptr<const tls::ClientContext> tls) {
    hc_ = std::move(hc);
    request_.target(hc_.path);
    if (tls != tls_context_) {
      tls_context_ = std::move(tls);
      if (!busy_) drop_connection();
    }
  }

  void stop() {
    stopped_ = true;
    timer_.cancel();
    close();
  }

 private:
  void schedule(std::chrono::milliseconds delay) {
    if (stopped_) return;
    timer_.expires_after(delay);
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec && !self->stopped_) self->check();
    });
  }

  std::chrono::milliseconds next_delay() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    double factor = std::uniform_real_distribution<double>(0.9, 1.1)(rng);
    return std::chrono::milliseconds(static_cast<int64_t>(hc_.interval.count() * factor));
  }

  // The connection's lowest layer (both kinds time out through it).
  beast::tcp_stream& tcp() { return tls_ ? tls_->next_layer() : *stream_; }
  bool connected() const { return stream_.has_value() || tls_.has_value(); }
  void close() {
    if (stream_) stream_->close();
    if (tls_) tls_->next_layer().close();
  }
  template <typename F>
  void with_stream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(*stream_);
    }
  }

  void check() {
    retried_ = false;
    busy_ = true;
    if (hc_.protocol == config::HealthProtocol::kGrpc) drop_connection();  // one per check
    if (!connected()) return connect();
    reused_ = true;
    tcp().expires_after(hc_.timeout);
    send();
  }

  void connect() {
    reused_ = false;
    stream_.emplace(ioc_);
    stream_->expires_after(hc_.timeout);
    stream_->async_connect(address_, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->done(false, "connect: " + ec.message());
      if (!self->tls_context_) return self->send();
      self->handshake();
    });
  }

  // Upstream TLS: the same context, SNI and verification as proxied requests.
  void handshake() {
    SSL* ssl = tls_context_->new_ssl(tls::host_of(address_text_));
    if (ssl == nullptr) return done(false, "tls: cannot create a session");
    tls_.emplace(std::move(*stream_), ssl);
    stream_.reset();
    tls_->async_handshake(asio::ssl::stream_base::client,
                          [self = shared_from_this()](beast::error_code ec) {
                            if (ec) return self->done(false, "tls handshake: " + ec.message());
                            self->send();
                          });
  }

  // A kept-alive connection that the endpoint closed while it sat idle (a keep-alive timeout
  // shorter than the interval: gunicorn 2 s, Node 5 s) fails before any answer. That says
  // nothing about the endpoint: the check goes again, once, on a fresh connection. Only a
  // closed connection qualifies; a timeout, an error status or a refused connect count at once.
  bool retry_on_fresh_connection(const beast::error_code& ec) {
    const bool closed = ec == http::error::end_of_stream || ec == asio::error::eof ||
                        ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
                        ec == asio::ssl::error::stream_truncated;
    if (!reused_ || retried_ || !closed || stopped_) return false;
    retried_ = true;
    drop_connection();
    connect();
    return true;
  }

  void send() {
    sent_at_ = std::chrono::steady_clock::now();
    if (hc_.protocol == config::HealthProtocol::kGrpc) {
      grpc_.emplace(address_text_, hc_.service, tls_context_ != nullptr);
      return grpc_pump();
    }
    with_stream([&](auto& stream) {
      http::async_write(stream, request_,
                        [self = shared_from_this()](beast::error_code ec, size_t) {
                          if (ec && self->retry_on_fresh_connection(ec)) return;
                          if (ec) return self->done(false, "write: " + ec.message());
                          self->receive();
                        });
    });
  }

  void receive() {
    parser_.emplace();
    parser_->body_limit(64 * 1024);
    with_stream([&](auto& stream) { read_response(stream); });
  }

  template <typename Stream>
  void read_response(Stream& stream) {
    http::async_read(stream, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec && self->retry_on_fresh_connection(ec)) return;
                       if (ec) return self->done(false, "read: " + ec.message());
                       self->rtt_ms_ = std::chrono::duration<double, std::milli>(
                                           std::chrono::steady_clock::now() - self->sent_at_)
                                           .count();
                       const auto& res = self->parser_->get();
                       unsigned status = res.result_int();
                       auto report = res["endpoint-load-metrics"];
                       if (!report.empty() && !self->stopped_ && self->observer_->on_load_report) {
                         self->observer_->on_load_report(self->key_, report);
                       }
                       if (!self->parser_->keep_alive()) self->drop_connection();
                       self->done(expected(self->hc_, status), "status " + std::to_string(status));
                     });
  }

  // --- grpc.health.v1.Health/Check over HTTP/2 (a fresh connection per check) ---
  void grpc_pump() {
    grpc_out_.clear();
    if (!grpc_->produce(grpc_out_)) return grpc_finish(false, "HTTP/2 protocol error");
    if (grpc_->finished()) return grpc_finish(grpc_->serving(), grpc_->detail());
    if (grpc_out_.empty()) return grpc_read();
    with_stream([&](auto& stream) {
      asio::async_write(stream, asio::buffer(grpc_out_),
                        [self = shared_from_this()](beast::error_code ec, size_t) {
                          if (ec) return self->grpc_finish(false, "write: " + ec.message());
                          self->grpc_read();
                        });
    });
  }

  void grpc_read() {
    with_stream([&](auto& stream) {
      stream.async_read_some(asio::buffer(grpc_in_),
                             [self = shared_from_this()](beast::error_code ec, size_t n) {
                               if (ec) return self->grpc_finish(false, "read: " + ec.message());
                               if (!self->grpc_->consume(self->grpc_in_.data(), n))
                                 return self->grpc_finish(false, "HTTP/2 protocol error");
                               self->grpc_pump();
                             });
    });
  }

  void grpc_finish(bool passed, const std::string& detail) {
    if (grpc_) {
      rtt_ms_ =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - sent_at_)
              .count();
      if (!grpc_->load_report().empty() && !stopped_ && observer_->on_load_report) {
        observer_->on_load_report(key_, grpc_->load_report());
      }
    }
    if (!passed) rtt_ms_ = -1;
    grpc_.reset();
    drop_connection();
    done(passed, detail);
  }

  void drop_connection() {
    close();
    stream_.reset();
    tls_.reset();
    buffer_.clear();
  }

  void done(bool passed, const std::string& detail) {
    busy_ = false;
    if (stopped_) return;
    state_->checks.add(passed ? EndpointHealth::kPassed : EndpointHealth::kFailed);
    if (!passed) drop_connection();
    const double rtt = rtt_ms_;
    rtt_ms_ = -1;
    if (observer_->on_result) observer_->on_result(key_, passed, rtt);
    bool healthy = state_->healthy.load(std::memory_order_relaxed);
    if (state_->marked_down.exchange(false, std::memory_order_relaxed)) {
      // Requests marked it down (passive check): its passes count from here.
      successes_ = 0;
      failures_ = hc_.unhealthy_threshold;
      healthy = false;
      state_->healthy.store(false, std::memory_order_relaxed);
    }
    if (passed) {
      failures_ = 0;
      ++successes_;
      if (!healthy && (first_ || successes_ >= hc_.healthy_threshold)) {
        state_->healthy.store(true, std::memory_order_relaxed);
        logs::registry().info("endpoint {} of cluster '{}' is healthy ({})", address_text_,
                              cluster_, detail);
      }
    } else {
      successes_ = 0;
      ++failures_;
      if (healthy && failures_ >= hc_.unhealthy_threshold) {
        state_->healthy.store(false, std::memory_order_relaxed);
        logs::registry().warn("endpoint {} of cluster '{}' is unhealthy ({})", address_text_,
                              cluster_, detail);
      } else if (first_) {
        logs::registry().warn("endpoint {} of cluster '{}' failed its first check ({})",
                              address_text_, cluster_, detail);
      }
    }
    first_ = false;
    schedule(next_delay());
  }

  asio::io_context& ioc_;
  std::shared_ptr<const HealthChecker::Observer> observer_;
  std::chrono::steady_clock::time_point sent_at_{};
  asio::steady_timer timer_;
  std::shared_ptr<EndpointHealth> state_;
  std::string key_;
  std::string cluster_;
  std::string address_text_;
  tcp::endpoint address_;
  config::HealthCheck hc_;
  std::shared_ptr<const tls::ClientContext> tls_context_;
  std::optional<beast::tcp_stream> stream_;                  // plain, or TCP until the handshake
  std::optional<asio::ssl::stream<beast::tcp_stream>> tls_;  // after it
  bool busy_ = false;  // a check is in flight on the connection
  std::optional<GrpcCheck> grpc_;
  std::string grpc_out_;
  std::array<char, 16 * 1024> grpc_in_;
  beast::flat_buffer buffer_;
  http::request<http::empty_body> request_;
  std::optional<http::response_parser<http::string_body>> parser_;
  uint32_t successes_ = 0;
  uint32_t failures_ = 0;
  bool first_ = false;
  bool stopped_ = false;
  double rtt_ms_ = -1;    // of the answer to this check, once it came
  bool reused_ = false;   // this check went out on a kept-alive connection
  bool retried_ = false;  // ...and was already sent again on a fresh one
};

}  // namespace

struct HealthChecker::Impl {
  Impl(asio::io_context& c, Observer o)
      : ioc(c), observer(std::make_shared<const Observer>(std::move(o))) {}
  asio::io_context& ioc;
  std::shared_ptr<const Observer> observer;
  std::map<std::string, std::shared_ptr<Probe>> probes;  // by endpoint key
  std::map<std::string, std::shared_ptr<EndpointHealth>> states;
  std::set<std::string> fresh;  // states created since the last update: never checked yet
};

bool record_connect_failure(EndpointHealth& health) {
  const uint32_t limit = health.passive_limit.load(std::memory_order_relaxed);
  const uint32_t run = health.connect_failures_in_a_row.fetch_add(1, std::memory_order_relaxed) + 1;
  if (limit == 0 || run < limit || !health.healthy.load(std::memory_order_relaxed)) return false;
  if (health.marked_down.exchange(true, std::memory_order_relaxed)) return false;
  health.healthy.store(false, std::memory_order_relaxed);
  return true;
}

HealthChecker::HealthChecker(asio::io_context& ioc, Observer observer)
    : impl_(std::make_shared<Impl>(ioc, std::move(observer))) {}

HealthChecker::~HealthChecker() { stop(); }

std::shared_ptr<EndpointHealth> HealthChecker::state(const std::string& key, bool checked) {
  auto& slot = impl_->states[key];
  if (!slot) {
    slot = std::make_shared<EndpointHealth>();
    // An endpoint of a checked cluster is not used before its first check passes; it is
    // marked here, before any worker can see it.
    slot->healthy.store(!checked, std::memory_order_relaxed);
    impl_->fresh.insert(key);
  }
  return slot;
}

void HealthChecker::update(const std::vector<Target>& targets) {
  std::map<std::string, std::shared_ptr<Probe>> next;
  std::map<std::string, std::shared_ptr<EndpointHealth>> live;
  for (const auto& t : targets) {
    auto health = state(t.key, t.check.has_value());
    live[t.key] = health;
    health->passive_limit.store(t.check ? t.check->passive_connect_failures : 0,
                                std::memory_order_relaxed);
    if (!t.check) {
      health->healthy.store(true, std::memory_order_relaxed);  // nobody checks: trust it
      health->marked_down.store(false, std::memory_order_relaxed);
      continue;
    }
    auto it = impl_->probes.find(t.key);
    if (it != impl_->probes.end()) {
      it->second->reconfigure(*t.check, t.tls);
      next.emplace(it->first, std::move(it->second));
      impl_->probes.erase(it);
      continue;
    }
    auto probe = std::make_shared<Probe>(impl_->ioc, impl_->observer, health, t, *t.check);
    // A new endpoint has never been checked: pending until its first result. One that
    // existed before (health_check added by a reload) keeps its state meanwhile.
    probe->start(/*pending=*/impl_->fresh.count(t.key) > 0);
    next.emplace(t.key, std::move(probe));
  }
  for (auto& [key, probe] : impl_->probes) probe->stop();  // endpoints that left
  impl_->probes = std::move(next);
  impl_->states = std::move(live);
  impl_->fresh.clear();
}

void HealthChecker::stop() {
  for (auto& [key, probe] : impl_->probes) probe->stop();
  impl_->probes.clear();
}

}  // namespace switchyard::health
