// The discovery manager with a source the test drives: composition, change detection, a
// failing source keeping its last good set, sources kept or replaced across updates.

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "switchyard/config/loader.h"
#include "switchyard/discovery/discovery.h"

namespace switchyard::discovery {
namespace {

config::Endpoint ep(const std::string& address, uint32_t weight = 1) {
  auto r = config::load_endpoints(
      "- { address: \"" + address + "\", weight: " + std::to_string(weight) + " }\n", "t");
  EXPECT_TRUE(r.ok());
  return r.endpoints.at(0);
}

// A source whose answers the test sends; counts starts and stops.
struct Fake final : Source {
  Report report;
  std::optional<Answer> first;
  int* starts;
  int* stops;
  Fake(Report r, std::optional<Answer> f, int* s, int* t)
      : report(std::move(r)), first(std::move(f)), starts(s), stops(t) {}
  std::optional<Answer> start() override {
    ++*starts;
    return first;
  }
  void stop() override { ++*stops; }
};

struct ManagerTest : ::testing::Test {
  boost::asio::io_context ioc;
  int changes = 0;
  int starts = 0;
  int stops = 0;
  std::map<std::string, Fake*> sources;  // by cluster
  std::optional<Answer> first;
  Manager manager{ioc, [this] { ++changes; },
                  [this](boost::asio::io_context&, const config::Cluster& c, Source::Report r) {
                    auto f = std::make_unique<Fake>(std::move(r), first, &starts, &stops);
                    sources[c.name] = f.get();
                    return f;
                  }};

  std::shared_ptr<const config::Config> base(const std::string& file = "a.yaml") {
    auto r = config::load_string(
        "listeners:\n"
        "  - { name: in, listen: 127.0.0.1:8080, routes: [ { cluster: app } ] }\n"
        "clusters:\n"
        "  - name: app\n"
        "    endpoints: [ { address: 127.0.0.1:9000, weight: 7 } ]\n"
        "    discovery: { file: { path: /tmp/" +
            file +
            " } }\n"
            "  - name: fixed\n"
            "    endpoints: [ { address: 127.0.0.1:9100 } ]\n",
        "t.yaml", balancer_schema());
    EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
    return r.config;
  }
  static const config::Schema& balancer_schema() {
    static config::Schema s = [] {
      config::Schema schema;
      schema.strategies = {"round_robin"};
      return schema;
    }();
    return s;
  }
  static std::vector<std::string> addresses(const config::Config& c, size_t cluster = 0) {
    std::vector<std::string> out;
    for (const auto& e : c.clusters[cluster].endpoints) out.push_back(e.address_text);
    return out;
  }
  void send(Result result, std::vector<config::Endpoint> eps, std::string error = "") {
    sources.at("app")->report(Answer{result, std::move(eps), std::move(error)});
    ioc.restart();
    ioc.poll();
  }
};

TEST_F(ManagerTest, ComposesStaticThenDiscoveredInAddressOrder) {
  auto b = base();
  manager.update(*b);
  EXPECT_EQ(manager.compose(b), b) << "no set yet: the base itself";
  send(Result::kSuccess, {ep("127.0.0.3:80"), ep("127.0.0.2:80"), ep("127.0.0.1:9000", 2)});
  EXPECT_EQ(changes, 1);
  auto c = manager.compose(b);
  // The static endpoint wins over a discovered one at its address (its weight stays 7).
  EXPECT_EQ(addresses(*c),
            (std::vector<std::string>{"127.0.0.1:9000", "127.0.0.2:80", "127.0.0.3:80"}));
  EXPECT_EQ(c->clusters[0].endpoints[0].weight, 7u);
  EXPECT_EQ(addresses(*c, 1), std::vector<std::string>{"127.0.0.1:9100"});
  auto st = manager.status();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].cluster, "app");
  EXPECT_EQ(st[0].source, "file");
  EXPECT_EQ(st[0].endpoints, 3u);
  EXPECT_GT(st[0].last_success_ms, 0);
}

TEST_F(ManagerTest, SameSetInAnotherOrderIsNoChange) {
  auto b = base();
  manager.update(*b);
  send(Result::kSuccess, {ep("127.0.0.2:80"), ep("127.0.0.3:80")});
  send(Result::kSuccess, {ep("127.0.0.3:80"), ep("127.0.0.2:80")});
  EXPECT_EQ(changes, 1);
  EXPECT_EQ(manager.status()[0].updates[size_t(Result::kNoChange)], 1u);
  send(Result::kSuccess, {ep("127.0.0.3:80", 5), ep("127.0.0.2:80")});
  EXPECT_EQ(changes, 2) << "a weight change is a change";
}

TEST_F(ManagerTest, FailuresAndEmptyAnswersKeepTheLastGoodSet) {
  auto b = base();
  manager.update(*b);
  send(Result::kSuccess, {ep("127.0.0.2:80")});
  send(Result::kFailure, {}, "api.example: timed out");
  send(Result::kEmpty, {}, "api.example: no records of that type");
  EXPECT_EQ(changes, 1);
  EXPECT_EQ(addresses(*manager.compose(b)),
            (std::vector<std::string>{"127.0.0.1:9000", "127.0.0.2:80"}));
  auto st = manager.status()[0];
  EXPECT_EQ(st.updates[size_t(Result::kFailure)], 1u);
  EXPECT_EQ(st.updates[size_t(Result::kEmpty)], 1u);
  EXPECT_EQ(st.last_error, "api.example: no records of that type");
  EXPECT_EQ(st.endpoints, 1u);
  // An explicit empty set (a source that answers "none", like a file listing []) applies.
  send(Result::kSuccess, {});
  EXPECT_EQ(addresses(*manager.compose(b)), std::vector<std::string>{"127.0.0.1:9000"});
}

TEST_F(ManagerTest, FirstAnswerFromStartIsInTheFirstCompositionWithoutAChange) {
  first = Answer{Result::kSuccess, {ep("127.0.0.5:80")}, ""};
  auto b = base();
  manager.update(*b);
  EXPECT_EQ(addresses(*manager.compose(b)),
            (std::vector<std::string>{"127.0.0.1:9000", "127.0.0.5:80"}));
  ioc.poll();
  EXPECT_EQ(changes, 0);
}

TEST_F(ManagerTest, AReloadKeepsAnUnchangedSourceAndReplacesAChangedOne) {
  manager.update(*base());
  send(Result::kSuccess, {ep("127.0.0.2:80")});
  Fake* before = sources.at("app");
  manager.update(*base());  // same block: same source, same set
  EXPECT_EQ(sources.at("app"), before);
  EXPECT_EQ(starts, 1);
  EXPECT_EQ(addresses(*manager.compose(base())),
            (std::vector<std::string>{"127.0.0.1:9000", "127.0.0.2:80"}));
  auto other = base("b.yaml");
  manager.update(*other);  // another path: a new source, no set until it answers
  EXPECT_EQ(starts, 2);
  EXPECT_EQ(stops, 0) << "the old source waits for the reload to commit";
  EXPECT_EQ(manager.compose(other), other);
  manager.commit();
  EXPECT_EQ(stops, 1);
}

TEST_F(ManagerTest, AFailedReloadPutsTheSourcesBackWithTheirSets) {
  auto a = base();
  manager.update(*a);
  manager.commit();
  send(Result::kSuccess, {ep("127.0.0.2:80")});
  Fake* before = sources.at("app");
  manager.update(*base("b.yaml"));  // a reload whose snapshot then fails to build
  EXPECT_EQ(starts, 2);
  manager.rollback();
  EXPECT_EQ(stops, 1) << "the new source stops, the old one runs on";
  EXPECT_EQ(manager.status().at(0).target, "/tmp/a.yaml");
  EXPECT_EQ(manager.status().at(0).endpoints, 1u);
  EXPECT_EQ(addresses(*manager.compose(a)),
            (std::vector<std::string>{"127.0.0.1:9000", "127.0.0.2:80"}));
  // The old source still feeds the cluster.
  sources["app"] = before;
  send(Result::kSuccess, {ep("127.0.0.3:80")});
  EXPECT_EQ(addresses(*manager.compose(a)),
            (std::vector<std::string>{"127.0.0.1:9000", "127.0.0.3:80"}));
}

}  // namespace
}  // namespace switchyard::discovery
