#include "switchyard/http/grpc.h"

#include <algorithm>

#include "switchyard/common/ascii.h"

namespace switchyard::http::grpc {

bool is_grpc(std::string_view content_type) {
  constexpr std::string_view kGrpc = "application/grpc";
  if (content_type.size() < kGrpc.size() || !iequals(content_type.substr(0, kGrpc.size()), kGrpc))
    return false;
  if (content_type.size() == kGrpc.size()) return true;
  const char next = content_type[kGrpc.size()];
  return next == '+' || next == ';';
}

std::optional<std::chrono::nanoseconds> parse_timeout(std::string_view value) {
  if (value.size() < 2 || value.size() > 9) return std::nullopt;
  int64_t n = 0;
  for (char c : value.substr(0, value.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  using namespace std::chrono;
  switch (value.back()) {
    case 'H':  // 8 digits of hours overflow nanoseconds: past 200 years is forever enough
      return duration_cast<nanoseconds>(hours(std::min<int64_t>(n, 24 * 365 * 200)));
    case 'M':
      return duration_cast<nanoseconds>(minutes(n));
    case 'S':
      return duration_cast<nanoseconds>(seconds(n));
    case 'm':
      return duration_cast<nanoseconds>(milliseconds(n));
    case 'u':
      return duration_cast<nanoseconds>(microseconds(n));
    case 'n':
      return nanoseconds(n);
    default:
      return std::nullopt;
  }
}

Status status_for_http(unsigned http_status) {
  switch (http_status) {
    case 400:
      return Status::kInternal;
    case 401:
      return Status::kUnauthenticated;
    case 403:
      return Status::kPermissionDenied;
    case 404:
      return Status::kUnimplemented;
    case 413:
    case 431:
      return Status::kResourceExhausted;
    case 504:
    case 408:
      return Status::kDeadlineExceeded;
    case 429:
    case 502:
    case 503:
      return Status::kUnavailable;
    default:
      return http_status >= 500 ? Status::kUnavailable : Status::kInternal;
  }
}

void append_message(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : text) {
    if (c >= 0x20 && c <= 0x7e && c != '%') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
}

}  // namespace switchyard::http::grpc
