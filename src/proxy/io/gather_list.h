#pragma once

// Private to the proxy module. The gather list of one write: Asio buffers over a BodyFramer's
// slices. Left uninitialised until a write fills it (an HTTP/2 attempt never does), so that
// carrying one costs nothing.

#include <boost/asio/buffer.hpp>
#include <span>

#include "switchyard/http/http1_writer.h"

namespace switchyard::proxy {

class GatherList {
 public:
  GatherList() {}  // NOLINT: the buffers are written by fill() before they are read

  std::span<const boost::asio::const_buffer> fill(const http::http1::BodyFramer& framer) {
    const size_t n = framer.count();
    for (size_t i = 0; i < n; ++i) {
      buffers_.b[i] = boost::asio::const_buffer(framer.slices()[i].data, framer.slices()[i].size);
    }
    return {buffers_.b, n};
  }

 private:
  union Buffers {
    Buffers() {}
    boost::asio::const_buffer b[http::http1::BodyFramer::kMaxSlices];
  } buffers_;
};

}  // namespace switchyard::proxy
