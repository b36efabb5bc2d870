#include "grpc_check.h"

#include <cstring>

namespace switchyard::health {
namespace {

constexpr size_t kMaxBody = 64 * 1024;

GrpcCheck* self_of(void* user) { return static_cast<GrpcCheck*>(user); }

nghttp2_nv nv(std::string_view name, std::string_view value) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), NGHTTP2_NV_FLAG_NONE};
}

}  // namespace

GrpcCheck::GrpcCheck(std::string_view authority, std::string_view service, bool tls) {
  nghttp2_session_callbacks* cb = nullptr;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
  nghttp2_session_client_new(&ng_, cb, this);
  nghttp2_session_callbacks_del(cb);
  const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
  nghttp2_submit_settings(ng_, NGHTTP2_FLAG_NONE, settings, 1);
  // HealthCheckRequest { string service = 1; } in a gRPC frame (uncompressed, 4-byte length).
  std::string message;
  if (!service.empty() && service.size() < 128) {
    message.push_back('\x0a');
    message.push_back(static_cast<char>(service.size()));
    message.append(service);
  }
  request_.push_back('\0');
  const auto len = static_cast<uint32_t>(message.size());
  for (int shift = 24; shift >= 0; shift -= 8) request_.push_back(static_cast<char>(len >> shift));
  request_.append(message);
  const nghttp2_nv head[] = {
      nv(":method", "POST"),
      nv(":scheme", tls ? "https" : "http"),
      nv(":path", "/grpc.health.v1.Health/Check"),
      nv(":authority", authority),
      nv("content-type", "application/grpc"),
      nv("te", "trailers"),
      nv("user-agent", "switchyard-health-check"),
  };
  nghttp2_data_provider provider{};
  provider.source.ptr = this;
  provider.read_callback = read_body;
  nghttp2_submit_request(ng_, nullptr, head, std::size(head), &provider, this);
}

GrpcCheck::~GrpcCheck() { nghttp2_session_del(ng_); }

bool GrpcCheck::produce(std::string& out) {
  for (;;) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(ng_, &data);
    if (n < 0) return false;
    if (n == 0) return true;
    out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
}

bool GrpcCheck::consume(const char* data, size_t size) {
  return nghttp2_session_mem_recv(ng_, reinterpret_cast<const uint8_t*>(data), size) >= 0;
}

bool GrpcCheck::serving() const {
  if (!finished_ || error_code_ != 0 || http_status_ != 200 || grpc_status_ != 0) return false;
  // One message: 5-byte prefix, then HealthCheckResponse { ServingStatus status = 1; }.
  if (body_.size() < 5 || body_[0] != 0) return false;
  std::string_view msg = std::string_view(body_).substr(5);
  for (size_t i = 0; i + 1 < msg.size();) {
    const auto tag = static_cast<uint8_t>(msg[i]);
    if (tag == 0x08) return static_cast<uint8_t>(msg[i + 1]) == 1;  // SERVING
    if ((tag & 7) != 0) return false;                               // only varints expected
    i += 2;
  }
  return false;  // status absent: UNKNOWN (0)
}

std::string GrpcCheck::detail() const {
  if (!finished_) return "no answer";
  if (error_code_ != 0) return std::string("stream reset: ") + nghttp2_http2_strerror(error_code_);
  if (http_status_ != 200) return "status " + std::to_string(http_status_);
  if (grpc_status_ != 0) {
    return "grpc-status " + std::to_string(grpc_status_) +
           (grpc_message_.empty() ? "" : " (" + grpc_message_ + ")");
  }
  return serving() ? "SERVING" : "not SERVING";
}

int GrpcCheck::on_header(nghttp2_session*, const nghttp2_frame*, const uint8_t* name,
                         size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                         void* user) {
  auto* self = self_of(user);
  std::string_view n(reinterpret_cast<const char*>(name), namelen);
  std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (n == ":status") {
    self->http_status_ = 0;
    for (char c : v) self->http_status_ = self->http_status_ * 10 + static_cast<unsigned>(c - '0');
  } else if (n == "grpc-status") {
    int s = 0;
    for (char c : v) s = s * 10 + (c - '0');
    self->grpc_status_ = s;
  } else if (n == "grpc-message") {
    self->grpc_message_.assign(v.substr(0, 200));
  } else if (n == "endpoint-load-metrics" && self->load_report_.empty()) {
    self->load_report_.assign(v.substr(0, 4096));
  }
  return 0;
}

int GrpcCheck::on_data(nghttp2_session*, uint8_t, int32_t, const uint8_t* data, size_t len,
                       void* user) {
  auto* self = self_of(user);
  if (self->body_.size() + len > kMaxBody) return NGHTTP2_ERR_CALLBACK_FAILURE;
  self->body_.append(reinterpret_cast<const char*>(data), len);
  return 0;
}

int GrpcCheck::on_close(nghttp2_session*, int32_t, uint32_t error_code, void* user) {
  auto* self = self_of(user);
  self->finished_ = true;
  self->error_code_ = error_code;
  return 0;
}

ssize_t GrpcCheck::read_body(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                             uint32_t* flags, nghttp2_data_source* source, void*) {
  auto* self = static_cast<GrpcCheck*>(source->ptr);
  const size_t n = std::min(length, self->request_.size() - self->sent_);
  std::memcpy(buf, self->request_.data() + self->sent_, n);
  self->sent_ += n;
  if (self->sent_ == self->request_.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

}  // namespace switchyard::health
