#include <boost/json.hpp>

#include "switchyard/admin/admin_server.h"

namespace switchyard::admin {

std::string clusters_json(const registry::RuntimeSnapshot& snapshot) {
  boost::json::array clusters;
  for (const auto& cluster : snapshot.clusters) {
    boost::json::array endpoints;
    for (const auto& ep : cluster->endpoints) {
      const auto& s = *ep.state;
      endpoints.push_back(boost::json::object{
          {"address", ep.address_text},
          {"region", ep.region},
          {"zone", ep.zone},
          {"weight", ep.weight},
          {"healthy", s.healthy.load(std::memory_order_relaxed)},
          {"ejected", s.ejected.load(std::memory_order_relaxed)},
          {"active_requests", s.active_requests.load(std::memory_order_relaxed)},
      });
    }
    clusters.push_back(boost::json::object{
        {"name", cluster->config->name},
        {"strategy", config::to_string(cluster->config->strategy)},
        {"endpoints", std::move(endpoints)},
    });
  }
  boost::json::object doc{{"version", snapshot.version}, {"clusters", std::move(clusters)}};
  return boost::json::serialize(doc) + "\n";
}

}  // namespace switchyard::admin
