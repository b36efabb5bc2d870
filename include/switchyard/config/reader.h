#pragma once

// The configuration reader's toolkit, for the loader and for every module that defines a YAML
// block of its own (a load-balancing policy's block): typed value readers that report
// `FILE:LINE:COL: key.path: message` and never throw, and blocks declared as tables of keys,
// each key name written once, from which the allowed-key list is derived.

#include <yaml-cpp/yaml.h>

#include <functional>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "switchyard/common/duration.h"
#include "switchyard/common/net.h"
#include "switchyard/config/config.h"

namespace switchyard::config {

// One problem found in a config file, printed as `FILE:LINE:COL: key.path: what is wrong`.
// line and column are 1-based.
struct Diagnostic {
  std::string file;
  int line = 0;
  int column = 0;
  std::string path;
  std::string message;

  std::string to_string() const;
};

// An HTTP field-name token (RFC 9110 §5.1).
bool valid_token(std::string_view s);

// Collects diagnostics while a file is read.
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}
  std::vector<Diagnostic>& errors() { return errors_; }
  const std::string& file() const { return file_; }
  void error(const YAML::Mark& mark, const std::string& path, std::string message);
  void error(const YAML::Node& node, const std::string& path, std::string message) {
    error(node.Mark(), path, std::move(message));
  }
  // The configuration read so far (clusters are read before listeners, so routes can be
  // checked against their names).
  const Config* config = nullptr;

 private:
  std::string file_;
  std::vector<Diagnostic> errors_;
};

// A value at a key path. Each typed reader stores the value and returns true, or reports what
// is wrong at the value's position and returns false (leaving the default in place).
class Value {
 public:
  Value(Reader& reader, YAML::Node node, std::string path)
      : reader_(&reader), node_(std::move(node)), path_(std::move(path)) {}

  Reader& reader() const { return *reader_; }
  const YAML::Node& node() const { return node_; }
  const std::string& path() const { return path_; }
  bool defined() const { return node_.IsDefined(); }
  void error(std::string message) const { reader_->error(node_, path_, std::move(message)); }

  bool string(std::string* out) const;
  bool boolean(bool* out) const;
  bool number(double* out, double min, double max) const;
  bool duration(Duration* out, bool allow_zero = false) const;
  bool address(bool allow_port_zero, std::string* text, SocketAddress* out) const;
  bool cidr(Cidr* out) const;
  bool hash_key(HashKey* out) const;
  // "header:NAME" (an HTTP field-name token): stores NAME.
  bool header_name(std::string* out) const;
  // A file path; a relative one is taken relative to the config file's directory.
  bool file_path(std::string* out) const;

  template <typename Int>
  bool integer(Int* out, Int min, Int max) const {
    uint64_t v = 0;
    if (!unsigned_integer(&v, uint64_t(min), uint64_t(max))) return false;
    *out = static_cast<Int>(v);
    return true;
  }

  template <typename Enum>
  bool choice(Enum* out, std::initializer_list<std::pair<const char*, Enum>> options) const {
    std::string s = node_.IsScalar() ? node_.Scalar() : "";
    for (const auto& [name, value] : options) {
      if (s == name) {
        *out = value;
        return true;
      }
    }
    std::string list;
    for (const auto& option : options)
      list += std::string(list.empty() ? "" : " | ") + option.first;
    error("expected one of " + list);
    return false;
  }

  // The items of a sequence, each with its indexed path (reports anything that is not a
  // list); empty for an absent node.
  std::vector<Value> items() const;

 private:
  bool unsigned_integer(uint64_t* out, uint64_t min, uint64_t max) const;

  Reader* reader_;
  YAML::Node node_;
  std::string path_;
};

// One key of a block: its name, how its value is read into T, whether it must be there, and
// whether to read it when absent too (a block that must exist with its defaults).
template <typename T>
struct Key {
  const char* name;
  std::function<void(const Value& value, T& out)> read;
  bool required = false;
  bool always = false;
};

// A block: its keys (the only ones allowed) in the order they are read, and an optional check
// across keys once all are read (`block` is the block itself, for its position).
template <typename T>
struct BlockSpec {
  std::vector<Key<T>> keys;
  std::function<void(const Value& block, T& out)> check = {};
};

// A mapping being read: refuses unknown and duplicate keys on construction, then hands out
// values by key. A null or absent node reads as an empty mapping.
class MapView {
 public:
  MapView(Reader& reader, const Value& block, const std::vector<const char*>& allowed);
  bool valid() const { return valid_; }
  // The value under key (undefined when absent); required: report when it is missing.
  Value get(const char* key, bool required = false) const;
  std::string child(const std::string& key) const;

 private:
  Reader& reader_;
  Value block_;
  bool valid_ = true;
  std::vector<std::pair<std::string, YAML::Node>> fields_;
};

// Reads a block per spec into out. Returns false when the node is not a mapping.
template <typename T>
bool read_block(const Value& block, const BlockSpec<T>& spec, T& out) {
  std::vector<const char*> allowed;
  allowed.reserve(spec.keys.size());
  for (const auto& k : spec.keys) allowed.push_back(k.name);
  MapView m(block.reader(), block, allowed);
  if (!m.valid()) return false;
  for (const auto& k : spec.keys) {
    Value v = m.get(k.name, k.required);
    if (v.defined() || k.always) k.read(v, out);
  }
  if (spec.check) spec.check(block, out);
  return true;
}

// A block written as a sequence of mappings (endpoints, routes, listeners): each item read
// per spec into a new T.
template <typename T>
std::vector<T> read_list(const Value& list, const BlockSpec<T>& spec) {
  std::vector<T> out;
  for (const auto& item : list.items()) {
    T t;
    read_block(item, spec, t);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace switchyard::config
