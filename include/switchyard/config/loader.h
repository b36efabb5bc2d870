#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "switchyard/config/config.h"
#include "switchyard/config/reader.h"
#include "switchyard/config/schema.h"

namespace switchyard::config {

// Either a config (errors empty) or every problem found (config null). Never throws.
struct LoadResult {
  std::shared_ptr<const Config> config;
  std::vector<Diagnostic> errors;

  bool ok() const { return config != nullptr; }
};

// Reads, parses and validates a file against the schema (the policies and their blocks).
// Runs on the control thread (may resolve host names).
LoadResult load_file(const std::string& path, const Schema& schema);

// Same, from text; file_name only labels diagnostics. Used by tests and fuzzers.
LoadResult load_string(std::string_view yaml, const std::string& file_name, const Schema& schema);

// Extension (discovery.file, README "Service discovery"): the endpoints of a discovery file,
// YAML or JSON: a list of endpoints, or a mapping whose one key is `endpoints`. Each is read as
// a cluster's endpoint is (address, region, zone, weight, priority, metadata), but addresses
// must be IP literals. Either endpoints (errors empty; possibly none) or every problem found.
// Never throws.
struct EndpointsResult {
  std::vector<Endpoint> endpoints;
  std::vector<Diagnostic> errors;

  bool ok() const { return errors.empty(); }
};
EndpointsResult load_endpoints(std::string_view text, const std::string& file_name);

}  // namespace switchyard::config
