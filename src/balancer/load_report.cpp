#include "switchyard/balancer/load_report.h"

#include <algorithm>
#include <array>
#include <boost/json/basic_parser_impl.hpp>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <span>

namespace switchyard::balancer {
namespace {

constexpr size_t kMaxHeaderBytes = 4096;
constexpr size_t kMaxItems = 64;
constexpr size_t kMaxKeyBytes = 128;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

// Keys seen in one report, to refuse duplicates without allocating. Callers refuse a key
// longer than kMaxKeyBytes as malformed first (for JSON that is the whole "outer.inner" key,
// up to 14 + 1 + 128 bytes before this check: a copy of that into a 128-byte slot would write
// into the next slot of the same object, invisible to ASan). The check below is the invariant,
// kept even where callers are right: one comparison per key.
class SeenKeys {
 public:
  // False when key was already seen.
  bool insert(std::string_view key) {
    if (key.size() > kMaxKeyBytes) std::abort();  // a caller let an over-long key through
    for (size_t i = 0; i < count_; ++i) {
      if (std::string_view(keys_[i].data(), sizes_[i]) == key) return false;
    }
    std::memcpy(keys_[count_].data(), key.data(), key.size());
    sizes_[count_++] = static_cast<uint8_t>(key.size());
    return true;
  }
  bool full() const { return count_ == kMaxItems; }

 private:
  std::array<std::array<char, kMaxKeyBytes>, kMaxItems> keys_;
  std::array<uint8_t, kMaxItems> sizes_{};
  size_t count_ = 0;
};

// Stores one validated value under its key. Returns the result for the whole report so far.
LoadReportResult store(std::string_view key, double value, LoadReport& out) {
  if (!std::isfinite(value) || value < 0) return LoadReportResult::kInvalidValue;
  value = std::min(value, 1.0);
  if (key == "cpu_utilization") {
    out.cpu = value;
  } else if (key == "mem_utilization") {
    out.memory = value;
  } else if (key == "application_utilization") {
    out.application = value;
  } else if (key == "rps_fractional") {
    out.rps_fractional = value;
  } else if (key == "eps") {
    out.eps = value;
  } else if (key.starts_with("named_metrics.") || key.starts_with("utilization.") ||
             key.starts_with("request_cost.")) {
    if (key.find('.') + 1 == key.size()) return LoadReportResult::kMalformed;  // "named_metrics."
    ++out.other_metrics;
  }
  // Any other well-formed key: a field this version does not know; ignored.
  return LoadReportResult::kOk;
}

bool valid_key(std::string_view key) {
  return !key.empty() && key.size() <= kMaxKeyBytes &&
         std::all_of(key.begin(), key.end(), key_char);
}

// TEXT: comma-separated items, each KEY=VALUE or KEY:VALUE.
LoadReportResult parse_text(std::string_view body, LoadReport& out) {
  SeenKeys seen;
  body = trim(body);
  if (body.empty()) return LoadReportResult::kMalformed;
  while (true) {
    size_t comma = body.find(',');
    std::string_view item = trim(body.substr(0, comma));
    size_t sep = item.find_first_of("=:");
    if (sep == std::string_view::npos) return LoadReportResult::kMalformed;
    std::string_view key = trim(item.substr(0, sep));
    std::string_view text = trim(item.substr(sep + 1));
    if (!valid_key(key)) return LoadReportResult::kMalformed;
    if (seen.full()) return LoadReportResult::kMalformed;
    if (!seen.insert(key)) return LoadReportResult::kDuplicate;
    double value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    // from_chars also reads "nan" and "inf": those are numbers it parsed, rejected by store().
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
      return LoadReportResult::kInvalidValue;
    }
    if (auto r = store(key, value, out); r != LoadReportResult::kOk) return r;
    if (comma == std::string_view::npos) break;
    body.remove_prefix(comma + 1);
  }
  return LoadReportResult::kOk;
}

// JSON: one object of numbers; named_metrics / utilization / request_cost may be objects of
// numbers (ORCA's JSON mapping). A SAX handler, so that duplicates are seen (a DOM keeps the
// last one silently) and nothing is allocated per key.
struct JsonHandler {
  static constexpr size_t max_array_size = 0;
  static constexpr size_t max_object_size = kMaxItems;
  static constexpr size_t max_string_size = 256;  // strings are refused in the handler
  static constexpr size_t max_key_size = kMaxKeyBytes;

  LoadReport* out = nullptr;
  LoadReportResult result = LoadReportResult::kOk;
  SeenKeys seen;
  int depth = 0;
  std::array<char, 2 * kMaxKeyBytes + 1> key{};  // "outer.inner" of the value being read
  size_t key_size = 0;
  size_t outer_size = 0;  // length of the enclosing object's key, depth 2

  bool fail(LoadReportResult r, boost::json::error_code& ec) {
    if (result == LoadReportResult::kOk) result = r;
    ec = boost::json::error::extra_data;  // any error stops the parser
    return false;
  }
  bool on_document_begin(boost::json::error_code&) { return true; }
  bool on_document_end(boost::json::error_code&) { return true; }
  bool on_array_begin(boost::json::error_code& ec) {
    return fail(LoadReportResult::kMalformed, ec);
  }
  bool on_array_end(size_t, boost::json::error_code&) { return true; }
  bool on_object_begin(boost::json::error_code& ec) {
    if (depth == 0) return ++depth, true;
    std::string_view outer(key.data(), key_size);
    if (depth == 1 &&
        (outer == "named_metrics" || outer == "utilization" || outer == "request_cost")) {
      outer_size = key_size;
      return ++depth, true;
    }
    return fail(LoadReportResult::kMalformed, ec);
  }
  bool on_object_end(size_t, boost::json::error_code&) {
    --depth;
    return true;
  }
  bool on_string_part(std::string_view, size_t, boost::json::error_code& ec) {
    return fail(LoadReportResult::kInvalidValue, ec);
  }
  bool on_string(std::string_view, size_t, boost::json::error_code& ec) {
    return fail(LoadReportResult::kInvalidValue, ec);
  }
  bool on_key_part(std::string_view s, size_t, boost::json::error_code& ec) {
    return append_key(s, ec);
  }
  bool on_key(std::string_view s, size_t, boost::json::error_code& ec) {
    if (!append_key(s, ec)) return false;
    std::string_view k(key.data(), key_size);
    std::string_view own = depth == 2 ? k.substr(outer_size + 1) : k;
    // The whole key ("named_metrics.queue") is what is stored and compared: it must fit.
    if (!valid_key(own) || k.size() > kMaxKeyBytes) return fail(LoadReportResult::kMalformed, ec);
    if (seen.full()) return fail(LoadReportResult::kMalformed, ec);
    if (!seen.insert(k)) return fail(LoadReportResult::kDuplicate, ec);
    key_complete = true;  // the value that follows is stored under it; the next key starts anew
    return true;
  }
  bool append_key(std::string_view s, boost::json::error_code& ec) {
    if (key_complete) {  // a new key starts: at depth 2 it is prefixed by "outer."
      key_size = depth == 2 ? outer_size + 1 : 0;
      if (depth == 2) key[outer_size] = '.';
      key_complete = false;
    }
    if (key_size + s.size() > key.size()) return fail(LoadReportResult::kMalformed, ec);
    std::memcpy(key.data() + key_size, s.data(), s.size());
    key_size += s.size();
    return true;
  }
  bool value(double v, boost::json::error_code& ec) {
    if (depth == 0) return fail(LoadReportResult::kMalformed, ec);  // not an object
    if (auto r = store(std::string_view(key.data(), key_size), v, *out);
        r != LoadReportResult::kOk) {
      return fail(r, ec);
    }
    return true;
  }
  bool on_number_part(std::string_view, boost::json::error_code&) { return true; }
  bool on_int64(int64_t i, std::string_view, boost::json::error_code& ec) {
    return value(static_cast<double>(i), ec);
  }
  bool on_uint64(uint64_t u, std::string_view, boost::json::error_code& ec) {
    return value(static_cast<double>(u), ec);
  }
  bool on_double(double d, std::string_view, boost::json::error_code& ec) { return value(d, ec); }
  bool on_bool(bool, boost::json::error_code& ec) {
    return fail(LoadReportResult::kInvalidValue, ec);
  }
  bool on_null(boost::json::error_code& ec) { return fail(LoadReportResult::kInvalidValue, ec); }
  bool on_comment_part(std::string_view, boost::json::error_code&) { return true; }
  bool on_comment(std::string_view, boost::json::error_code&) { return true; }

  bool key_complete = true;
};

LoadReportResult parse_json(std::string_view body, LoadReport& out) {
  boost::json::parse_options options;
  options.max_depth = 3;
  boost::json::basic_parser<JsonHandler> parser(options);
  parser.handler().out = &out;
  boost::json::error_code ec;
  size_t used = parser.write_some(false, body.data(), body.size(), ec);
  if (parser.handler().result != LoadReportResult::kOk) return parser.handler().result;
  if (ec || used != body.size()) return LoadReportResult::kMalformed;
  return LoadReportResult::kOk;
}

}  // namespace

std::string_view to_string(LoadReportResult result) {
  switch (result) {
    case LoadReportResult::kOk:
      return "ok";
    case LoadReportResult::kMalformed:
      return "malformed";
    case LoadReportResult::kInvalidValue:
      return "invalid_value";
    case LoadReportResult::kDuplicate:
      return "duplicate";
  }
  return "malformed";
}

namespace {

// --- the binary form: a base64 OrcaLoadReport (xds/data/orca/v3/orca_load_report.proto) ---

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

// Standard or URL-safe alphabet, padding optional (gRPC sends binary metadata unpadded).
// Returns the decoded size, or SIZE_MAX when malformed or larger than out.
size_t base64_decode(std::string_view in, std::span<uint8_t> out) {
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return SIZE_MAX;
  size_t n = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = base64_value(c);
    if (v < 0) return SIZE_MAX;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (n == out.size()) return SIZE_MAX;
      out[n++] = static_cast<uint8_t>(acc >> bits);
    }
  }
  return n;
}

class ProtoReader {
 public:
  explicit ProtoReader(std::span<const uint8_t> in) : in_(in) {}
  bool done() const { return pos_ == in_.size(); }
  bool varint(uint64_t* out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ == in_.size()) return false;
      const uint8_t b = in_[pos_++];
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        *out = v;
        return true;
      }
    }
    return false;  // over 10 bytes
  }
  bool fixed(size_t size, uint64_t* out) {
    if (in_.size() - pos_ < size) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < size; ++i) v |= static_cast<uint64_t>(in_[pos_ + i]) << (8 * i);
    pos_ += size;
    *out = v;
    return true;
  }
  bool bytes(std::span<const uint8_t>* out) {
    uint64_t len = 0;
    if (!varint(&len) || len > in_.size() - pos_) return false;
    *out = in_.subspan(pos_, len);
    pos_ += len;
    return true;
  }
  // Skips a field of this wire type (groups, 3 and 4, are refused).
  bool skip(uint32_t wire) {
    uint64_t ignored = 0;
    std::span<const uint8_t> b;
    switch (wire) {
      case 0:
        return varint(&ignored);
      case 1:
        return fixed(8, &ignored);
      case 2:
        return bytes(&b);
      case 5:
        return fixed(4, &ignored);
      default:
        return false;
    }
  }

 private:
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
};

double as_double(uint64_t bits) {
  double d = 0;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

// One map<string, double> entry (request_cost, utilization, named_metrics).
LoadReportResult parse_map_entry(std::span<const uint8_t> entry, std::string_view map,
                                 SeenKeys& seen, LoadReport& out) {
  ProtoReader r(entry);
  std::string_view name;
  double value = 0;
  while (!r.done()) {
    uint64_t tag = 0;
    if (!r.varint(&tag)) return LoadReportResult::kMalformed;
    const auto field = tag >> 3;
    const auto wire = static_cast<uint32_t>(tag & 7);
    if (field == 1 && wire == 2) {
      std::span<const uint8_t> b;
      if (!r.bytes(&b)) return LoadReportResult::kMalformed;
      name = std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
    } else if (field == 2 && wire == 1) {
      uint64_t bits = 0;
      if (!r.fixed(8, &bits)) return LoadReportResult::kMalformed;
      value = as_double(bits);
    } else if (!r.skip(wire)) {
      return LoadReportResult::kMalformed;
    }
  }
  if (name.empty() || map.size() + 1 + name.size() > kMaxKeyBytes ||
      !std::all_of(name.begin(), name.end(), key_char)) {
    return LoadReportResult::kMalformed;
  }
  std::array<char, kMaxKeyBytes> key;
  std::memcpy(key.data(), map.data(), map.size());
  key[map.size()] = '.';
  std::memcpy(key.data() + map.size() + 1, name.data(), name.size());
  const std::string_view full(key.data(), map.size() + 1 + name.size());
  if (seen.full()) return LoadReportResult::kMalformed;
  if (!seen.insert(full)) return LoadReportResult::kDuplicate;
  return store(full, value, out);
}

LoadReportResult parse_orca(std::span<const uint8_t> in, LoadReport& out) {
  SeenKeys seen;
  ProtoReader r(in);
  while (!r.done()) {
    uint64_t tag = 0;
    if (!r.varint(&tag)) return LoadReportResult::kMalformed;
    const auto field = tag >> 3;
    const auto wire = static_cast<uint32_t>(tag & 7);
    std::string_view scalar;
    std::string_view map;
    switch (field) {
      case 1:
        scalar = "cpu_utilization";
        break;
      case 2:
        scalar = "mem_utilization";
        break;
      case 6:
        scalar = "rps_fractional";
        break;
      case 7:
        scalar = "eps";
        break;
      case 9:
        scalar = "application_utilization";
        break;
      case 4:
        map = "request_cost";
        break;
      case 5:
        map = "utilization";
        break;
      case 8:
        map = "named_metrics";
        break;
      default:
        break;
    }
    if (!scalar.empty() && wire == 1) {
      uint64_t bits = 0;
      if (!r.fixed(8, &bits)) return LoadReportResult::kMalformed;
      if (seen.full()) return LoadReportResult::kMalformed;
      if (!seen.insert(scalar)) return LoadReportResult::kDuplicate;
      if (auto res = store(scalar, as_double(bits), out); res != LoadReportResult::kOk) return res;
    } else if (!map.empty() && wire == 2) {
      std::span<const uint8_t> entry;
      if (!r.bytes(&entry)) return LoadReportResult::kMalformed;
      if (auto res = parse_map_entry(entry, map, seen, out); res != LoadReportResult::kOk)
        return res;
    } else if (!scalar.empty() || !map.empty()) {
      return LoadReportResult::kMalformed;  // a known field with the wrong wire type
    } else if (!r.skip(wire)) {
      return LoadReportResult::kMalformed;  // rps (3, deprecated) and newer fields skipped
    }
  }
  return LoadReportResult::kOk;
}

}  // namespace

LoadReportResult parse_load_report_bin(std::string_view value, LoadReport& out) {
  out = LoadReport{};
  std::array<uint8_t, kMaxHeaderBytes> bytes;
  const size_t n = base64_decode(trim(value), bytes);
  if (value.size() > kMaxHeaderBytes * 4 / 3 + 4 || n == SIZE_MAX || n == 0)
    return LoadReportResult::kMalformed;
  auto result = parse_orca(std::span<const uint8_t>(bytes.data(), n), out);
  if (result != LoadReportResult::kOk) out = LoadReport{};
  return result;
}

LoadReportResult parse_load_report(std::string_view header, LoadReport& out) {
  out = LoadReport{};
  if (header.size() > kMaxHeaderBytes) return LoadReportResult::kMalformed;
  header = trim(header);
  LoadReportResult result = LoadReportResult::kMalformed;
  if (header.starts_with("TEXT ")) {
    result = parse_text(header.substr(5), out);
  } else if (header.starts_with("JSON ")) {
    result = parse_json(trim(header.substr(5)), out);
  }
  if (result != LoadReportResult::kOk) out = LoadReport{};
  return result;
}

}  // namespace switchyard::balancer
