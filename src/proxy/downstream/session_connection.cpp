// Session, the connection's life around its requests: the TLS handshake on a TLS listener and
// what a client certificate says (routes may match it; X-Forwarded-Client-Cert carries it
// upstream), deadlines and the sweep that enforces them, drain, abort, and closing.

#include <cstring>

#include "downstream/session.h"
#include "switchyard/common/logging.h"

namespace switchyard::proxy {

using boost::system::error_code;

namespace {
constexpr auto kLingerTimeout = std::chrono::seconds(2);
}  // namespace

// The handshake gets header_timeout; a client that stalls in it, speaks plaintext HTTP or
// offers nothing acceptable is closed (and counted), never answered in plaintext.
void Session::handshake() {
  phase_ = Phase::kHandshake;
  ex_.begin(worker_.view(), listener_index_, Clock::now());
  set_deadline(limits().header_timeout);
  SSL* ssl = SSL_new(tls_->native());
  if (ssl == nullptr) return close_now();
  client_.use_tls(ssl);
  client_.async_handshake(asio::ssl::stream_base::server,
                          [self = shared_from_this()](error_code ec) { self->on_handshake(ec); });
}

void Session::on_handshake(error_code ec) {
  using LS = ListenerStats;
  if (ec) {
    listener_stats_->tls_handshakes.add(timed_out_ ? LS::kTlsTimeout : LS::kTlsFailure);
    if (logs::proxy().should_log(spdlog::level::debug)) {
      logs::proxy().debug("TLS handshake from {} failed: {}", id_.ip,
                          timed_out_ ? "timeout" : ec.message());
    }
    return close_now();
  }
  if (tls_->client_certificates()) {
    auto id = tls::peer_identity(client_.ssl());
    // A required certificate is checked again here, resumed or not: the handshake only asks
    // for one on a full handshake, so this is what keeps any other path (a session from
    // elsewhere, should one ever resume) from reaching a route without a verified client.
    if (tls_->client_certificate_required() && !(id.present && id.verified)) {
      listener_stats_->tls_handshakes.add(LS::kTlsFailure);
      logs::warn_every(logs::proxy(), logs::Reason::kTlsNoClientCertificate,
                       "TLS client {} has no verified certificate on a listener that requires "
                       "one: closed",
                       id_.ip);
      return close_now();
    }
    if (id.present && id.verified) {
      if (!tls::format_client_cert(id, &id_.cert)) {
        listener_stats_->tls_handshakes.add(LS::kTlsFailure);
        logs::warn_every(logs::proxy(), logs::Reason::kTlsBadClientCertificate,
                         "TLS client {}: a control byte in its certificate's subject or SANs: "
                         "closed",
                         id_.ip);
        return close_now();
      }
      id_.uris = id.uris;
    }
  }
  listener_stats_->tls_handshakes.add(LS::kTlsSuccess);
  timed_out_ = false;
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(client_.ssl(), &alpn, &alpn_len);
  if (alpn_len == 2 && std::memcmp(alpn, "h2", 2) == 0) return become_h2();
  if (!ex_.listener->config->speaks(config::ListenerProtocol::kHttp1)) return close_now();
  wait_request();
}

void Session::set_deadline(std::chrono::milliseconds timeout) {
  deadline_ = worker_.now() + timeout;
}

void Session::on_drain() {
  close_after_response_ = true;
  if (phase_ == Phase::kIdle) close_now();
}

void Session::abort() {
  close_after_response_ = true;
  ex_.attempt.cancel();
  close_now();
}

void Session::close_now() {
  phase_ = Phase::kClosing;
  error_code ec;
  client_.close(ec);
}

void Session::on_sweep(Clock::time_point now) {
  if (phase_ == Phase::kHead) {
    if (now < head_deadline_ || timed_out_) return;
  } else if (now < deadline_ || timed_out_) {
    return;
  }
  timed_out_ = true;
  error_code ignored;
  client_.cancel(ignored);  // the pending handler sees operation_aborted and timed_out_
}

// --- closing -------------------------------------------------------------------------------

// Half-close, then read and discard what the client still sends for a short while before
// closing: closing a socket with unread input makes the kernel send RST, which can destroy the
// response we just wrote before the client reads it.
void Session::close_gracefully() {
  phase_ = Phase::kClosing;
  error_code ec;
  if (client_.tls()) {
    // close_notify, then the peer's (or the linger deadline): the end of TLS data is explicit.
    deadline_ = worker_.now() + kLingerTimeout;
    timed_out_ = false;
    return client_.async_shutdown([self = shared_from_this()](error_code) { self->close_now(); });
  }
  client_.socket().shutdown(Socket::shutdown_send, ec);
  if (ec) return close_now();
  deadline_ = worker_.now() + kLingerTimeout;
  timed_out_ = false;
  linger();
}

void Session::linger() {
  in_.prepare(kHeadReadRoom, in_.capacity() > 0 ? in_.capacity() : InBuffer::kInitial);
  in_.consume(in_.size());
  in_.compact();
  client_.async_read_some(asio::buffer(in_.tail(), in_.room()),
                          [self = shared_from_this()](error_code ec, size_t) {
                            if (ec) return self->close_now();  // EOF, timeout or error: done
                            self->linger();
                          });
}

}  // namespace switchyard::proxy
