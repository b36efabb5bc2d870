#include "switchyard/http/http1_parser.h"

#include <gtest/gtest.h>

#include <string>

namespace switchyard::http::http1 {
namespace {

// The end of a head is found across reads without rescanning, and a bare LF is refused.
TEST(FindHeadEnd, AcrossReadsAndBareLf) {
  std::string buf = "GET / HTTP/1.1\r\nHost: x\r\n";
  size_t scanned = 0;
  EXPECT_EQ(find_head_end(buf, &scanned), 0u);
  EXPECT_EQ(scanned, buf.size());
  buf += "\r\nbody";
  EXPECT_EQ(find_head_end(buf, &scanned), buf.size() - 4);
  size_t s2 = 0;
  EXPECT_EQ(find_head_end("GET / HTTP/1.1\nHost: x\n\n", &s2), SIZE_MAX);
}

// Fields are views into the input, reported once each, with the ids the rules use.
TEST(RequestParser, HeadAsViews) {
  std::string head =
      "POST /a?b HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4\r\n"
      "Content-Length: 3\r\nX-Other: y\r\n\r\n";
  RequestParser p;
  p.start(8192, std::nullopt);
  RequestHead h;
  ASSERT_EQ(p.parse_head(head, h), ParseStatus::kOk);
  EXPECT_EQ(h.method, Method::kPost);
  EXPECT_EQ(h.target, "/a?b");
  ASSERT_EQ(h.fields.size(), 4u);
  EXPECT_EQ(h.fields.items[1].id, FieldId::kXForwardedFor);
  EXPECT_EQ(h.fields.items[3].id, FieldId::kOther);
  EXPECT_GE(h.fields.items[0].value.data(), head.data());
  EXPECT_LT(h.fields.items[0].value.data(), head.data() + head.size());
  EXPECT_EQ(h.content_length, 3u);
}

// A chunked body in tiny feeds: pieces are views, trailers are collected, the end is found.
TEST(RequestParser, ChunkedBodyInPieces) {
  RequestParser p;
  p.start(8192, std::nullopt);
  RequestHead h;
  ASSERT_EQ(p.parse_head("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", h),
            ParseStatus::kOk);
  std::string body = "3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n";
  std::string got, pending;
  FieldList trailers;
  BodyPieces pieces;
  pieces.trailers = &trailers;
  for (char c : body) {
    pending.push_back(c);
    pieces.clear();
    ParseStatus st;
    size_t used = p.parse_body(pending, pieces, &st);
    ASSERT_NE(st, ParseStatus::kBad);
    for (size_t i = 0; i < pieces.count; ++i) got += pieces.data[i];
    pending.erase(0, used);
  }
  EXPECT_TRUE(p.done());
  EXPECT_EQ(got, "abcde");
  ASSERT_EQ(trailers.size(), 1u);
  EXPECT_EQ(trailers.items[0].name, "X-T");
}

// More chunks than BodyPieces holds: kPiecesFull, then the rest on the next feed.
TEST(RequestParser, PiecesFull) {
  RequestParser p;
  p.start(8192, std::nullopt);
  RequestHead h;
  ASSERT_EQ(p.parse_head("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", h),
            ParseStatus::kOk);
  std::string body;
  for (int i = 0; i < 40; ++i) body += "1\r\nz\r\n";
  body += "0\r\n\r\n";
  BodyPieces pieces;
  ParseStatus st;
  size_t used = p.parse_body(body, pieces, &st);
  EXPECT_EQ(st, ParseStatus::kPiecesFull);
  EXPECT_EQ(pieces.count, BodyPieces::kCapacity);
  pieces.clear();
  p.parse_body(std::string_view(body).substr(used), pieces, &st);
  EXPECT_EQ(st, ParseStatus::kOk);
  EXPECT_EQ(pieces.count, 40 - BodyPieces::kCapacity);
  EXPECT_TRUE(p.done());
}

// Content-Length over the body limit is found at the head.
TEST(RequestParser, BodyLimitAtHead) {
  RequestParser p;
  p.start(8192, 10);
  RequestHead h;
  EXPECT_EQ(p.parse_head("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n", h),
            ParseStatus::kBodyLimit);
}

// A response to HEAD has no body whatever its Content-Length; a 1.0 response without length
// runs to the end of the connection.
TEST(ResponseParser, HeadAndCloseDelimited) {
  ResponseParser p;
  p.start(8192, std::nullopt, /*skip_body=*/true);
  ResponseHead h;
  ASSERT_EQ(p.parse_head("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", h), ParseStatus::kOk);
  EXPECT_FALSE(h.has_body);
  EXPECT_TRUE(p.done());
  ResponseParser q;
  q.start(8192, std::nullopt);
  ResponseHead h2;
  ASSERT_EQ(q.parse_head("HTTP/1.0 200 OK\r\n\r\n", h2), ParseStatus::kOk);
  EXPECT_TRUE(h2.close_delimited);
  BodyPieces pieces;
  ParseStatus st;
  q.parse_body("hello", pieces, &st);
  EXPECT_EQ(pieces.bytes, 5u);
  EXPECT_EQ(q.parse_eof(), ParseStatus::kOk);
  EXPECT_TRUE(q.done());
}

}  // namespace
}  // namespace switchyard::http::http1
