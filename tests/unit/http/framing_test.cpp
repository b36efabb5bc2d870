#include "switchyard/http/framing.h"

#include <gtest/gtest.h>

#include <vector>

namespace switchyard::http {
namespace {

FramingResult decide(unsigned version, std::vector<std::string_view> cl,
                     std::vector<std::string_view> te) {
  return decide_framing(version, cl, te);
}

// Plain, unambiguous framings are accepted.
TEST(Framing, AcceptsUnambiguous) {
  EXPECT_EQ(decide(11, {}, {}).framing, Framing::kNone);
  auto cl = decide(11, {"42"}, {});
  EXPECT_EQ(cl.framing, Framing::kContentLength);
  EXPECT_EQ(cl.content_length, 42u);
  EXPECT_EQ(decide(11, {"0"}, {}).framing, Framing::kNone);
  EXPECT_EQ(decide(11, {}, {"chunked"}).framing, Framing::kChunked);
  EXPECT_EQ(decide(11, {}, {" Chunked\t"}).framing, Framing::kChunked);
  // identical duplicates, as fields or as a list, are one length
  EXPECT_EQ(decide(11, {"5", "5"}, {}).content_length, 5u);
  EXPECT_EQ(decide(11, {"5, 5"}, {}).content_length, 5u);
}

// Every ambiguity that smuggling relies on is a 400.
TEST(Framing, RejectsSmugglingShapes) {
  EXPECT_EQ(decide(11, {"3"}, {"chunked"}).framing, Framing::kBadRequest);
  EXPECT_EQ(decide(11, {"3", "4"}, {}).framing, Framing::kBadRequest);
  EXPECT_EQ(decide(11, {"3, 4"}, {}).framing, Framing::kBadRequest);
  EXPECT_EQ(decide(11, {}, {"xchunked"}).framing, Framing::kBadRequest);
  EXPECT_EQ(decide(11, {}, {"chunked, identity"}).framing, Framing::kBadRequest);
  EXPECT_EQ(decide(11, {}, {"chunked", "chunked"}).framing, Framing::kBadRequest);
  EXPECT_EQ(decide(11, {}, {"chunked,"}).framing, Framing::kBadRequest);
  EXPECT_EQ(decide(11, {}, {""}).framing, Framing::kBadRequest);
  EXPECT_EQ(decide(11, {}, {"chunked;x=1"}).framing, Framing::kBadRequest);
  EXPECT_EQ(decide(10, {}, {"chunked"}).framing, Framing::kBadRequest);
  for (std::string_view bad : {"", "-1", "+3", "0x10", "1 2", "12345678901234567890", "3a"}) {
    EXPECT_EQ(decide(11, {bad}, {}).framing, Framing::kBadRequest) << bad;
  }
}

// Codings we do not implement, ending in chunked, are a 501, not a 400.
TEST(Framing, OtherCodingsAreNotImplemented) {
  EXPECT_EQ(decide(11, {}, {"gzip, chunked"}).framing, Framing::kNotImplemented);
  EXPECT_EQ(decide(11, {}, {"gzip", "chunked"}).framing, Framing::kNotImplemented);
}

}  // namespace
}  // namespace switchyard::http
