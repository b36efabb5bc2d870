#include "switchyard/balancer/load_report.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace switchyard::balancer {
namespace {

LoadReportResult parse(const std::string& header, LoadReport* out = nullptr) {
  LoadReport report;
  auto r = parse_load_report(header, report);
  if (out) *out = report;
  return r;
}

TEST(LoadReport, TextWithEqualsAndColons) {
  LoadReport r;
  ASSERT_EQ(parse("TEXT cpu_utilization=0.31, mem_utilization:0.52", &r), LoadReportResult::kOk);
  EXPECT_DOUBLE_EQ(*r.cpu, 0.31);
  EXPECT_DOUBLE_EQ(*r.memory, 0.52);
  ASSERT_EQ(parse("TEXT  application_utilization=0.7,rps_fractional=0.5 , eps=0.1, "
                  "named_metrics.queue=0.2, utilization.gpu=0.9, request_cost.db=0.3",
                  &r),
            LoadReportResult::kOk);
  EXPECT_DOUBLE_EQ(*r.application, 0.7);
  EXPECT_DOUBLE_EQ(*r.cpu_for_score(), 0.7);  // application utilization wins, as in Envoy
  EXPECT_EQ(r.other_metrics, 3u);
  EXPECT_FALSE(r.cpu.has_value());
}

TEST(LoadReport, Json) {
  LoadReport r;
  ASSERT_EQ(parse(R"(JSON {"cpu_utilization":0.31,"mem_utilization":0.52,)"
                  R"("named_metrics":{"queue":3,"x":0}})",
                  &r),
            LoadReportResult::kOk);
  EXPECT_DOUBLE_EQ(*r.cpu, 0.31);
  EXPECT_DOUBLE_EQ(*r.memory, 0.52);
  EXPECT_EQ(r.other_metrics, 2u);
  ASSERT_EQ(parse(R"(JSON { "cpu_utilization" : 1 })", &r), LoadReportResult::kOk);
  EXPECT_DOUBLE_EQ(*r.cpu, 1.0);
}

TEST(LoadReport, ValuesAreClampedToOne) {
  LoadReport r;
  ASSERT_EQ(parse("TEXT cpu_utilization=3.5", &r), LoadReportResult::kOk);
  EXPECT_DOUBLE_EQ(*r.cpu, 1.0);
  ASSERT_EQ(parse(R"(JSON {"mem_utilization":1e300})", &r), LoadReportResult::kOk);
  EXPECT_DOUBLE_EQ(*r.memory, 1.0);
}

TEST(LoadReport, InvalidValuesAreRejected) {
  for (const char* h :
       {"TEXT cpu_utilization=nan", "TEXT cpu_utilization=NaN", "TEXT cpu_utilization=inf",
        "TEXT cpu_utilization=-inf", "TEXT cpu_utilization=infinity", "TEXT cpu_utilization=-0.1",
        "TEXT cpu_utilization=abc", "TEXT cpu_utilization=", "TEXT cpu_utilization=0.5x",
        "TEXT cpu_utilization=+0.5", "TEXT cpu_utilization=0x10", R"(JSON {"cpu_utilization":-1})",
        R"(JSON {"cpu_utilization":"0.5"})", R"(JSON {"cpu_utilization":true})",
        R"(JSON {"cpu_utilization":null})", R"(JSON {"named_metrics":{"q":-2}})"}) {
    LoadReport r;
    EXPECT_EQ(parse(h, &r), LoadReportResult::kInvalidValue) << h;
    EXPECT_FALSE(r.cpu.has_value()) << h;  // nothing half-applied
  }
}

TEST(LoadReport, DuplicatesAreRejected) {
  for (const char* h : {"TEXT cpu_utilization=0.1, cpu_utilization=0.2",
                        "TEXT cpu_utilization=0.1, cpu_utilization:0.1",
                        "TEXT named_metrics.a=1, named_metrics.a=2",
                        R"(JSON {"cpu_utilization":0.1,"cpu_utilization":0.2})",
                        R"(JSON {"named_metrics":{"a":1,"a":2}})"}) {
    EXPECT_EQ(parse(h), LoadReportResult::kDuplicate) << h;
  }
  // The same inner name under two different maps is not a duplicate.
  EXPECT_EQ(parse(R"(JSON {"named_metrics":{"a":1},"utilization":{"a":1}})"),
            LoadReportResult::kOk);
}

TEST(LoadReport, MalformedInputIsRejected) {
  std::string long_header = "TEXT cpu_utilization=0.1";
  while (long_header.size() <= 4096)
    long_header += ", named_metrics.m" + std::to_string(long_header.size()) + "=1";
  std::string many = "TEXT a0=1";
  for (int i = 1; i <= 64; ++i) many += ", a" + std::to_string(i) + "=1";
  for (const std::string& h : {std::string(""),
                               std::string("cpu_utilization=0.1"),
                               std::string("TEXT"),
                               std::string("TEXT "),
                               std::string("TEXT cpu_utilization"),
                               std::string("TEXT =0.1"),
                               std::string("TEXT cpu utilization=0.1"),
                               std::string("TEXT cpu_utilization=0.1,"),
                               std::string("TEXT named_metrics.=1"),
                               std::string("BIN AAEC"),
                               std::string("text cpu_utilization=0.1"),
                               std::string("JSON"),
                               std::string("JSON ["),
                               std::string("JSON [0.1]"),
                               std::string("JSON 0.5"),
                               std::string(R"(JSON {"cpu_utilization":0.1)"),
                               std::string(R"(JSON {"cpu_utilization":0.1} x)"),
                               std::string(R"(JSON {"a":{"b":1}})"),
                               std::string(R"(JSON {"named_metrics":{"a":{"b":1}}})"),
                               std::string(R"(JSON {"a b":1})"),
                               long_header,
                               many}) {
    EXPECT_EQ(parse(h), LoadReportResult::kMalformed) << h;
  }
}

// Keys are limited to 128 bytes, and for JSON that is the whole stored key
// ("named_metrics.<name>"): 127 and 128 pass, 129 and 142 are malformed, never copied into the
// 128-byte slot of the duplicate table.
TEST(LoadReport, KeyLengthLimit) {
  auto text_key = [](size_t n) {
    return "TEXT " + std::string(n, 'k') + "=0.5, cpu_utilization=0.2";
  };
  auto json_named = [](size_t total) {  // total = length of "named_metrics." + name
    std::string name(total - 14, 'n');
    return R"(JSON {"cpu_utilization":0.2,"named_metrics":{")" + name + R"(":1}})";
  };
  for (size_t n : {127u, 128u}) {
    LoadReport r;
    EXPECT_EQ(parse_load_report(text_key(n), r), LoadReportResult::kOk) << n;
    EXPECT_EQ(parse_load_report(json_named(n), r), LoadReportResult::kOk) << n;
  }
  for (size_t n : {129u, 142u}) {
    LoadReport r;
    EXPECT_EQ(parse_load_report(text_key(n), r), LoadReportResult::kMalformed) << n;
    EXPECT_EQ(parse_load_report(json_named(n), r), LoadReportResult::kMalformed) << n;
    EXPECT_FALSE(r.cpu.has_value());
  }
}

TEST(LoadReport, UnknownKeysAreIgnored) {
  LoadReport r;
  ASSERT_EQ(parse("TEXT cpu_utilization=0.2, future_field=7", &r), LoadReportResult::kOk);
  EXPECT_DOUBLE_EQ(*r.cpu, 0.2);
}

TEST(LoadReport, ResultNames) {
  EXPECT_EQ(to_string(LoadReportResult::kOk), "ok");
  EXPECT_EQ(to_string(LoadReportResult::kMalformed), "malformed");
  EXPECT_EQ(to_string(LoadReportResult::kInvalidValue), "invalid_value");
  EXPECT_EQ(to_string(LoadReportResult::kDuplicate), "duplicate");
}

// --- endpoint-load-metrics-bin: a base64 OrcaLoadReport ---

std::string b64(const std::string& bytes, bool pad = false) {
  static constexpr char kA[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 2]);
    out.push_back(kA[(v >> 18) & 63]);
    out.push_back(kA[(v >> 12) & 63]);
    out.push_back(i + 1 < bytes.size() ? kA[(v >> 6) & 63] : '=');
    out.push_back(i + 2 < bytes.size() ? kA[v & 63] : '=');
  }
  if (!pad) {
    while (!out.empty() && out.back() == '=') out.pop_back();
  }
  return out;
}

std::string dbl(int field, double d) {
  std::string out(1, static_cast<char>(field << 3 | 1));
  char raw[8];
  std::memcpy(raw, &d, 8);
  return out.append(raw, 8);
}

std::string entry(int field, const std::string& key, double d) {
  std::string e;
  e.push_back('\x0a');
  e.push_back(static_cast<char>(key.size()));
  e.append(key).append(dbl(2, d));
  std::string out;
  out.push_back(static_cast<char>(field << 3 | 2));
  out.push_back(static_cast<char>(e.size()));
  return out.append(e);
}

TEST(LoadReportBin, OrcaFields) {
  const std::string proto = dbl(1, 0.31) + dbl(2, 0.52) + entry(8, "queue", 3) + dbl(9, 0.7) +
                            entry(5, "gpu", 0.2) + std::string("\x18\x05");
  for (bool pad : {false, true}) {
    LoadReport r;
    ASSERT_EQ(parse_load_report_bin(b64(proto, pad), r), LoadReportResult::kOk);
    EXPECT_DOUBLE_EQ(*r.cpu, 0.31);
    EXPECT_DOUBLE_EQ(*r.memory, 0.52);
    EXPECT_DOUBLE_EQ(*r.application, 0.7);
    EXPECT_EQ(r.other_metrics, 2u);  // named_metrics.queue, utilization.gpu (rps skipped)
  }
}

TEST(LoadReportBin, StrictAndBounded) {
  LoadReport r;
  EXPECT_EQ(parse_load_report_bin(b64(dbl(1, -0.5)), r), LoadReportResult::kInvalidValue);
  EXPECT_EQ(parse_load_report_bin(b64(dbl(1, 0.1) + dbl(1, 0.2)), r), LoadReportResult::kDuplicate);
  EXPECT_EQ(parse_load_report_bin(b64(dbl(1, 0.1).substr(0, 5)), r),
            LoadReportResult::kMalformed);  // truncated double
  EXPECT_EQ(parse_load_report_bin(b64(std::string("\x08\x01")), r),
            LoadReportResult::kMalformed);  // cpu as a varint: wrong wire type
  EXPECT_EQ(parse_load_report_bin(b64(std::string("\x0b")), r),
            LoadReportResult::kMalformed);  // a group
  EXPECT_EQ(parse_load_report_bin("not*base64", r), LoadReportResult::kMalformed);
  EXPECT_EQ(parse_load_report_bin("", r), LoadReportResult::kMalformed);
  EXPECT_EQ(parse_load_report_bin(std::string(8000, 'A'), r), LoadReportResult::kMalformed);
  EXPECT_FALSE(r.cpu);  // nothing kept from a refused report
  std::string many;
  for (int i = 0; i < 70; ++i) {
    std::string key = "k";
    key.append(std::to_string(i));
    many.append(entry(8, key, 1));
  }
  EXPECT_EQ(parse_load_report_bin(b64(many), r), LoadReportResult::kMalformed);
}

}  // namespace
}  // namespace switchyard::balancer
