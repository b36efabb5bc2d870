#pragma once

// Endpoints that come and go (README, "Service discovery"). A cluster with a `discovery`
// block has one source: a DNS name (A, AAAA or SRV records, through c-ares), a watched file,
// or a Kubernetes Service's EndpointSlices. Each source runs on the control thread and keeps
// the last good set it found; the manager composes the configuration the snapshot is built
// from (each cluster's static endpoints, then its source's set) and says when it changed.
// A source that fails (a timeout, NXDOMAIN, an empty DNS answer, a malformed file, an API
// server that is down) changes nothing: its last good set stays, and the failure is counted
// and shown. Control thread, except status().

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "switchyard/config/config.h"

namespace boost::asio {
class io_context;
}

namespace switchyard::discovery {

// What one answer of a source did (switchyard_discovery_updates_total's `result`, after
// Envoy's update_success / update_no_rebuild / update_empty / update_failure).
enum class Result : uint8_t {
  kSuccess,   // a new set, applied
  kNoChange,  // the same set as before
  kEmpty,     // an answer with no endpoint where that means a failed lookup: the last set stays
  kFailure,   // no answer (timeout, refused, NXDOMAIN, malformed): the last set stays
  kCount,
};
const char* to_string(Result r);

// A source as admin and metrics see it.
struct SourceStatus {
  std::string cluster;
  std::string source;    // dns | file | kubernetes
  std::string target;    // what it reads: the name, the path, namespace/service
  bool has_set = false;  // a first good set arrived
  size_t endpoints = 0;  // in its last good set
  // Unix ms; 0: never.
  int64_t last_success_ms = 0;
  int64_t last_error_ms = 0;
  std::string last_error;  // the most recent failure ("" while none)
  std::array<uint64_t, static_cast<size_t>(Result::kCount)> updates{};
};

// One source's answer: a set of endpoints (ok), or why there is none.
struct Answer {
  Result result = Result::kFailure;  // kSuccess: endpoints is the new set (maybe unchanged)
  std::vector<config::Endpoint> endpoints;
  std::string error;
  std::chrono::steady_clock::duration took{};  // the lookup that found it (0: not timed)
};

// A source of one cluster. Built and driven on the control thread; reports through the
// callback it was given, never from inside start().
class Source {
 public:
  using Report = std::function<void(Answer)>;
  virtual ~Source() = default;
  // Begins watching or polling. A source that can answer at once (a file) returns its first
  // answer here, so that the first snapshot already has its endpoints.
  virtual std::optional<Answer> start() = 0;
  virtual void stop() = 0;
};

// Builds a cluster's source (tests substitute their own).
using SourceFactory = std::function<std::unique_ptr<Source>(
    boost::asio::io_context& control, const config::Cluster& cluster, Source::Report report)>;
SourceFactory default_factory();

class Manager {
 public:
  // on_change: a source's set changed (posted to the control thread once per burst).
  Manager(boost::asio::io_context& control, std::function<void()> on_change,
          SourceFactory factory = default_factory());
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  // Starts a source for each cluster with a discovery block that has none yet (or whose
  // block changed); a source whose cluster and block stay keeps running, with its set. The
  // sources of clusters that lost theirs are set aside until commit() stops them, or
  // rollback() (the reload that brought `base` failed) puts everything back as it was.
  void update(const config::Config& base);
  void commit();
  void rollback();
  // base with each discovered cluster's endpoints: its static ones, then its source's last
  // good set in address order (so that two instances that see the same set build the same
  // tables; a static endpoint wins over a discovered one at the same address). base itself
  // when no cluster has a set.
  std::shared_ptr<const config::Config> compose(std::shared_ptr<const config::Config> base) const;
  // Any thread: each source's state, in cluster order.
  std::vector<SourceStatus> status() const;
  // When the first answer of the change on_change reports arrived (control thread).
  std::chrono::steady_clock::time_point changed_at() const { return changed_at_; }
  void stop();

 private:
  struct Entry;
  // notify: post on_change when the set changed (not for a first answer within update()).
  void on_answer(Entry& entry, Answer answer, bool notify = true);

  boost::asio::io_context& control_;
  std::function<void()> on_change_;
  SourceFactory factory_;
  std::vector<std::unique_ptr<Entry>> entries_;  // in the base config's cluster order
  // Since the last update(): the entries it set aside, and the order entries_ had before.
  std::vector<std::unique_ptr<Entry>> retired_;
  std::vector<const Entry*> previous_;
  bool change_posted_ = false;
  std::chrono::steady_clock::time_point changed_at_;
  std::shared_ptr<bool> alive_;
  mutable std::mutex status_mutex_;  // guards every entry's status (admin reads it)
};

// The wall clock in Unix ms (status timestamps).
int64_t unix_ms_now();

}  // namespace switchyard::discovery
