#include "switchyard/config/reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>

namespace switchyard::config {
namespace {

std::string indexed(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

}  // namespace

bool valid_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

bool Value::file_path(std::string* out) const {
  std::string s;
  if (!string(&s)) return false;
  if (s.empty()) {
    error("must not be empty");
    return false;
  }
  if (s[0] != '/') {
    const auto& file = reader_->file();
    const size_t slash = file.rfind('/');
    if (slash != std::string::npos) s = file.substr(0, slash + 1) + s;
  }
  *out = s;
  return true;
}

bool Value::header_name(std::string* out) const {
  std::string s;
  if (!string(&s)) return false;
  if (s.rfind("header:", 0) != 0 || !valid_token(s.substr(7))) {
    error("expected header:NAME");
    return false;
  }
  *out = s.substr(7);
  return true;
}

std::string Diagnostic::to_string() const {
  std::ostringstream out;
  out << file << ':' << line << ':' << column << ": " << (path.empty() ? "(root)" : path) << ": "
      << message;
  return out.str();
}

void Reader::error(const YAML::Mark& mark, const std::string& path, std::string message) {
  Diagnostic d;
  d.file = file_;
  // yaml-cpp marks are 0-based; a missing mark (-1) still prints as 1:1.
  d.line = mark.line >= 0 ? mark.line + 1 : 1;
  d.column = mark.column >= 0 ? mark.column + 1 : 1;
  d.path = path;
  d.message = std::move(message);
  errors_.push_back(std::move(d));
}

bool Value::string(std::string* out) const {
  if (!node_.IsScalar()) {
    error("expected a string");
    return false;
  }
  *out = node_.Scalar();
  return true;
}

bool Value::boolean(bool* out) const {
  std::string s = node_.IsScalar() ? node_.Scalar() : "";
  if (s == "true") {
    *out = true;
  } else if (s == "false") {
    *out = false;
  } else {
    error("expected true or false");
    return false;
  }
  return true;
}

bool Value::unsigned_integer(uint64_t* out, uint64_t min, uint64_t max) const {
  std::string s = node_.IsScalar() ? node_.Scalar() : "";
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || value < min || value > max) {
    error("expected a whole number from " + std::to_string(min) + " to " + std::to_string(max));
    return false;
  }
  *out = value;
  return true;
}

bool Value::number(double* out, double min, double max) const {
  std::string s = node_.IsScalar() ? node_.Scalar() : "";
  double value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || !std::isfinite(value) ||
      value < min || value > max) {
    std::ostringstream msg;
    msg << "expected a number from " << min << " to " << max;
    error(msg.str());
    return false;
  }
  *out = value;
  return true;
}

bool Value::duration(Duration* out, bool allow_zero) const {
  std::optional<Duration> d;
  if (node_.IsScalar()) d = parse_duration(node_.Scalar());
  if (!d) {
    error("expected a duration with a unit, like 250ms, 2s or 1m");
    return false;
  }
  if (!allow_zero && d->count() == 0) {
    error("must be greater than 0");
    return false;
  }
  *out = *d;
  return true;
}

bool Value::address(bool allow_port_zero, std::string* text, SocketAddress* out) const {
  if (!string(text)) return false;
  std::string why;
  auto addr = parse_host_port(*text, allow_port_zero, &why);
  if (!addr) {
    error("invalid address '" + *text + "': " + why);
    return false;
  }
  *out = *addr;
  return true;
}

bool Value::cidr(Cidr* out) const {
  std::string s;
  if (!string(&s)) return false;
  auto c = Cidr::parse(s);
  if (!c) {
    error("invalid CIDR '" + s + "' (expected like 10.0.0.0/8 or ::1/128)");
    return false;
  }
  *out = *c;
  return true;
}

const char* to_string(ListenerProtocol p) { return p == ListenerProtocol::kH2 ? "h2" : "http1"; }

const char* to_string(UpstreamProtocol p) {
  switch (p) {
    case UpstreamProtocol::kH2c:
      return "h2c";
    case UpstreamProtocol::kH2:
      return "h2";
    case UpstreamProtocol::kHttp1:
      break;
  }
  return "http1";
}

const char* to_string(CrossRegion c) {
  switch (c) {
    case CrossRegion::kFailoverOnly:
      return "failover_only";
    case CrossRegion::kDeny:
      return "deny";
    case CrossRegion::kAllow:
      break;
  }
  return "allow";
}

std::string HashKey::to_string() const {
  switch (source) {
    case HashKeySource::kHeader:
      return "header:" + name;
    case HashKeySource::kCookie:
      return "cookie:" + name;
    case HashKeySource::kQuery:
      return "query:" + name;
    case HashKeySource::kPath:
      return "path";
    case HashKeySource::kClientIp:
      break;
  }
  return "client_ip";
}

bool Value::hash_key(HashKey* out) const {
  std::string s;
  if (!string(&s)) return false;
  if (s == "path") {
    out->source = HashKeySource::kPath;
    return true;
  }
  if (s == "client_ip") {
    out->source = HashKeySource::kClientIp;
    return true;
  }
  auto colon = s.find(':');
  std::string kind = s.substr(0, colon);
  std::string name = colon == std::string::npos ? "" : s.substr(colon + 1);
  if (kind == "header") {
    out->source = HashKeySource::kHeader;
  } else if (kind == "cookie") {
    out->source = HashKeySource::kCookie;
  } else if (kind == "query") {
    out->source = HashKeySource::kQuery;
  } else {
    error("expected header:NAME | cookie:NAME | query:NAME | path | client_ip");
    return false;
  }
  if (colon == std::string::npos || !valid_token(name)) {
    error("'" + kind + ":' needs a name, like " + kind + ":X-User-Id");
    return false;
  }
  out->name = name;
  return true;
}

std::vector<Value> Value::items() const {
  std::vector<Value> out;
  if (!node_.IsDefined() || node_.IsNull()) return out;
  if (!node_.IsSequence()) {
    error("expected a list");
    return out;
  }
  size_t i = 0;
  for (const auto& item : node_) out.emplace_back(*reader_, item, indexed(path_, i++));
  return out;
}

MapView::MapView(Reader& reader, const Value& block, const std::vector<const char*>& allowed)
    : reader_(reader), block_(block) {
  const auto& node = block.node();
  if (!node.IsDefined() || node.IsNull()) return;
  if (!node.IsMap()) {
    reader.error(node, block.path(), "expected a mapping");
    valid_ = false;
    return;
  }
  for (auto it = node.begin(); it != node.end(); ++it) {
    YAML::Node key = it->first;  // a copy: yaml-cpp's operator-> returns a temporary
    std::string name = key.IsScalar() ? key.Scalar() : "";
    bool known =
        std::any_of(allowed.begin(), allowed.end(), [&](const char* a) { return name == a; });
    if (!known) {
      reader.error(key, child(name), "unknown key '" + name + "'");
      continue;
    }
    if (std::any_of(fields_.begin(), fields_.end(),
                    [&](const auto& f) { return f.first == name; })) {
      reader.error(key, child(name), "duplicate key '" + name + "'");
      continue;
    }
    fields_.emplace_back(name, it->second);
  }
}

std::string MapView::child(const std::string& key) const {
  return block_.path().empty() ? key : block_.path() + "." + key;
}

Value MapView::get(const char* key, bool required) const {
  for (const auto& [name, value] : fields_) {
    if (name == key) return Value(reader_, value, child(key));
  }
  if (required && valid_) reader_.error(block_.node(), child(key), "required key is missing");
  return Value(reader_, YAML::Node(YAML::NodeType::Undefined), child(key));
}

}  // namespace switchyard::config
