#pragma once

// For the .cpp files that do I/O only: public headers keep addresses as SocketAddress (plain
// sockaddr storage) so that they need no Asio.

#include <boost/asio/ip/tcp.hpp>
#include <cstring>

#include "switchyard/common/net.h"

namespace switchyard {

inline boost::asio::ip::tcp::endpoint to_endpoint(const SocketAddress& addr) {
  boost::asio::ip::tcp::endpoint ep;
  std::memcpy(ep.data(), &addr.storage, addr.length);
  ep.resize(addr.length);
  return ep;
}

}  // namespace switchyard
