#include "switchyard/common/net.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <charconv>
#include <cstring>

namespace switchyard {

uint16_t SocketAddress::port() const {
  if (storage.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
}

void SocketAddress::set_port(uint16_t port) {
  if (storage.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&storage)->sin_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port = htons(port);
  }
}

std::string SocketAddress::ip_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (storage.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, buf, sizeof(buf));
  } else {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, buf,
              sizeof(buf));
  }
  return buf;
}

std::string SocketAddress::to_string() const {
  // Built with append: GCC 12 at -O3 warns falsely (-Wrestrict) on "literal" + std::string.
  std::string out;
  if (is_v6()) out.push_back('[');
  out.append(ip_string());
  if (is_v6()) out.push_back(']');
  out.push_back(':');
  out.append(std::to_string(port()));
  return out;
}

bool SocketAddress::operator==(const SocketAddress& other) const {
  return length == other.length && std::memcmp(&storage, &other.storage, length) == 0;
}

std::optional<SocketAddress> parse_host_port(std::string_view text, bool allow_port_zero,
                                             std::string* error) {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      *error = "expected [ipv6]:port";
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      *error = "expected host:port";
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      *error = "IPv6 addresses need brackets: [addr]:port";
      return std::nullopt;
    }
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc{} || end != port_text.data() + port_text.size() ||
      port > 65535) {
    *error = "port must be a number from 1 to 65535";
    return std::nullopt;
  }
  if (port == 0 && !allow_port_zero) {
    *error = "port must be a number from 1 to 65535";
    return std::nullopt;
  }
  if (host.empty()) {
    *error = "missing host";
    return std::nullopt;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* result = nullptr;
  std::string host_str(host);
  std::string port_str = std::to_string(port);
  int rc = getaddrinfo(host_str.c_str(), port_str.c_str(), &hints, &result);
  if (rc != 0 || result == nullptr) {
    *error = "cannot resolve host '" + host_str + "': " + gai_strerror(rc);
    return std::nullopt;
  }
  SocketAddress addr;
  std::memcpy(&addr.storage, result->ai_addr, result->ai_addrlen);
  addr.length = result->ai_addrlen;
  freeaddrinfo(result);
  return addr;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  std::string s(text);
  IpAddress ip;
  in_addr v4{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    ip.bytes[10] = 0xff;
    ip.bytes[11] = 0xff;
    std::memcpy(ip.bytes.data() + 12, &v4, 4);
    return ip;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    std::memcpy(ip.bytes.data(), &v6, 16);
    return ip;
  }
  return std::nullopt;
}

IpAddress IpAddress::from_socket_address(const SocketAddress& addr) {
  IpAddress ip;
  if (addr.storage.ss_family == AF_INET) {
    ip.bytes[10] = 0xff;
    ip.bytes[11] = 0xff;
    std::memcpy(ip.bytes.data() + 12,
                &reinterpret_cast<const sockaddr_in*>(&addr.storage)->sin_addr, 4);
  } else {
    std::memcpy(ip.bytes.data(), &reinterpret_cast<const sockaddr_in6*>(&addr.storage)->sin6_addr,
                16);
  }
  return ip;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  auto slash = text.find('/');
  auto ip = IpAddress::parse(text.substr(0, slash));
  if (!ip) return std::nullopt;
  bool v4 = text.substr(0, slash).find(':') == std::string_view::npos;
  int max_bits = v4 ? 32 : 128;
  int bits = max_bits;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), bits);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || bits < 0 ||
        bits > max_bits) {
      return std::nullopt;
    }
  }
  Cidr cidr;
  cidr.network = *ip;
  cidr.prefix_bits = v4 ? bits + 96 : bits;
  // Clear host bits so that contains() compares whole bytes.
  for (int i = 0; i < 16; ++i) {
    int keep = cidr.prefix_bits - i * 8;
    if (keep >= 8) continue;
    cidr.network.bytes[i] &= keep <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - keep));
  }
  return cidr;
}

std::string Cidr::to_string() const {
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  char text[INET6_ADDRSTRLEN] = {};
  if (prefix_bits >= 96 && std::memcmp(network.bytes.data(), kMapped, 12) == 0) {
    inet_ntop(AF_INET, network.bytes.data() + 12, text, sizeof text);
    return std::string(text) + "/" + std::to_string(prefix_bits - 96);
  }
  inet_ntop(AF_INET6, network.bytes.data(), text, sizeof text);
  return std::string(text) + "/" + std::to_string(prefix_bits);
}

bool Cidr::contains(const IpAddress& ip) const {
  int bits = prefix_bits;
  for (int i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((ip.bytes[i] & mask) != network.bytes[i]) return false;
  }
  return true;
}

}  // namespace switchyard
