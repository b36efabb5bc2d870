#pragma once

// What the configuration reader accepts beyond its own blocks: the load-balancing policies
// (their names, for `strategy:`) and the cluster blocks they define and read themselves. The
// balancer module fills one (balancer::schema()); the loader only walks it, so the config
// layer knows no policy.

#include <memory>
#include <string>
#include <vector>

#include "switchyard/config/reader.h"

namespace switchyard::config {

struct ClusterBlockReader {
  std::string key;  // "resource_aware"
  // Reads the block; `value` is undefined when the block is absent (defaults then).
  std::shared_ptr<const Block> (*read)(const Value& value) = nullptr;
  // Once the whole cluster is read: checks across it (nullptr: none). `endpoints` is the
  // cluster's endpoints value, for positions.
  void (*check)(const Value& endpoints, const Cluster& cluster) = nullptr;
};

struct Schema {
  std::vector<std::string> strategies;  // in the order `--check` lists them
  std::vector<ClusterBlockReader> cluster_blocks;
};

}  // namespace switchyard::config
