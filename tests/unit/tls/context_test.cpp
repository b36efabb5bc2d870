// tls::ServerContext and the session-ticket keys, in process: handshakes over memory BIOs
// between an OpenSSL client and the server context, with a certificate made here.

#include "switchyard/tls/context.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

namespace switchyard::tls {
namespace {

namespace fs = std::filesystem;

// A self-signed ECDSA P-256 certificate for `names` (DNS SANs), written as PEM files.
config::TlsCertificate make_certificate(const std::string& stem,
                                        const std::vector<std::string>& names) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* subject = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(names[0].c_str()), -1, -1, 0);
  X509_set_issuer_name(cert, subject);
  std::string san;
  for (const auto& n : names) san += (san.empty() ? "DNS:" : ",DNS:") + n;
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, san.c_str());
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  X509_sign(cert, key, EVP_sha256());
  // Per process: ctest runs the tests of this file in parallel processes.
  const std::string base = stem + "-" + std::to_string(::getpid());
  config::TlsCertificate out;
  out.cert_file = (fs::temp_directory_path() / (base + "-cert.pem")).string();
  out.key_file = (fs::temp_directory_path() / (base + "-key.pem")).string();
  FILE* f = std::fopen(out.cert_file.c_str(), "w");
  PEM_write_X509(f, cert);
  std::fclose(f);
  f = std::fopen(out.key_file.c_str(), "w");
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  for (const auto& n : names) out.names.push_back(n);
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

// Runs a handshake between client and server SSLs over a BIO pair; true when both finish.
bool handshake(SSL* client, SSL* server) {
  BIO *c_bio = nullptr, *s_bio = nullptr;
  BIO_new_bio_pair(&c_bio, 0, &s_bio, 0);
  SSL_set_bio(client, c_bio, c_bio);
  SSL_set_bio(server, s_bio, s_bio);
  SSL_set_connect_state(client);
  SSL_set_accept_state(server);
  bool c_done = false, s_done = false;
  for (int i = 0; i < 100 && !(c_done && s_done); ++i) {
    if (!c_done) {
      int r = SSL_do_handshake(client);
      if (r == 1)
        c_done = true;
      else if (SSL_get_error(client, r) != SSL_ERROR_WANT_READ)
        return false;
    }
    if (!s_done) {
      int r = SSL_do_handshake(server);
      if (r == 1)
        s_done = true;
      else if (SSL_get_error(server, r) != SSL_ERROR_WANT_READ)
        return false;
    }
  }
  // TLS 1.3 tickets arrive after the handshake: let the client read them.
  char buf[1];
  for (int i = 0; i < 4; ++i) {
    SSL_write(server, "x", 1);
    SSL_read(client, buf, 1);
  }
  return c_done && s_done;
}

struct Pair {
  SSL* client;
  SSL* server;
  ~Pair() {
    // A clean close: a session freed without one counts as bad and is not resumable.
    SSL_shutdown(client);
    SSL_shutdown(server);
    SSL_free(client);
    SSL_free(server);
  }
};

class TlsContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_.certificates.push_back(make_certificate("sy-unit-a", {"a.test"}));
    cfg_.certificates.push_back(make_certificate("sy-unit-b", {"*.b.test"}));
    std::string error;
    server_ = ServerContext::build(cfg_, "test", &error);
    ASSERT_TRUE(server_) << error;
    client_ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(client_ctx_, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_session_cache_mode(client_ctx_, SSL_SESS_CACHE_CLIENT);
  }
  void TearDown() override {
    SSL_CTX_free(client_ctx_);
    for (const auto& c : cfg_.certificates) {
      fs::remove(c.cert_file);
      fs::remove(c.key_file);
    }
  }

  // A handshake for SNI name; returns the served certificate's CN and whether the session was
  // resumed; *session receives the client's session for a later resumption.
  std::pair<std::string, bool> connect(const char* name, SSL_SESSION** session = nullptr,
                                       SSL_SESSION* resume = nullptr,
                                       const ServerContext* on = nullptr) {
    Pair p{SSL_new(client_ctx_), SSL_new((on != nullptr ? on : server_.get())->native())};
    if (name != nullptr) SSL_set_tlsext_host_name(p.client, name);
    if (resume != nullptr) SSL_set_session(p.client, resume);
    EXPECT_TRUE(handshake(p.client, p.server));
    X509* cert = SSL_get1_peer_certificate(p.client);
    char cn[128] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    X509_free(cert);
    if (session != nullptr) *session = SSL_get1_session(p.client);
    return {cn, SSL_session_reused(p.client) == 1};
  }

  config::ListenerTls cfg_;
  std::shared_ptr<const ServerContext> server_;
  SSL_CTX* client_ctx_ = nullptr;
};

TEST_F(TlsContextTest, SniPicksTheCertificateAndWildcardsCoverOneLabel) {
  EXPECT_EQ(connect("a.test").first, "a.test");
  EXPECT_EQ(connect("x.b.test").first, "*.b.test");
  EXPECT_EQ(connect("A.TEST").first, "a.test");      // names are case-insensitive
  EXPECT_EQ(connect("b.test").first, "a.test");      // the wildcard is not its own base name
  EXPECT_EQ(connect("y.x.b.test").first, "a.test");  // nor two labels deep
  EXPECT_EQ(connect(nullptr).first, "a.test");       // no SNI: the default
}

TEST_F(TlsContextTest, TicketsResumeAcrossOneRotationNotTwo) {
  // Each session is resumed once (a TLS 1.3 client uses a ticket once).
  SSL_SESSION *a = nullptr, *b = nullptr, *c = nullptr;
  EXPECT_FALSE(connect("a.test", &a).second);
  ASSERT_EQ(SSL_SESSION_is_resumable(a), 1);
  EXPECT_TRUE(connect("a.test", nullptr, a).second);  // resumed
  EXPECT_FALSE(connect("a.test", &b).second);
  EXPECT_FALSE(connect("a.test", &c).second);
  // After one rotation a ticket's key is the previous one: still accepted.
  auto later = std::chrono::steady_clock::now() + kTicketKeyLifetime + std::chrono::hours(1);
  rotate_ticket_keys_if_due(later);
  EXPECT_TRUE(connect("a.test", nullptr, b).second);
  // After a second rotation that key is gone: a full handshake.
  rotate_ticket_keys_if_due(later + kTicketKeyLifetime + std::chrono::hours(1));
  EXPECT_FALSE(connect("a.test", nullptr, c).second);
  SSL_SESSION_free(a);
  SSL_SESSION_free(b);
  SSL_SESSION_free(c);
}

TEST_F(TlsContextTest, SessionsNeverResumeOnAnotherListenerOrUnderAnotherCa) {
  // A ticket from one listener is not even decryptable by another (its own session context and
  // key ring), nor by the same listener once a reload changed its CA or client-certificate mode.
  std::string error;
  auto other = ServerContext::build(cfg_, "other", &error);
  ASSERT_TRUE(other) << error;
  SSL_SESSION *s1 = nullptr, *s2 = nullptr, *s3 = nullptr;
  connect("a.test", &s1);
  EXPECT_FALSE(connect("a.test", nullptr, s1, other.get()).second);
  // The same name, another policy: optional client certificates under CA 1, then CA 2.
  auto with_ca = [&](const std::string& ca) {
    config::ListenerTls c = cfg_;
    c.client_certificate = config::ClientCertificate::kOptional;
    c.client_ca_file = ca;
    auto built = ServerContext::build(c, "test", &error);
    EXPECT_TRUE(built) << error;
    return built;
  };
  auto ca1 = with_ca(cfg_.certificates[0].cert_file);
  auto ca2 = with_ca(cfg_.certificates[1].cert_file);
  connect("a.test", &s2, nullptr, ca1.get());
  EXPECT_FALSE(connect("a.test", nullptr, s2, ca2.get()).second);      // the CA changed
  EXPECT_FALSE(connect("a.test", nullptr, s2, server_.get()).second);  // the mode changed
  connect("a.test", &s3, nullptr, ca1.get());
  EXPECT_TRUE(connect("a.test", nullptr, s3, with_ca(cfg_.certificates[0].cert_file).get())
                  .second);  // rebuilt by a reload that changed nothing: still resumes
  EXPECT_TRUE(ca1->client_certificates());
  EXPECT_FALSE(ca1->client_certificate_required());
  SSL_SESSION_free(s1);
  SSL_SESSION_free(s2);
  SSL_SESSION_free(s3);
}

TEST_F(TlsContextTest, TicketsOffMeansFullHandshakes) {
  cfg_.session_tickets = false;
  std::string error;
  server_ = ServerContext::build(cfg_, "test", &error);
  ASSERT_TRUE(server_) << error;
  SSL_SESSION* session = nullptr;
  connect("a.test", &session);
  ASSERT_NE(session, nullptr);
  EXPECT_FALSE(connect("a.test", nullptr, session).second);
  SSL_SESSION_free(session);
}

TEST(TlsContext, BuildReportsABadCipherList) {
  config::ListenerTls cfg;
  cfg.certificates.push_back(make_certificate("sy-unit-c", {"c.test"}));
  cfg.ciphers = "NOT-A-CIPHER";
  std::string error;
  EXPECT_FALSE(ServerContext::build(cfg, "test", &error));
  EXPECT_NE(error.find("ciphers 'NOT-A-CIPHER'"), std::string::npos) << error;
}

TEST(TlsContext, ClientCertHeaderIsQuotedAndRefusesControlBytes) {
  // Envoy's XFCC shape: Subject always quoted, other values quoted only when they must be.
  PeerIdentity id;
  id.subject = "CN=web \"client\",O=ex\\ample";
  id.uris = {"spiffe://test/ns/web", "spiffe://t/a;b=c"};
  id.dns = {"web.test"};
  std::string out;
  ASSERT_TRUE(format_client_cert(id, &out));
  EXPECT_EQ(out,
            "Subject=\"CN=web \\\"client\\\",O=ex\\\\ample\";URI=spiffe://test/ns/web;"
            "URI=\"spiffe://t/a;b=c\";DNS=web.test");
  for (const std::string& bad : {std::string("spiffe://x\r\nX-Injected: 1"), std::string("a\tb"),
                                 std::string("del\x7f"), std::string("nul\0x", 5)}) {
    PeerIdentity evil = id;
    evil.uris.push_back(bad);
    EXPECT_FALSE(format_client_cert(evil, &out)) << bad;
    EXPECT_TRUE(out.empty());
  }
  PeerIdentity dns = id;
  dns.dns.push_back("x\ny");
  EXPECT_FALSE(format_client_cert(dns, &out));
}

TEST(TlsContext, HostOf) {
  EXPECT_EQ(host_of("backend.test:443"), "backend.test");
  EXPECT_EQ(host_of("127.0.0.1:8443"), "127.0.0.1");
  EXPECT_EQ(host_of("[::1]:8443"), "::1");
}

}  // namespace
}  // namespace switchyard::tls
