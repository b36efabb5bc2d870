#pragma once

// gRPC over HTTP/2 as a proxy sees it (README, "HTTP/2 and gRPC"): which requests are gRPC
// calls, what their grpc-timeout asks for, and how a proxy-generated error is told to a gRPC
// client (a trailers-only response with grpc-status, as Envoy does). Pure; any thread.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace switchyard::http::grpc {

// The status codes switchyard itself produces (grpc/status.h).
enum class Status : unsigned {
  kOk = 0,
  kDeadlineExceeded = 4,
  kResourceExhausted = 8,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kUnauthenticated = 16,
  kPermissionDenied = 7,
};

// content-type application/grpc, application/grpc+proto, application/grpc;...
bool is_grpc(std::string_view content_type);

// grpc-timeout: 1 to 8 digits and a unit (H M S m u n). nullopt when malformed (the header is
// then ignored, as gRPC servers do).
std::optional<std::chrono::nanoseconds> parse_timeout(std::string_view value);

// The gRPC status for an HTTP status switchyard answers with: a timeout (504) is
// DEADLINE_EXCEEDED, no usable endpoint or a failed upstream (502, 503) UNAVAILABLE, as the
// gRPC HTTP mapping says for the rest (doc/http-grpc-status-mapping.md).
Status status_for_http(unsigned http_status);

// grpc-message: percent-encoded (space to '~' except '%' stay as they are).
void append_message(std::string& out, std::string_view text);

}  // namespace switchyard::http::grpc
