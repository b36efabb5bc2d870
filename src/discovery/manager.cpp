#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <unordered_set>

#include "sources.h"
#include "switchyard/common/logging.h"
#include "switchyard/discovery/discovery.h"

namespace switchyard::discovery {
namespace {

// Everything a source is made of: equal fingerprints keep the running source (and its set)
// across a reload.
std::string fingerprint(const config::Discovery& d) {
  std::string f = d.kind();
  auto add = [&f](const std::string& s) { f.append(s).push_back('\0'); };
  auto add_ms = [&add](switchyard::Duration v) {
    add(std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(v).count()));
  };
  if (d.dns) {
    add(d.dns->name);
    add(std::to_string(d.dns->port));
    add(std::to_string(static_cast<int>(d.dns->type)));
    add_ms(d.dns->refresh);
    add_ms(d.dns->min_refresh);
    add_ms(d.dns->timeout);
    for (const auto& r : d.dns->resolvers_text) add(r);
    add(d.dns->region);
    add(d.dns->zone);
  }
  if (d.file) add(d.file->path);
  if (d.kubernetes) {
    const auto& k = *d.kubernetes;
    for (const std::string* s : {&k.service, &k.namespace_, &k.port, &k.api_server, &k.token_file,
                                 &k.ca_file, &k.region}) {
      add(*s);
    }
    add(k.verify ? "1" : "0");
    add_ms(k.timeout);
  }
  return f;
}

std::string target_of(const config::Discovery& d) {
  if (d.dns) return d.dns->name;
  if (d.file) return d.file->path;
  if (d.kubernetes) return kubernetes_namespace(*d.kubernetes) + "/" + d.kubernetes->service;
  return "";
}

}  // namespace

SourceFactory default_factory() {
  return [](boost::asio::io_context& ioc, const config::Cluster& c,
            Source::Report report) -> std::unique_ptr<Source> {
    if (c.discovery.file) return make_file_source(ioc, *c.discovery.file, std::move(report));
    if (c.discovery.dns) return make_dns_source(ioc, *c.discovery.dns, std::move(report));
    if (c.discovery.kubernetes) {
      return make_kubernetes_source(ioc, *c.discovery.kubernetes, std::move(report));
    }
    return nullptr;
  };
}

const char* to_string(Result r) {
  switch (r) {
    case Result::kSuccess:
      return "success";
    case Result::kNoChange:
      return "no_change";
    case Result::kEmpty:
      return "empty";
    default:
      return "failure";
  }
}

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Manager::Entry {
  std::string cluster;
  std::string fingerprint;
  std::unique_ptr<Source> source;
  bool has_set = false;
  std::vector<config::Endpoint> set;  // the last good set, in address order
  SourceStatus status;                // under status_mutex_
  ~Entry() {
    if (source) source->stop();
  }
};

Manager::Manager(boost::asio::io_context& control, std::function<void()> on_change,
                 SourceFactory factory)
    : control_(control),
      on_change_(std::move(on_change)),
      factory_(std::move(factory)),
      alive_(std::make_shared<bool>(true)) {}

Manager::~Manager() { stop(); }

void Manager::stop() {
  *alive_ = false;
  std::vector<std::unique_ptr<Entry>> gone;
  {
    std::lock_guard<std::mutex> lock(status_mutex_);
    gone.swap(entries_);
    for (auto& e : retired_) gone.push_back(std::move(e));
    retired_.clear();
  }
  previous_.clear();
  gone.clear();  // stops each source
}

void Manager::update(const config::Config& base) {
  commit();  // an update not followed by either: the last one stands
  for (const auto& e : entries_) previous_.push_back(e.get());
  std::vector<std::unique_ptr<Entry>> next;
  std::vector<std::pair<Entry*, Answer>> first_answers;
  for (const auto& c : base.clusters) {
    if (!c.discovery.any()) continue;
    const std::string f = fingerprint(c.discovery);
    auto kept = std::find_if(entries_.begin(), entries_.end(), [&](const auto& e) {
      return e && e->cluster == c.name && e->fingerprint == f;
    });
    if (kept != entries_.end()) {
      next.push_back(std::move(*kept));
      continue;
    }
    auto entry = std::make_unique<Entry>();
    entry->cluster = c.name;
    entry->fingerprint = f;
    entry->status.cluster = c.name;
    entry->status.source = c.discovery.kind();
    entry->status.target = target_of(c.discovery);
    Entry* raw = entry.get();
    entry->source = factory_(control_, c, [this, raw, alive = alive_](Answer answer) {
      if (*alive) on_answer(*raw, std::move(answer));
    });
    if (entry->source) {
      if (auto first = entry->source->start()) first_answers.emplace_back(raw, std::move(*first));
    }
    logs::config().info("discovery: cluster '{}' reads its endpoints from {} '{}'", c.name,
                        c.discovery.kind(), entry->status.target);
    next.push_back(std::move(entry));
  }
  {
    std::lock_guard<std::mutex> lock(status_mutex_);
    for (auto& e : entries_) {
      if (e) retired_.push_back(std::move(e));  // set aside, still running
    }
    entries_ = std::move(next);
  }
  // A first answer is part of this update: the snapshot being built includes it, so no
  // change needs to be posted for it.
  for (auto& [entry, answer] : first_answers) on_answer(*entry, std::move(answer), false);
}

void Manager::commit() {
  previous_.clear();
  std::vector<std::unique_ptr<Entry>> gone;
  {
    std::lock_guard<std::mutex> lock(status_mutex_);
    gone.swap(retired_);
  }
  gone.clear();  // sources whose cluster or block went away stop here
}

void Manager::rollback() {
  std::vector<std::unique_ptr<Entry>> now;
  {
    std::lock_guard<std::mutex> lock(status_mutex_);
    now.swap(entries_);
    for (auto& e : retired_) now.push_back(std::move(e));
    retired_.clear();
    for (const Entry* want : previous_) {
      auto it =
          std::find_if(now.begin(), now.end(), [&](const auto& e) { return e.get() == want; });
      if (it != now.end()) entries_.push_back(std::move(*it));
    }
  }
  previous_.clear();
  now.clear();  // the sources the failed update started stop here
}

void Manager::on_answer(Entry& entry, Answer answer, bool notify) {
  Result result = answer.result;
  size_t added = 0;
  size_t removed = 0;
  if (result == Result::kSuccess) {
    auto& eps = answer.endpoints;
    std::stable_sort(eps.begin(), eps.end(),
                     [](const auto& a, const auto& b) { return a.address_text < b.address_text; });
    // One entry per address (an SRV answer may name one target twice): the first stays.
    eps.erase(
        std::unique(eps.begin(), eps.end(),
                    [](const auto& a, const auto& b) { return a.address_text == b.address_text; }),
        eps.end());
    if (entry.has_set && eps == entry.set) {
      result = Result::kNoChange;
    } else {
      std::unordered_set<std::string> before;
      for (const auto& e : entry.set) before.insert(e.address_text);
      for (const auto& e : eps) added += before.erase(e.address_text) == 0 ? 1 : 0;
      removed = before.size();
      entry.set = std::move(eps);
      entry.has_set = true;
    }
  }
  const int64_t now = unix_ms_now();
  {
    std::lock_guard<std::mutex> lock(status_mutex_);
    auto& st = entry.status;
    st.updates[static_cast<size_t>(result)]++;
    if (result == Result::kSuccess || result == Result::kNoChange) {
      st.last_success_ms = now;
      st.has_set = true;
      st.endpoints = entry.set.size();
    } else {
      const bool repeated = st.last_error == answer.error;
      st.last_error_ms = now;
      st.last_error = answer.error;
      if (!repeated) {
        logs::config().warn(
            "discovery: cluster '{}' ({} '{}'): {}; keeping its last {} ({})", entry.cluster,
            st.source, st.target, answer.error, entry.has_set ? "set" : "(no) set",
            entry.has_set ? std::to_string(entry.set.size()) + " endpoints" : "none yet");
      }
    }
  }
  if (result != Result::kSuccess) return;
  const double took_ms = std::chrono::duration<double, std::milli>(answer.took).count();
  logs::config().info("discovery: cluster '{}' now has {} discovered endpoints (+{} -{}){}",
                      entry.cluster, entry.set.size(), added, removed,
                      took_ms > 0 ? fmt::format(", found in {:.1f} ms", took_ms) : "");
  if (!notify || change_posted_) return;
  change_posted_ = true;
  changed_at_ = std::chrono::steady_clock::now();
  boost::asio::post(control_, [this, alive = alive_] {
    if (!*alive) return;
    change_posted_ = false;
    if (on_change_) on_change_();
  });
}

std::shared_ptr<const config::Config> Manager::compose(
    std::shared_ptr<const config::Config> base) const {
  bool any = false;
  for (const auto& e : entries_) any = any || e->has_set;
  if (!any) return base;
  auto out = std::make_shared<config::Config>(*base);
  for (const auto& e : entries_) {
    if (!e->has_set) continue;
    for (auto& c : out->clusters) {
      if (c.name != e->cluster) continue;
      std::unordered_set<std::string> fixed;
      for (const auto& s : c.endpoints) fixed.insert(s.address_text);
      c.endpoints.reserve(c.endpoints.size() + e->set.size());
      for (const auto& d : e->set) {
        if (!fixed.count(d.address_text)) c.endpoints.push_back(d);
      }
    }
  }
  return out;
}

std::vector<SourceStatus> Manager::status() const {
  std::lock_guard<std::mutex> lock(status_mutex_);
  std::vector<SourceStatus> out;
  out.reserve(entries_.size());
  for (const auto& e : entries_) out.push_back(e->status);
  return out;
}

}  // namespace switchyard::discovery
