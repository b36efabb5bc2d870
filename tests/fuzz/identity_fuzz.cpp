// libFuzzer target: the X-Forwarded-Client-Cert element made from a client certificate's
// subject and SANs (tls::format_client_cert). The input is split on 0xff bytes into the
// subject, then URI and DNS SANs alternately. Whatever they hold, the element is either refused
// (a value has a control byte) or a single header-safe line: no control byte, every quoted
// value closed, and each value read back from it (undoing the escapes) equals the original.
// Build: make fuzz-build.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "switchyard/tls/context.h"

using namespace switchyard;

namespace {

// Reads the element back: key=value pairs split on ';' outside quotes, values unescaped.
std::vector<std::string> values_of(const std::string& element) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < element.size()) {
    const size_t eq = element.find('=', i);
    if (eq == std::string::npos) std::abort();
    i = eq + 1;
    std::string value;
    if (i < element.size() && element[i] == '"') {
      ++i;
      for (;; ++i) {
        if (i >= element.size()) std::abort();  // an unterminated quote
        if (element[i] == '\\') {
          if (++i >= element.size()) std::abort();
          value.push_back(element[i]);
        } else if (element[i] == '"') {
          ++i;
          break;
        } else {
          value.push_back(element[i]);
        }
      }
    } else {
      while (i < element.size() && element[i] != ';') value.push_back(element[i++]);
    }
    out.push_back(value);
    if (i < element.size()) {
      if (element[i] != ';') std::abort();
      ++i;
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0xff) {
      parts.emplace_back();
    } else {
      parts.back().push_back(static_cast<char>(data[i]));
    }
  }
  tls::PeerIdentity id;
  id.present = id.verified = true;
  id.subject = parts[0];
  for (size_t i = 1; i < parts.size(); ++i) (i % 2 ? id.uris : id.dns).push_back(parts[i]);
  std::string element;
  const bool ok = tls::format_client_cert(id, &element);
  bool control = false;
  for (const auto& p : parts) {
    for (unsigned char c : p) control = control || c < 0x20 || c == 0x7f;
  }
  if (ok == control) std::abort();  // refused exactly when a value holds a control byte
  if (!ok) {
    if (!element.empty()) std::abort();
    return 0;
  }
  for (unsigned char c : element) {
    if (c < 0x20 || c == 0x7f) std::abort();
  }
  std::vector<std::string> expected{id.subject};
  expected.insert(expected.end(), id.uris.begin(), id.uris.end());
  expected.insert(expected.end(), id.dns.begin(), id.dns.end());
  if (values_of(element) != expected) std::abort();
  return 0;
}
