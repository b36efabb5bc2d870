#include "switchyard/tls/context.h"

#include <arpa/inet.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>

namespace switchyard::tls {
namespace {

std::string ssl_error(const std::string& what) {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return what;
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return what + ": " + buf;
}

int proto_version(config::TlsVersion v) {
  return v == config::TlsVersion::k13 ? TLS1_3_VERSION : TLS1_2_VERSION;
}

// --- session tickets -------------------------------------------------------------------------

struct TicketKey {
  unsigned char name[16];
  unsigned char aes[32];
  unsigned char hmac[32];
};

// Three slots: the current key, the previous one, and the one being written by a rotation
// (never read while it is written: readers only use current and current - 1).
struct TicketKeys {
  TicketKeys() {
    fill(keys[0]);
    rotated = std::chrono::steady_clock::now();
  }
  static void fill(TicketKey& k) {
    RAND_bytes(k.name, sizeof k.name);
    RAND_bytes(k.aes, sizeof k.aes);
    RAND_bytes(k.hmac, sizeof k.hmac);
  }
  TicketKey keys[3];
  std::atomic<uint32_t> current{0};
  std::atomic<bool> has_previous{false};
  std::chrono::steady_clock::time_point rotated;  // control thread
};

// One key ring per session context (a listener's name, its client-certificate mode and the
// contents of its CA file): a ticket made on one listener, or under a CA a reload replaced,
// cannot even be decrypted by another, so it can never resume there and skip that listener's
// client-certificate policy. A ring lives for the process (a context that comes back after a
// reload gets its tickets back); there are as many as distinct listener policies ever loaded.
// The map is touched on the control thread (build, rotation) under its mutex; handshakes read
// a ring through its SSL_CTX's ex_data, never the map.
struct TicketRings {
  std::mutex mutex;
  std::map<std::string, std::unique_ptr<TicketKeys>> by_context;
};

TicketRings& ticket_rings() {
  static TicketRings rings;
  return rings;
}

TicketKeys* ticket_keys_for(const std::string& session_context) {
  auto& rings = ticket_rings();
  std::lock_guard<std::mutex> lock(rings.mutex);
  auto& ring = rings.by_context[session_context];
  if (!ring) ring = std::make_unique<TicketKeys>();
  return ring.get();
}

int ticket_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

bool set_hmac(EVP_MAC_CTX* hctx, unsigned char* key) {
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, 32),
                         OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  return EVP_MAC_CTX_set_params(hctx, params) == 1;
}

// OpenSSL's ticket key callback: 1 = key found (or ticket made), 2 = found under the previous
// key (the client gets a fresh ticket), 0 = unknown key (full handshake), -1 = error.
int ticket_callback(SSL* ssl, unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* cctx,
                    EVP_MAC_CTX* hctx, int enc) {
  auto* keys = static_cast<TicketKeys*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ticket_index()));
  if (keys == nullptr) return enc == 1 ? -1 : 0;
  auto& ring = *keys;
  const uint32_t cur = ring.current.load(std::memory_order_acquire);
  TicketKey& k = ring.keys[cur % 3];
  if (enc == 1) {
    std::memcpy(key_name, k.name, sizeof k.name);
    if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) return -1;
    if (EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, k.aes, iv) != 1) return -1;
    return set_hmac(hctx, k.hmac) ? 1 : -1;
  }
  for (uint32_t back = 0; back < 2; ++back) {
    if (back == 1 && !ring.has_previous.load(std::memory_order_acquire)) break;
    TicketKey& c = ring.keys[(cur + 3 - back) % 3];
    if (std::memcmp(key_name, c.name, sizeof c.name) != 0) continue;
    if (!set_hmac(hctx, c.hmac)) return -1;
    if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, c.aes, iv) != 1) return -1;
    return back == 0 ? 1 : 2;
  }
  return 0;
}

// --- server side -----------------------------------------------------------------------------

// The listener's protocols in its preference order: h2 (when it speaks it), then http/1.1. A
// client that offers only other protocols goes on without ALPN (and speaks HTTP/1.1).
int kH2Marker = 0;

int alpn_select(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void* arg) {
  const bool h2 = arg != nullptr;
  const unsigned char* http1 = nullptr;
  for (unsigned int i = 0; i < inlen;) {
    const unsigned char len = in[i];
    if (i + 1 + len > inlen) break;
    const unsigned char* name = in + i + 1;
    if (h2 && len == 2 && std::memcmp(name, "h2", 2) == 0) {
      *out = name;
      *outlen = len;
      return SSL_TLSEXT_ERR_OK;
    }
    if (len == 8 && std::memcmp(name, "http/1.1", 8) == 0) http1 = name;
    i += 1u + len;
  }
  if (http1 == nullptr) return SSL_TLSEXT_ERR_NOACK;
  *out = http1;
  *outlen = 8;
  return SSL_TLSEXT_ERR_OK;
}

int servername_callback(SSL* ssl, int*, void* arg) {
  const auto* server = static_cast<const ServerContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_OK;  // no SNI: the default certificate
  SSL_CTX* chosen = server->select(name);
  if (chosen != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, chosen);
  return SSL_TLSEXT_ERR_OK;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool is_ip(std::string_view host) {
  std::string h(host);
  unsigned char buf[16];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

}  // namespace

// The session id context of a listener (RFC 5077 resumption is only allowed within it):
// SHA-256 over its name, its client-certificate mode and the bytes of its CA file. Two
// listeners never share one, and a reload that changes the CA or the mode makes a new one, so
// a session (TLS 1.2 ticket or TLS 1.3 PSK) made under other rules never resumes here.
std::string session_context(const config::ListenerTls& cfg, std::string_view listener) {
  std::string material = "switchyard listener\n";
  material.append(listener).push_back('\n');
  material.push_back(static_cast<char>('0' + static_cast<int>(cfg.client_certificate)));
  material.push_back('\n');
  if (cfg.client_certificate != config::ClientCertificate::kNone) {
    std::ifstream in(cfg.client_ca_file, std::ios::binary);
    material.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(material.data(), material.size(), digest, &len, EVP_sha256(), nullptr);
  static_assert(SSL_MAX_SID_CTX_LENGTH >= 32);
  return std::string(reinterpret_cast<const char*>(digest), std::min(len, 32u));
}

std::shared_ptr<const ServerContext> ServerContext::build(const config::ListenerTls& cfg,
                                                          std::string_view listener,
                                                          std::string* error, bool h2) {
  std::shared_ptr<ServerContext> out(new ServerContext());
  const std::string sid_context = session_context(cfg, listener);
  TicketKeys* tickets = cfg.session_tickets ? ticket_keys_for(sid_context) : nullptr;
  out->client_certificate_required_ =
      cfg.client_certificate == config::ClientCertificate::kRequired;
  for (size_t i = 0; i < cfg.certificates.size(); ++i) {
    const auto& cert = cfg.certificates[i];
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == nullptr) {
      *error = ssl_error("SSL_CTX_new");
      return nullptr;
    }
    out->contexts_.push_back(ctx);
    SSL_CTX_set_min_proto_version(ctx, proto_version(cfg.min_version));
    SSL_CTX_set_options(
        ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_cipher_list(ctx, cfg.ciphers.c_str()) != 1) {
      *error = ssl_error("ciphers '" + cfg.ciphers + "'");
      return nullptr;
    }
    if (SSL_CTX_set_ciphersuites(ctx, cfg.ciphersuites.c_str()) != 1) {
      *error = ssl_error("ciphersuites '" + cfg.ciphersuites + "'");
      return nullptr;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert.cert_file.c_str()) != 1) {
      *error = ssl_error("certificate '" + cert.cert_file + "'");
      return nullptr;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cert.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
      *error = ssl_error("key '" + cert.key_file + "'");
      return nullptr;
    }
    // Every certificate of a listener shares its context (SNI may move a handshake between
    // them); no two listeners share one.
    SSL_CTX_set_session_id_context(ctx, reinterpret_cast<const unsigned char*>(sid_context.data()),
                                   static_cast<unsigned int>(sid_context.size()));
    // Resumption by tickets only (no server-side cache to share between workers).
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (tickets != nullptr) {
      SSL_CTX_set_ex_data(ctx, ticket_index(), tickets);
      SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_callback);
    } else {
      SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
      SSL_CTX_set_num_tickets(ctx, 0);
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, h2 ? &kH2Marker : nullptr);
    if (cfg.client_certificate != config::ClientCertificate::kNone) {
      if (SSL_CTX_load_verify_locations(ctx, cfg.client_ca_file.c_str(), nullptr) != 1) {
        *error = ssl_error("client_ca_file '" + cfg.client_ca_file + "'");
        return nullptr;
      }
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(cfg.client_ca_file.c_str());
      if (names != nullptr) SSL_CTX_set_client_CA_list(ctx, names);
      int mode = SSL_VERIFY_PEER;
      if (cfg.client_certificate == config::ClientCertificate::kRequired) {
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
      }
      SSL_CTX_set_verify(ctx, mode, nullptr);
      out->client_certificates_ = true;
    }
    for (const auto& name : cert.names) {
      if (name.rfind("*.", 0) == 0) {
        out->wildcard_.emplace_back(name.substr(1), i);
      } else {
        out->exact_.emplace_back(name, i);
      }
    }
  }
  if (out->contexts_.empty()) {
    *error = "no certificate";
    return nullptr;
  }
  SSL_CTX_set_tlsext_servername_callback(out->contexts_.front(), servername_callback);
  SSL_CTX_set_tlsext_servername_arg(out->contexts_.front(), out.get());
  return out;
}

ServerContext::~ServerContext() {
  for (SSL_CTX* c : contexts_) SSL_CTX_free(c);
}

SSL_CTX* ServerContext::select(std::string_view requested) const {
  const std::string name = lower(requested);
  for (const auto& [n, i] : exact_) {
    if (n == name) return contexts_[i];
  }
  // "*.example.com" covers one label: a.example.com, not example.com or a.b.example.com.
  const size_t dot = name.find('.');
  if (dot != std::string::npos && dot > 0) {
    const std::string_view suffix = std::string_view(name).substr(dot);
    for (const auto& [n, i] : wildcard_) {
      if (n == suffix) return contexts_[i];
    }
  }
  return contexts_.front();
}

// --- client side -----------------------------------------------------------------------------

std::shared_ptr<const ClientContext> ClientContext::build(const config::ClusterTls& cfg,
                                                          std::string* error, bool h2) {
  std::shared_ptr<ClientContext> out(new ClientContext());
  out->ctx_ = SSL_CTX_new(TLS_client_method());
  if (out->ctx_ == nullptr) {
    *error = ssl_error("SSL_CTX_new");
    return nullptr;
  }
  SSL_CTX* ctx = out->ctx_;
  SSL_CTX_set_min_proto_version(ctx, proto_version(cfg.min_version));
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_cipher_list(ctx, config::kDefaultCiphers);
  static const unsigned char kHttp1[] = "\x08http/1.1";
  static const unsigned char kH2[] = "\x02h2";
  if (h2) {
    SSL_CTX_set_alpn_protos(ctx, kH2, sizeof kH2 - 1);
  } else {
    SSL_CTX_set_alpn_protos(ctx, kHttp1, sizeof kHttp1 - 1);
  }
  out->verify_ = cfg.verify;
  out->sni_ = cfg.sni;
  if (cfg.verify) {
    const int ok = cfg.ca_file.empty()
                       ? SSL_CTX_set_default_verify_paths(ctx)
                       : SSL_CTX_load_verify_locations(ctx, cfg.ca_file.c_str(), nullptr);
    if (ok != 1) {
      *error = ssl_error("ca_file '" + cfg.ca_file + "'");
      return nullptr;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  if (!cfg.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg.cert_file.c_str()) != 1) {
      *error = ssl_error("cert_file '" + cfg.cert_file + "'");
      return nullptr;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
      *error = ssl_error("key_file '" + cfg.key_file + "'");
      return nullptr;
    }
  }
  return out;
}

ClientContext::~ClientContext() { SSL_CTX_free(ctx_); }

SSL* ClientContext::new_ssl(std::string_view host) const {
  SSL* ssl = SSL_new(ctx_);
  if (ssl == nullptr) return nullptr;
  const std::string name(sni_.empty() ? host : std::string_view(sni_));
  if (!is_ip(name)) SSL_set_tlsext_host_name(ssl, name.c_str());
  if (verify_) {
    if (is_ip(name)) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str());
    } else {
      SSL_set1_host(ssl, name.c_str());
    }
  }
  return ssl;
}

// --- identity ----------------------------------------------------------------------------------

PeerIdentity peer_identity(SSL* ssl) {
  PeerIdentity out;
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return out;
  out.present = true;
  out.verified = SSL_get_verify_result(ssl) == X509_V_OK;
  if (BIO* bio = BIO_new(BIO_s_mem())) {
    X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    if (n > 0) out.subject.assign(data, static_cast<size_t>(n));
    BIO_free(bio);
  }
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
      if (n->type != GEN_URI && n->type != GEN_DNS) continue;
      const ASN1_STRING* s = n->type == GEN_URI ? n->d.uniformResourceIdentifier : n->d.dNSName;
      std::string v(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                    static_cast<size_t>(ASN1_STRING_length(s)));
      (n->type == GEN_URI ? out.uris : out.dns).push_back(std::move(v));
    }
    GENERAL_NAMES_free(sans);
  }
  X509_free(cert);
  return out;
}

namespace {

bool has_control(std::string_view v) {
  for (unsigned char c : v) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

void append_value(std::string& out, std::string_view v, bool always_quote) {
  bool quote = always_quote;
  for (char c : v) {
    if (c == ',' || c == ';' || c == '=' || c == '"' || c == '\\') quote = true;
  }
  if (!quote) {
    out.append(v);
    return;
  }
  out.push_back('"');
  for (char c : v) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
}

}  // namespace

bool format_client_cert(const PeerIdentity& id, std::string* out) {
  out->clear();
  if (has_control(id.subject)) return false;
  for (const auto& u : id.uris) {
    if (has_control(u)) return false;
  }
  for (const auto& d : id.dns) {
    if (has_control(d)) return false;
  }
  out->append("Subject=");
  append_value(*out, id.subject, true);
  for (const auto& u : id.uris) {
    out->append(";URI=");
    append_value(*out, u, false);
  }
  for (const auto& d : id.dns) {
    out->append(";DNS=");
    append_value(*out, d, false);
  }
  return true;
}

std::string_view host_of(std::string_view address) {
  if (!address.empty() && address[0] == '[') {
    const size_t close = address.find(']');
    return close == std::string_view::npos ? address : address.substr(1, close - 1);
  }
  return address.substr(0, address.rfind(':'));
}

void rotate_ticket_keys_if_due(std::chrono::steady_clock::time_point now) {
  auto& rings = ticket_rings();
  std::lock_guard<std::mutex> lock(rings.mutex);
  for (auto& [context, keys] : rings.by_context) {
    auto& ring = *keys;
    if (now - ring.rotated < kTicketKeyLifetime) continue;
    ring.rotated = now;
    const uint32_t next = ring.current.load(std::memory_order_relaxed) + 1;
    TicketKeys::fill(ring.keys[next % 3]);  // the slot no reader uses
    ring.current.store(next, std::memory_order_release);
    ring.has_previous.store(true, std::memory_order_release);
  }
}

}  // namespace switchyard::tls
