#pragma once

// Private to the health module. One grpc.health.v1.Health/Check call (health_check.protocol:
// grpc) as an HTTP/2 exchange in memory (nghttp2): the prober moves the bytes. Passes when the
// call ends with :status 200, grpc-status 0 and a HealthCheckResponse whose status is SERVING
// (1). The response is bounded (64 KiB). Control thread.

#include <nghttp2/nghttp2.h>

#include <string>
#include <string_view>

namespace switchyard::health {

class GrpcCheck {
 public:
  GrpcCheck(std::string_view authority, std::string_view service, bool tls);
  ~GrpcCheck();
  GrpcCheck(const GrpcCheck&) = delete;
  GrpcCheck& operator=(const GrpcCheck&) = delete;

  // Appends what is to be sent now; false on a protocol error.
  bool produce(std::string& out);
  // Takes received bytes; false on a protocol error.
  bool consume(const char* data, size_t size);
  bool finished() const { return finished_; }
  bool serving() const;
  // Why it did not pass (or "SERVING").
  std::string detail() const;
  // An endpoint-load-metrics header of the response, if any (headers or trailers).
  std::string_view load_report() const { return load_report_; }

 private:
  static int on_header(nghttp2_session*, const nghttp2_frame*, const uint8_t*, size_t,
                       const uint8_t*, size_t, uint8_t, void*);
  static int on_data(nghttp2_session*, uint8_t, int32_t, const uint8_t*, size_t, void*);
  static int on_close(nghttp2_session*, int32_t, uint32_t, void*);
  static ssize_t read_body(nghttp2_session*, int32_t, uint8_t*, size_t, uint32_t*,
                           nghttp2_data_source*, void*);

  nghttp2_session* ng_ = nullptr;
  std::string request_;  // the gRPC message, length-prefixed
  size_t sent_ = 0;
  bool finished_ = false;
  uint32_t error_code_ = 0;
  unsigned http_status_ = 0;
  int grpc_status_ = -1;
  std::string grpc_message_;
  std::string body_;
  std::string load_report_;
};

}  // namespace switchyard::health
