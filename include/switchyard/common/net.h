#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace switchyard {

// An IPv4 or IPv6 socket address, kept as plain sockaddr storage so that public headers need no
// Asio. Conversions to Asio endpoints live in the .cpp files that do I/O.
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  bool is_v6() const { return storage.ss_family == AF_INET6; }
  uint16_t port() const;
  void set_port(uint16_t port);
  // "127.0.0.1:8080" or "[::1]:8080".
  std::string to_string() const;
  // The address without the port: "127.0.0.1" or "::1".
  std::string ip_string() const;
  bool operator==(const SocketAddress& other) const;
};

// Parses "host:port" or "[v6]:port". host is an IP literal or a name resolved once, now
// (control thread only: this may block on DNS). port 0 is accepted only if allow_port_zero.
// On failure returns nullopt and sets *error.
std::optional<SocketAddress> parse_host_port(std::string_view text, bool allow_port_zero,
                                             std::string* error);

// A 16-byte IP address (IPv4 stored as v4-mapped IPv6) for prefix matching.
struct IpAddress {
  std::array<uint8_t, 16> bytes{};
  static std::optional<IpAddress> parse(std::string_view text);
  static IpAddress from_socket_address(const SocketAddress& addr);
};

// "10.0.0.0/8", "::1/128" or a bare address (a /32 or /128).
struct Cidr {
  IpAddress network;
  int prefix_bits = 0;  // over the 128-bit mapped form
  static std::optional<Cidr> parse(std::string_view text);
  bool contains(const IpAddress& ip) const;
  // "10.0.0.0/8" for a v4-mapped network, "::1/128" otherwise.
  std::string to_string() const;
};

}  // namespace switchyard
