#include "switchyard/http/http1_writer.h"

#include <gtest/gtest.h>

#include "switchyard/http/http1_parser.h"
#include "switchyard/http/response_rules.h"

namespace switchyard::http::http1 {
namespace {

std::string join(const BodyFramer& f) {
  std::string out;
  for (size_t i = 0; i < f.count(); ++i) out.append(f.slices()[i].data, f.slices()[i].size);
  return out;
}

// Chunked framing: one chunk per piece, then the last chunk with trailers.
TEST(BodyFramer, Chunked) {
  BodyFramer f;
  f.reset(BodyMode::kChunked);
  f.begin("HEAD\r\n\r\n");
  const std::string x26(26, 'x');  // pieces are views: their bytes must outlive the write
  f.add("hello");
  f.add(x26);
  f.finish("X-T: 1\r\n");
  EXPECT_EQ(join(f),
            "HEAD\r\n\r\n5\r\nhello\r\n1a\r\n" + std::string(26, 'x') + "\r\n0\r\nX-T: 1\r\n\r\n");
  EXPECT_EQ(f.bytes(), 31u);
  f.begin({});
  f.finish();
  EXPECT_EQ(join(f), "0\r\n\r\n");
}

// Content-Length framing passes pieces as they are; finish adds nothing.
TEST(BodyFramer, Length) {
  BodyFramer f;
  f.reset(BodyMode::kLength);
  f.begin({});
  f.add("ab");
  f.add("");
  f.finish();
  EXPECT_EQ(join(f), "ab");
}

// text: a literal (heads are views into it).
ResponseHead parse(std::string_view text, http1::ResponseParser& p) {
  p.start(8192, std::nullopt);
  ResponseHead h;
  EXPECT_EQ(p.parse_head(text, h), http1::ParseStatus::kOk);
  return h;
}

// A response that names Content-Length in Connection keeps its framing; what Connection names
// otherwise goes; the load report is taken out; a 1.0 client gets close-delimited chunked data.
TEST(ResponseRules, FramingSurvivesConnection) {
  http1::ResponseParser p;
  auto head = parse(
      "HTTP/1.1 200 OK\r\nConnection: Content-Length, X-Drop\r\nX-Drop: 1\r\n"
      "endpoint-load-metrics: TEXT cpu_utilization=0.5\r\nContent-Length: 5\r\n"
      "X-Keep: k\r\n\r\n",
      p);
  auto plan = plan_response(head, 11, true);
  EXPECT_EQ(plan.mode, BodyMode::kLength);
  EXPECT_EQ(plan.content_length, 5u);
  EXPECT_EQ(plan.load_report, "TEXT cpu_utilization=0.5");
  std::string out;
  ResponseWrite w;
  w.mode = plan.mode;
  w.content_length = plan.content_length;
  w.keep_alive = plan.keep_alive;
  write_response_head(out, head, w);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nX-Keep: k\r\nContent-Length: 5\r\n\r\n");
  http1::ResponseParser q;
  auto chunked = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", q);
  auto old = plan_response(chunked, 10, true);
  EXPECT_EQ(old.mode, BodyMode::kUntilClose);
  EXPECT_FALSE(old.keep_alive);
}

// A HEAD or 304 response keeps its Content-Length as information.
TEST(ResponseRules, BodylessKeepsLength) {
  http1::ResponseParser p;
  p.start(8192, std::nullopt, true);
  ResponseHead head;
  ASSERT_EQ(p.parse_head("HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", head),
            http1::ParseStatus::kOk);
  auto plan = plan_response(head, 11, true);
  EXPECT_EQ(plan.mode, BodyMode::kNone);
  std::string out;
  ResponseWrite w;
  write_response_head(out, head, w);
  EXPECT_NE(out.find("Content-Length: 42\r\n"), std::string::npos);
}

}  // namespace
}  // namespace switchyard::http::http1
