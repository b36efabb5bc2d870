// libFuzzer target: arbitrary bytes as a configuration file through the loader the daemon uses
// (yaml-cpp, then every block's reader and the cross-checks): it must report problems as
// FILE:LINE:COL errors and never crash, hang or throw. Paths the input names are resolved
// against a directory that does not exist, so no file outside the input is ever read.
// Build: make fuzz-build.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "switchyard/balancer/policy.h"
#include "switchyard/config/loader.h"

using namespace switchyard;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto result =
      config::load_string(text, "/nonexistent-switchyard-fuzz/f.yaml", balancer::schema());
  // Either a config or at least one located error, never both or neither.
  if (result.ok() == !result.errors.empty()) std::abort();
  for (const auto& e : result.errors) {
    if (e.file.empty() || e.message.empty()) std::abort();
    (void)e.to_string();
  }
  return 0;
}
