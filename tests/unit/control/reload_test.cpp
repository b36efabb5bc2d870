#include "switchyard/control/reload.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <fstream>

#include "switchyard/config/loader.h"

namespace switchyard::control {
namespace {

std::string yaml(const std::string& listen, const std::string& port) {
  return "listeners:\n  - name: in\n    listen: " + listen +
         "\n    routes: [ { cluster: app } ]\n"
         "clusters:\n  - name: app\n    endpoints:\n      - address: 127.0.0.1:" +
         port + "\n";
}

struct File {
  explicit File(const std::string& text) : path(::testing::TempDir() + "reload_test.yaml") {
    std::ofstream(path) << text;
  }
  ~File() { std::remove(path.c_str()); }
  std::string path;
};

// A good file builds and publishes a new snapshot; a broken one, or one that moves a listener,
// keeps the running snapshot, publishes nothing and says why with FILE:LINE:COL.
TEST(Reload, PublishesOnlyWhatBuilds) {
  boost::asio::io_context ioc;
  Runtime runtime(ioc);
  auto first = config::load_string(yaml("127.0.0.1:8080", "9001"), "t.yaml", balancer::schema());
  ASSERT_TRUE(first.ok());
  auto s1 = runtime.apply(first.config);
  ASSERT_TRUE(s1);
  int published = 0;
  auto publish = [&](std::shared_ptr<const Snapshot>) { ++published; };

  File good(yaml("127.0.0.1:8080", "9002"));
  auto ok = reload_file(good.path, *first.config, runtime, publish);
  EXPECT_TRUE(ok.ok);
  EXPECT_EQ(published, 1);
  EXPECT_GT(ok.version, s1->version);
  ASSERT_TRUE(ok.config);
  EXPECT_EQ(ok.config->clusters[0].endpoints[0].address_text, "127.0.0.1:9002");

  File moved(yaml("127.0.0.1:8081", "9003"));
  auto refused = reload_file(moved.path, *ok.config, runtime, publish);
  EXPECT_FALSE(refused.ok);
  EXPECT_EQ(published, 1);
  EXPECT_EQ(refused.version, ok.version);
  ASSERT_EQ(refused.errors.size(), 1u);
  EXPECT_NE(refused.errors[0].find("reload_test.yaml:1:1"), std::string::npos);
  EXPECT_NE(refused.errors[0].find("restart switchyard"), std::string::npos);

  File broken("listeners: [\n");
  auto bad = reload_file(broken.path, *ok.config, runtime, publish);
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(published, 1);
  EXPECT_EQ(runtime.current()->version, ok.version);
  EXPECT_FALSE(bad.errors.empty());
}

TEST(Reload, ListenersChanged) {
  auto a = config::load_string(yaml("127.0.0.1:8080", "9001"), "a.yaml", balancer::schema());
  auto b = config::load_string(yaml("127.0.0.1:8080", "9009"), "b.yaml", balancer::schema());
  auto c = config::load_string(yaml("127.0.0.1:9090", "9001"), "c.yaml", balancer::schema());
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(listeners_changed(*a.config, *b.config), "");
  EXPECT_NE(listeners_changed(*a.config, *c.config), "");
}

}  // namespace
}  // namespace switchyard::control
