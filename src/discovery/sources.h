#pragma once

// The built-in sources (discovery.h's default_factory).

#include <memory>

#include "switchyard/discovery/discovery.h"

namespace switchyard::discovery {

std::unique_ptr<Source> make_file_source(boost::asio::io_context& ioc,
                                         const config::FileDiscovery& file, Source::Report report);
std::unique_ptr<Source> make_dns_source(boost::asio::io_context& ioc,
                                        const config::DnsDiscovery& dns, Source::Report report);

}  // namespace switchyard::discovery
