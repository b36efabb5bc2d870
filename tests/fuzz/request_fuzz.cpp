// libFuzzer target: arbitrary bytes through the request path switchyard applies to every request
// (the head scan, obs-fold check, Beast's parser with the proxy's limits, check_request_head,
// target parsing and routing, the forwarding rules, the wire writer, the body parser and
// framer), with a differential oracle: for every input switchyard accepts, the bytes it would
// send upstream are parsed by a second, independent parser (Node's http_parser, Debian
// libhttp-parser) as exactly one request with the same method, target and body, and nothing
// after it. Any disagreement aborts (a finding). Build: cmake -DSWITCHYARD_FUZZ=ON
// -DCMAKE_CXX_COMPILER=clang++. Run: make fuzz.
#include <http_parser.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "switchyard/common/ascii.h"
#include "switchyard/http/http1_parser.h"
#include "switchyard/http/http1_writer.h"
#include "switchyard/http/request_rules.h"
#include "switchyard/routing/router.h"

namespace {

using namespace switchyard;
using namespace switchyard::http;

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

[[noreturn]] void finding(const char* what, const std::string& out) {
  std::fprintf(stderr, "ORACLE: %s\n--- forwarded (%zu bytes) ---\n%s\n---\n", what, out.size(),
               out.c_str());
  std::abort();
}

// What the second parser saw.
struct Seen {
  int messages = 0;
  bool complete = false;
  std::string url;
  std::string body;
};

int on_begin(http_parser* p) {
  static_cast<Seen*>(p->data)->messages++;
  return 0;
}
int on_url(http_parser* p, const char* at, size_t n) {
  static_cast<Seen*>(p->data)->url.append(at, n);
  return 0;
}
int on_body(http_parser* p, const char* at, size_t n) {
  static_cast<Seen*>(p->data)->body.append(at, n);
  return 0;
}
int on_complete(http_parser* p) {
  static_cast<Seen*>(p->data)->complete = true;
  return 0;
}

// http_parser 2.9 flags a message as having Transfer-Encoding as soon as a field name *starts*
// with "transfer-encoding" ("Transfer-Encodingng: x" then fails with "invalid
// transfer-encoding"): a known limit of the oracle, not a disagreement about framing (such a
// backend refuses the request; it cannot be smuggled into). Inputs with such names are not
// judged by it.
bool oracle_misreads(const RequestHead& head) {
  constexpr std::string_view te = "transfer-encoding";
  for (const auto& f : head.fields.items) {
    if (f.name.size() > te.size() && iequals(f.name.substr(0, te.size()), te)) return true;
  }
  return false;
}

void check_with_second_parser(const std::string& out, const RequestHead& head,
                              const RequestForward& fwd, bool needs_slash,
                              const std::string& body) {
  if (oracle_misreads(head)) return;
  http_parser_settings settings;
  http_parser_settings_init(&settings);
  settings.on_message_begin = on_begin;
  settings.on_url = on_url;
  settings.on_body = on_body;
  settings.on_message_complete = on_complete;
  http_parser parser;
  http_parser_init(&parser, HTTP_REQUEST);
  Seen seen;
  parser.data = &seen;
  size_t used = http_parser_execute(&parser, &settings, out.data(), out.size());
  // A method token Beast accepts but http_parser does not know (it has a fixed list) is not a
  // disagreement about framing.
  if (HTTP_PARSER_ERRNO(&parser) == HPE_INVALID_METHOD && head.method == Method::kOther) return;
  if (HTTP_PARSER_ERRNO(&parser) != HPE_OK) {
    finding(http_errno_description(HTTP_PARSER_ERRNO(&parser)), out);
  }
  if (used != out.size()) finding("bytes left over after the request", out);
  if (seen.messages != 1) finding("not exactly one message", out);
  if (!seen.complete) finding("message not complete", out);
  if (std::string_view(http_method_str(static_cast<http_method>(parser.method))) !=
          head.method_text &&
      head.method != Method::kOther) {
    finding("method differs", out);
  }
  std::string target = (needs_slash ? "/" : "") + std::string(fwd.target);
  if (seen.url != target) finding("target differs", out);
  if (seen.body != body) finding("body differs", out);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  config::Limits limits;
  limits.max_request_header_bytes = 4096;
  size_t scanned = 0;
  // Feed the head scan in two parts, as a head arriving in two reads would be.
  size_t split = size / 2;
  size_t end = http1::find_head_end(input.substr(0, split), &scanned);
  if (end == 0) end = http1::find_head_end(input, &scanned);
  if (end == 0 || end == SIZE_MAX || end > limits.max_request_header_bytes) {
    if (end == 0 && size >= limits.max_request_header_bytes) {
      (void)oversized_head_status(input, limits);
    }
    return 0;
  }
  std::string_view raw = input.substr(0, end);
  if (has_obs_fold(raw)) return 0;
  http1::RequestParser parser;
  parser.start(limits.max_request_header_bytes, uint64_t{1} << 20);
  RequestHead head;
  if (parser.parse_head(raw, head) != http1::ParseStatus::kOk) return 0;
  auto verdict = check_request_head(head, limits);
  if (verdict.status != 0) return 0;
  auto target = parse_target(head.target, head.fields.value(FieldId::kHost));
  if (!target.valid) return 0;
  routing::Router router(listener());
  if (router.match(target.host, target.path) == nullptr) std::abort();  // the last route is "any"

  const std::string upgrades[] = {"websocket"};
  const std::string asserted[] = {"X-Client-Region"};
  ForwardContext ctx;
  ctx.client_ip = "192.0.2.1";
  ctx.peer_trusted = (size & 1) != 0;
  ctx.asserted_headers = asserted;
  ctx.upgrade_protocols = upgrades;
  ctx.has_body = verdict.framing == Framing::kContentLength || verdict.framing == Framing::kChunked;
  ctx.region_header = "X-Client-Region";
  ctx.region_value = "eu-west";
  RequestForward fwd;
  plan_request_forward(head, verdict, target, ctx, fwd);
  std::string out;
  http1::write_request_head(out, head, fwd, target.origin_needs_slash, "backend:80");

  // The body, fed in small pieces with the unparsed tail carried over, as the session does.
  std::string body;
  if (ctx.has_body) {
    http1::BodyFramer framer;
    framer.reset(verdict.framing == Framing::kChunked ? http1::BodyMode::kChunked
                                                      : http1::BodyMode::kLength);
    FieldList trailers;
    http1::BodyPieces pieces;
    pieces.trailers = &trailers;
    std::string pending;
    size_t offset = end;
    const size_t step = 7 + (size % 13);
    while (!parser.done()) {
      if (offset >= size && pending.empty()) return 0;  // incomplete: would wait for more
      size_t take = std::min(step, size - offset);
      pending.append(input.substr(offset, take));
      offset += take;
      for (;;) {
        pieces.clear();
        http1::ParseStatus st;
        size_t used = parser.parse_body(pending, pieces, &st);
        if (st == http1::ParseStatus::kBad || st == http1::ParseStatus::kBodyLimit) return 0;
        framer.begin({});
        for (size_t i = 0; i < pieces.count; ++i) {
          framer.add(pieces.data[i]);
          body.append(pieces.data[i]);
        }
        std::string trailer_lines;
        if (parser.done() && framer.mode() == http1::BodyMode::kChunked) {
          http1::write_trailers(trailer_lines, trailers);
          framer.finish(trailer_lines);
        }
        for (size_t i = 0; i < framer.count(); ++i) {
          out.append(framer.slices()[i].data, framer.slices()[i].size);
        }
        pending.erase(0, used);
        if (st != http1::ParseStatus::kPiecesFull) break;
      }
      if (offset >= size && !parser.done() && !pending.empty()) {
        // No more input: what is left is an incomplete element.
        return 0;
      }
    }
  }
  check_with_second_parser(out, head, fwd, target.origin_needs_slash, body);
  return 0;
}
