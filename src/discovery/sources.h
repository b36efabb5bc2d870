#pragma once

// The built-in sources (discovery.h's default_factory).

#include <memory>

#include "switchyard/discovery/discovery.h"

namespace switchyard::discovery {

std::unique_ptr<Source> make_file_source(boost::asio::io_context& ioc,
                                         const config::FileDiscovery& file, Source::Report report);
std::unique_ptr<Source> make_dns_source(boost::asio::io_context& ioc,
                                        const config::DnsDiscovery& dns, Source::Report report);

// discovery.kubernetes.namespace, or the pod's own when it is empty ("default" outside a pod).
std::string kubernetes_namespace(const config::KubernetesDiscovery& k8s);

std::unique_ptr<Source> make_kubernetes_source(boost::asio::io_context& ioc,
                                               const config::KubernetesDiscovery& k8s,
                                               Source::Report report);

}  // namespace switchyard::discovery
