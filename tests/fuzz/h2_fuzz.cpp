// libFuzzer target: arbitrary bytes after the client preface into an HTTP/2 server session
// configured as switchyard's (H2Session: no automatic window updates, bounded SETTINGS,
// CONTINUATION limit, reset rate limit): nghttp2's frame parser and HPACK decoder, then
// switchyard's own handling of what they decode (field classification, method, the request
// checks, grpc-timeout and content-type) and an answer built by H2Fields (lower-casing, the
// connection-specific filter) for every complete request, drained through mem_send. The
// first byte picks the server or the client side (an upstream's response head and trailers).
// Build: cmake -DSWITCHYARD_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++.
#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "../../src/proxy/h2_fields.h"
#include "../../src/proxy/h2_wire.h"
#include "switchyard/proxy/grpc.h"
#include "switchyard/proxy/request_rules.h"

using namespace switchyard;

namespace {

struct State {
  std::string store;
  std::vector<std::pair<size_t, size_t>> spans;  // name at, value at (lengths follow)
  std::vector<std::pair<size_t, size_t>> lens;
  size_t bytes = 0;
};

int on_header(nghttp2_session*, const nghttp2_frame*, const uint8_t* name, size_t namelen,
              const uint8_t* value, size_t valuelen, uint8_t, void* user) {
  auto* s = static_cast<State*>(user);
  s->bytes += namelen + valuelen + 32;
  if (s->bytes > 16384) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  s->spans.emplace_back(s->store.size(), s->store.size() + namelen);
  s->lens.emplace_back(namelen, valuelen);
  s->store.append(reinterpret_cast<const char*>(name), namelen);
  s->store.append(reinterpret_cast<const char*>(value), valuelen);
  return 0;
}

int on_frame(nghttp2_session* ng, const nghttp2_frame* f, void* user) {
  auto* s = static_cast<State*>(user);
  if (f->hd.type != NGHTTP2_HEADERS) return 0;
  proxy::RequestHead head;
  head.version = 20;
  for (size_t i = 0; i < s->spans.size(); ++i) {
    std::string_view name(s->store.data() + s->spans[i].first, s->lens[i].first);
    std::string_view value(s->store.data() + s->spans[i].second, s->lens[i].second);
    if (name == ":method") head.method = proxy::parse_method(value);
    if (name == ":path") head.target = value;
    if (!name.empty() && name[0] == ':') continue;
    head.fields.items.push_back(proxy::Field{name, value, proxy::classify_field(name)});
  }
  config::Limits limits;
  auto verdict = proxy::check_request_head(head, limits);
  auto timeout = proxy::grpc::parse_timeout(head.fields.value(proxy::FieldId::kGrpcTimeout));
  if (timeout && timeout->count() < 0) std::abort();
  (void)proxy::grpc::is_grpc(head.fields.value(proxy::FieldId::kContentType));
  if (f->headers.cat == NGHTTP2_HCAT_REQUEST && nghttp2_session_check_server_session(ng)) {
    auto& out = proxy::H2Fields::scratch();
    out.status(verdict.status != 0 ? verdict.status : 200);
    out.add_kept(head.fields);
    nghttp2_submit_response(ng, f->hd.stream_id, out.nv(), out.size(), nullptr);
  }
  s->spans.clear();
  s->lens.clear();
  s->store.clear();
  s->bytes = 0;
  return 0;
}

int on_data(nghttp2_session* ng, uint8_t, int32_t id, const uint8_t*, size_t len, void*) {
  nghttp2_session_consume(ng, id, len);
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool server = (data[0] & 1) == 0;
  State state;
  nghttp2_session_callbacks* cb = nullptr;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
  nghttp2_option* opt = proxy::h2::new_options();
  nghttp2_session* ng = nullptr;
  if (server) {
    nghttp2_session_server_new2(&ng, cb, &state, opt);
  } else {
    nghttp2_session_client_new2(&ng, cb, &state, opt);
    const nghttp2_nv nv[] = {{(uint8_t*)":method", (uint8_t*)"GET", 7, 3, 0},
                             {(uint8_t*)":path", (uint8_t*)"/", 5, 1, 0},
                             {(uint8_t*)":scheme", (uint8_t*)"http", 7, 4, 0},
                             {(uint8_t*)":authority", (uint8_t*)"a", 10, 1, 0}};
    nghttp2_submit_request(ng, nullptr, nv, 4, nullptr, nullptr);
  }
  nghttp2_submit_settings(ng, NGHTTP2_FLAG_NONE, nullptr, 0);
  static const char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  const uint8_t* out = nullptr;
  while (nghttp2_session_mem_send(ng, &out) > 0) {
  }
  if (server) nghttp2_session_mem_recv(ng, reinterpret_cast<const uint8_t*>(kPreface), 24);
  // The rest in two reads, as a socket might deliver it.
  const size_t half = (size - 1) / 2;
  if (nghttp2_session_mem_recv(ng, data + 1, half) >= 0) {
    while (nghttp2_session_mem_send(ng, &out) > 0) {
    }
    nghttp2_session_mem_recv(ng, data + 1 + half, size - 1 - half);
  }
  while (nghttp2_session_mem_send(ng, &out) > 0) {
  }
  nghttp2_session_del(ng);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  return 0;
}
