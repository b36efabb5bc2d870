#include "tls_files.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <memory>

namespace switchyard::config::tls_files {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

// OpenSSL's reason for the last failure, or fallback.
std::string ssl_reason(const char* fallback) {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return fallback;
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

std::unique_ptr<BIO, BioFree> open(const std::string& file, std::string* error) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_file(file.c_str(), "r"));
  if (!bio) {
    ERR_clear_error();
    *error = "cannot open '" + file + "'";
  }
  return bio;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::vector<std::string> dns_names(X509* cert) {
  std::vector<std::string> out;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
      if (n->type != GEN_DNS) continue;
      const auto* s = n->d.dNSName;
      out.push_back(lower(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                      static_cast<size_t>(ASN1_STRING_length(s)))));
    }
    GENERAL_NAMES_free(sans);
  }
  if (out.empty()) {
    char cn[256] = {};
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0) {
      out.push_back(lower(cn));
    }
  }
  return out;
}

}  // namespace

bool check_pair(const std::string& cert_file, const std::string& key_file,
                std::vector<std::string>* names, std::string* error) {
  auto cbio = open(cert_file, error);
  if (!cbio) return false;
  std::unique_ptr<X509, X509Free> cert(PEM_read_bio_X509(cbio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    *error = "'" + cert_file + "' is not a PEM certificate: " + ssl_reason("no certificate");
    return false;
  }
  auto kbio = open(key_file, error);
  if (!kbio) return false;
  std::unique_ptr<EVP_PKEY, KeyFree> key(
      PEM_read_bio_PrivateKey(kbio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    *error =
        "'" + key_file + "' is not a PEM private key (or it is encrypted): " + ssl_reason("no key");
    return false;
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    *error = "the key in '" + key_file + "' does not match the certificate in '" + cert_file + "'";
    return false;
  }
  *names = dns_names(cert.get());
  return true;
}

bool check_ca(const std::string& file, std::string* error) {
  auto bio = open(file, error);
  if (!bio) return false;
  int count = 0;
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    X509_free(x);
    ++count;
  }
  ERR_clear_error();  // the end of the file reads as an error
  if (count == 0) {
    *error = "'" + file + "' holds no PEM certificate";
    return false;
  }
  return true;
}

}  // namespace switchyard::config::tls_files
