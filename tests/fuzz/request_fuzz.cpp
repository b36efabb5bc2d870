// libFuzzer target: arbitrary bytes through the request parsing and normalisation the proxy
// applies to every request (Beast's parser with the proxy's limits, the raw-head obs-fold scan,
// check_request_head, hop-by-hop stripping, target parsing and routing), then the body through
// the same streaming parser. Build: cmake -DSWITCHYARD_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++.
// Run: make fuzz (new inputs go to build-fuzz/corpus; the seed corpus here stays as is).
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstdint>
#include <string>

#include "../../src/proxy/request_head.h"
#include "switchyard/routing/router.h"

namespace {

using namespace switchyard;

const config::Listener& listener() {
  static const config::Listener l = [] {
    config::Listener out;
    config::Route api;
    api.host = "api.example.com";
    api.path_prefix = "/v1/";
    config::Route wild;
    wild.host = "*.example.com";
    config::Route any;
    out.routes = {api, wild, any};
    return out;
  }();
  return l;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace http = boost::beast::http;
  config::Limits limits;
  limits.max_request_header_bytes = 4096;
  http::request_parser<http::buffer_body> parser;
  parser.header_limit(limits.max_request_header_bytes);
  parser.body_limit(1 << 20);
  boost::beast::error_code ec;
  size_t used = parser.put(boost::asio::buffer(data, size), ec);
  if (ec || !parser.is_header_done()) return 0;
  std::string_view raw(reinterpret_cast<const char*>(data), used);
  if (proxy::has_obs_fold(raw)) return 0;
  auto& req = parser.get();
  auto verdict = proxy::check_request_head(req, limits);
  if (verdict.status != 0) return 0;
  std::string scratch;
  proxy::strip_hop_by_hop(req, scratch);
  auto target = routing::parse_target(req.target(), req[http::field::host]);
  routing::Router router(listener());
  if (target.valid) (void)router.match(target.host, target.path);
  // The body, through the same buffer_body streaming the proxy uses.
  char buffer[512];
  size_t offset = used;
  while (!parser.is_done() && offset < size) {
    req.body().data = buffer;
    req.body().size = sizeof(buffer);
    size_t n = parser.put(boost::asio::buffer(data + offset, size - offset), ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) break;
    if (n == 0 && req.body().size == sizeof(buffer)) break;  // no progress: needs more input
    offset += n;
  }
  return 0;
}
