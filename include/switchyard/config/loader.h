#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

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

// Either a config (errors empty) or every problem found (config null). Never throws.
struct LoadResult {
  std::shared_ptr<const Config> config;
  std::vector<Diagnostic> errors;

  bool ok() const { return config != nullptr; }
};

// Reads, parses and validates a file. Runs on the control thread (may resolve host names).
LoadResult load_file(const std::string& path);

// Same, from text; file_name only labels diagnostics. Used by tests and fuzzers.
LoadResult load_string(std::string_view yaml, const std::string& file_name);

}  // namespace switchyard::config
