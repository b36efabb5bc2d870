#pragma once

// Private to the config module: what --check and a reload verify of TLS files before any
// context is built (README, "TLS"): they exist, parse as PEM, a key matches its certificate.

#include <string>
#include <vector>

namespace switchyard::config::tls_files {

// The certificate chain and its private key. On success fills names with the DNS names the
// leaf certificate serves (subjectAltName dNSName entries, else its CN), lower-cased.
bool check_pair(const std::string& cert_file, const std::string& key_file,
                std::vector<std::string>* names, std::string* error);
// A file of one or more PEM CA certificates.
bool check_ca(const std::string& file, std::string* error);

}  // namespace switchyard::config::tls_files
