#pragma once

// Private to the proxy module: the checks and rewrites switchyard applies to a parsed request
// head before routing it. One place, used by Session and by the fuzzer
// (tests/fuzz/request_fuzz.cpp), so that what is fuzzed is what serves traffic.

#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/message.hpp>
#include <string>
#include <string_view>

#include "switchyard/common/ascii.h"
#include "switchyard/config/config.h"
#include "switchyard/proxy/framing.h"

namespace switchyard::proxy {

namespace http = boost::beast::http;
using Request = http::request<http::buffer_body>;

// A request target may use at most this much, or half of max_request_header_bytes if that is
// smaller; a longer one is a 414 (a head over max_request_header_bytes is a 431 first).
constexpr size_t kMaxTargetBytes = 8192;

// obs-fold (RFC 9112 §5.2): a line break inside the raw head followed by a space or tab. Beast
// would join the lines with a space, which the RFC allows, but two parsers can disagree on
// folded values, so switchyard refuses them.
bool has_obs_fold(std::string_view raw_head);

// Host = uri-host [ ":" port ] (RFC 9110 §7.2): reg-name, IPv4 or [IPv6] characters only.
bool valid_host(std::string_view host);

struct HeadVerdict {
  unsigned status = 0;  // 0: acceptable; else the error status to answer
  const char* reason = "";
  Framing framing = Framing::kNone;
};

// Framing (decide_framing), Host (required on HTTP/1.1, at most one, valid) and target length.
// Collapses identical duplicate Content-Length fields into one. Any thread; no I/O.
HeadVerdict check_request_head(Request& req, const config::Limits& limits);

// Removes hop-by-hop fields (RFC 9110 §7.6.1): the fixed list plus every field that the
// Connection header names. Transfer-Encoding stays: it is this hop's framing. Uses `scratch`
// to hold the Connection values (its capacity is reused across calls).
template <typename Fields>
void strip_hop_by_hop(Fields& fields, std::string& scratch) {
  // Copy the Connection values first: equal_range's end is the next field in list order, so
  // erasing a named field while iterating could invalidate it.
  scratch.clear();
  auto connection = fields.equal_range(http::field::connection);
  for (auto it = connection.first; it != connection.second; ++it) {
    scratch.append(it->value().data(), it->value().size());
    scratch.push_back(',');
  }
  fields.erase(http::field::connection);
  std::string_view value = scratch;
  while (!value.empty()) {
    auto comma = value.find(',');
    std::string_view token = trim_ows(value.substr(0, comma));
    if (!token.empty() && !iequals(token, "close") && !iequals(token, "keep-alive") &&
        !iequals(token, "transfer-encoding")) {
      fields.erase(token);
    }
    value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
  }
  fields.erase(http::field::keep_alive);
  fields.erase(http::field::proxy_connection);
  fields.erase(http::field::te);
  fields.erase(http::field::trailer);
  fields.erase(http::field::upgrade);
}

}  // namespace switchyard::proxy
