#include "switchyard/http/request_rules.h"

#include <gtest/gtest.h>

#include "switchyard/http/http1_parser.h"
#include "switchyard/http/http1_writer.h"

namespace switchyard::http {
namespace {

// text must outlive the head (its fields are views into it).
RequestHead parse(std::string_view text, http1::RequestParser& p) {
  p.start(16384, std::nullopt);
  RequestHead h;
  EXPECT_EQ(p.parse_head(text, h), http1::ParseStatus::kOk) << text;
  return h;
}

// A Connection header naming a framing field (or Host) is refused.
TEST(CheckRequestHead, ConnectionNamingFraming) {
  http1::RequestParser p;
  config::Limits limits;
  for (const char* token : {"Content-Length", "transfer-encoding", "HOST"}) {
    const std::string text = std::string("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n") +
                             "Connection: keep-alive, " + token + "\r\n\r\n";
    auto head = parse(text, p);
    EXPECT_EQ(check_request_head(head, limits).status, 400u) << token;
  }
  auto ok = parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: X-Secret\r\n\r\n", p);
  EXPECT_EQ(check_request_head(ok, limits).status, 0u);
}

// 414 for a request line over the target limit, 431 for other oversized heads.
TEST(OversizedHead, TargetOrHeader) {
  config::Limits limits;  // 16 KiB heads, 8 KiB targets
  EXPECT_EQ(oversized_head_status("GET /" + std::string(20000, 'a'), limits), 414u);
  EXPECT_EQ(oversized_head_status("GET / HTTP/1.1\r\nX: " + std::string(20000, 'a'), limits), 431u);
}

std::string forward(const std::string& text, const ForwardContext& ctx,
                    std::string_view fallback_host = "ep:80") {
  http1::RequestParser p;
  auto head = parse(text, p);
  config::Limits limits;
  auto verdict = check_request_head(head, limits);
  EXPECT_EQ(verdict.status, 0u);
  auto target = http::parse_target(head.target, head.fields.value(FieldId::kHost));
  RequestForward fwd;
  plan_request_forward(head, verdict, target, ctx, fwd);
  std::string out;
  http1::write_request_head(out, head, fwd, target.origin_needs_slash, fallback_host);
  return out;
}

// Hop-by-hop fields and what Connection names go; framing is switchyard's own; XFF appended
// only for trusted peers.
TEST(PlanRequestForward, HopByHopAndForwarding) {
  ForwardContext ctx;
  ctx.client_ip = "10.0.0.9";
  std::string out = forward(
      "POST /p HTTP/1.1\r\nHost: h\r\nConnection: X-Secret, keep-alive\r\nX-Secret: s\r\n"
      "Keep-Alive: 5\r\nTE: trailers\r\nX-Forwarded-For: 1.1.1.1\r\nContent-Length: 2\r\n"
      "Expect: 100-continue\r\nX-Keep: k\r\n\r\n",
      ctx);
  EXPECT_EQ(out,
            "POST /p HTTP/1.1\r\nHost: h\r\nX-Keep: k\r\nX-Forwarded-For: 10.0.0.9\r\n"
            "X-Forwarded-Proto: http\r\nContent-Length: 2\r\n\r\n");
  ctx.peer_trusted = true;
  out = forward(
      "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\n"
      "X-Forwarded-Proto: https\r\n\r\n",
      ctx);
  EXPECT_NE(out.find("X-Forwarded-For: 1.1.1.1, 10.0.0.9\r\n"), std::string::npos);
  EXPECT_NE(out.find("X-Forwarded-Proto: https\r\n"), std::string::npos);
  EXPECT_EQ(out.find("X-Forwarded-Proto: http\r\n"), std::string::npos);
}

// Absolute-form: origin-form target, Host from the authority; HTTP/1.0 without Host gets the
// fallback.
TEST(PlanRequestForward, HostRules) {
  ForwardContext ctx;
  ctx.client_ip = "10.0.0.9";
  std::string out = forward("GET http://a.example:81?q=1 HTTP/1.1\r\nHost: other\r\n\r\n", ctx);
  EXPECT_EQ(out.rfind("GET /?q=1 HTTP/1.1\r\nHost: a.example:81\r\n", 0), 0u) << out;
  EXPECT_EQ(out.find("other"), std::string::npos);
  out = forward("GET /x HTTP/1.0\r\n\r\n", ctx);
  EXPECT_EQ(out.rfind("GET /x HTTP/1.1\r\nHost: ep:80\r\n", 0), 0u) << out;
}

// Asserted headers: an untrusted copy is dropped; the decision is written when there is one.
TEST(PlanRequestForward, AssertedHeaders) {
  const std::string asserted[] = {"X-Client-Region", "X-Zone"};
  ForwardContext ctx;
  ctx.client_ip = "10.0.0.9";
  ctx.asserted_headers = asserted;
  std::string out = forward(
      "GET / HTTP/1.1\r\nHost: h\r\nx-client-region: evil\r\nX-Zone: z\r\n"
      "Forwarded: for=1\r\nX-Forwarded-Host: e\r\n\r\n",
      ctx);
  EXPECT_EQ(out.find("evil"), std::string::npos);
  EXPECT_EQ(out.find("X-Zone"), std::string::npos);
  EXPECT_EQ(out.find("Forwarded: for"), std::string::npos);
  EXPECT_EQ(out.find("X-Forwarded-Host"), std::string::npos);
  ctx.region_header = "X-Client-Region";
  ctx.region_value = "us-east";
  out = forward("GET / HTTP/1.1\r\nHost: h\r\nX-Client-Region: evil\r\n\r\n", ctx);
  EXPECT_NE(out.find("X-Client-Region: us-east\r\n"), std::string::npos);
  EXPECT_EQ(out.find("evil"), std::string::npos);
}

// Upgrade only for an allowed protocol and never h2c.
TEST(PlanRequestForward, UpgradeAllowList) {
  const std::string allowed[] = {"websocket"};
  ForwardContext ctx;
  ctx.client_ip = "10.0.0.9";
  ctx.upgrade_protocols = allowed;
  std::string ws = forward(
      "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
      "Upgrade: WebSocket\r\n\r\n",
      ctx);
  EXPECT_NE(ws.find("Connection: Upgrade\r\nUpgrade: WebSocket\r\n"), std::string::npos);
  std::string h2c = forward(
      "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
      "Upgrade: h2c\r\nHTTP2-Settings: AAA\r\n\r\n",
      ctx);
  EXPECT_EQ(h2c.find("pgrade"), std::string::npos) << h2c;
  EXPECT_EQ(h2c.find("HTTP2-Settings"), std::string::npos);
}

}  // namespace
}  // namespace switchyard::http

namespace switchyard::http {
namespace {

// Found by the request fuzzer's oracle: a field whose name only starts with
// "transfer-encoding" is an ordinary field. switchyard frames the request itself (no body
// here), so a backend whose parser matches the prefix (http_parser 2.9) refuses the request
// rather than reading a body into it.
TEST(PlanRequestForward, PrefixOfTransferEncodingIsAnOrdinaryField) {
  ForwardContext ctx;
  ctx.client_ip = "10.0.0.9";
  std::string out =
      forward("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encodingng: chunked\r\n\r\n", ctx);
  EXPECT_NE(out.find("Transfer-Encodingng: chunked\r\n"), std::string::npos);
  EXPECT_EQ(out.find("Content-Length"), std::string::npos);
  EXPECT_EQ(out.find("Transfer-Encoding: chunked"), std::string::npos);
}

}  // namespace
}  // namespace switchyard::http
