#pragma once

// TLS contexts built from the configuration (README, "TLS"), on the control thread, once per
// snapshot: a listener's server side (a certificate per SNI name, mutual TLS, ALPN, session
// tickets) and a cluster's client side (SNI, verification, a client certificate). Plain
// OpenSSL: no Asio here. A connection keeps the context it started with (SSL_new takes a
// reference), so a reload that swaps certificates never touches open connections.

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "switchyard/config/config.h"

namespace switchyard::tls {

class ServerContext {
 public:
  // nullptr and *error when OpenSSL refuses a file or a setting. h2: ALPN offers h2 first.
  // listener: its name, part of the session id context (no session resumes on another
  // listener, nor under another CA or client-certificate mode) and of the ticket keys'.
  static std::shared_ptr<const ServerContext> build(const config::ListenerTls& cfg,
                                                    std::string_view listener, std::string* error,
                                                    bool h2 = false);
  ~ServerContext();
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  // Where a new connection starts (the default certificate); the SNI callback moves it to the
  // certificate for the name the client asked for.
  SSL_CTX* native() const { return contexts_.front(); }
  bool client_certificates() const { return client_certificates_; }
  // client_certificate: required. A connection, resumed or not, is served only once it holds
  // a verified peer certificate (checked again after the handshake: see verified_peer()).
  bool client_certificate_required() const { return client_certificate_required_; }
  // The context serving `name` (exact name first, then a "*.domain" wildcard), or the default.
  SSL_CTX* select(std::string_view name) const;

 private:
  ServerContext() = default;
  std::vector<SSL_CTX*> contexts_;  // by certificate, first = default
  std::vector<std::pair<std::string, size_t>> exact_;
  std::vector<std::pair<std::string, size_t>> wildcard_;  // ".domain" suffixes
  bool client_certificates_ = false;
  bool client_certificate_required_ = false;
};

class ClientContext {
 public:
  // h2: ALPN asks for h2 only (clusters[].protocol h2), else http/1.1.
  static std::shared_ptr<const ClientContext> build(const config::ClusterTls& cfg,
                                                    std::string* error, bool h2 = false);
  ~ClientContext();
  ClientContext(const ClientContext&) = delete;
  ClientContext& operator=(const ClientContext&) = delete;

  SSL_CTX* native() const { return ctx_; }
  // A new client SSL for one connection to `host` (the configured sni, else host): SNI set,
  // and with verify on, the peer's certificate must chain to the CAs and name that host.
  SSL* new_ssl(std::string_view host) const;

 private:
  ClientContext() = default;
  SSL_CTX* ctx_ = nullptr;
  std::string sni_;
  bool verify_ = true;
};

// What a verified client certificate says about its holder.
struct PeerIdentity {
  bool present = false;           // the client sent a certificate
  bool verified = false;          // and it chains to client_ca_file
  std::string subject;            // RFC 2253 form
  std::vector<std::string> uris;  // URI SANs (SPIFFE IDs)
  std::vector<std::string> dns;
};
PeerIdentity peer_identity(SSL* ssl);

// The X-Forwarded-Client-Cert element for a verified client, in Envoy's format:
// Subject="CN=web,O=example";URI=spiffe://...;DNS=... . Subject is always quoted; a URI or DNS
// value is quoted when it holds ',', ';', '=', '"' or '\\' (Envoy's rule), and inside quotes '"'
// and '\\' are escaped with a backslash. False (and *out cleared) when any value holds a
// control byte (0x00-0x1f, 0x7f): such a certificate could smuggle a header line upstream, so
// the connection is refused rather than its identity rewritten. Pure: no OpenSSL call.
bool format_client_cert(const PeerIdentity& id, std::string* out);

// The host part of "host:port" or "[v6]:port".
std::string_view host_of(std::string_view address);

// Session-ticket keys, one ring per listener session context (its name, client-certificate mode
// and CA: resumption survives a reload that changes none of them, and never crosses them): the
// current key encrypts, it and the previous one decrypt, rotated every kTicketKeyLifetime by the
// control thread. Handshakes read them without a lock.
inline constexpr std::chrono::hours kTicketKeyLifetime{12};
void rotate_ticket_keys_if_due(std::chrono::steady_clock::time_point now);

}  // namespace switchyard::tls
