// discovery.dns: A, AAAA or SRV records through c-ares, on the control thread's event loop.
//
// c-ares tells us which sockets it wants watched (ARES_OPT_SOCK_STATE_CB); each is watched
// with an Asio descriptor that does not own it, and a timer drives c-ares' own retries. One
// lookup at a time: an A / AAAA lookup is one ares_getaddrinfo; an SRV lookup is the SRV
// query, then one ares_getaddrinfo per distinct target (in parallel), each record giving an
// endpoint per address of its target: port from the record, weight from the record's weight
// (0 -> 1, RFC 2782's "very small chance"), priority from its priority.
//
// The next lookup comes after the answer's smallest TTL, bounded by [min_refresh, refresh]
// (c-ares 1.18 does not expose an SRV record's own TTL: the targets' address TTLs stand in
// for it). A lookup that fails (timeout, NXDOMAIN, refused) or finds no address is retried
// after min_refresh, doubling up to refresh, and changes nothing: the last good set stays.

#include <ares.h>
#include <arpa/inet.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

#include "sources.h"

namespace switchyard::discovery {
namespace {

using std::chrono::milliseconds;
constexpr uint32_t kMaxWeight = 10000;
constexpr size_t kMaxEndpoints = 10000;
constexpr int kSrvType = 33;  // ns_t_srv
constexpr int kClassIn = 1;   // ns_c_in

void init_library() {
  static std::once_flag once;
  std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
}

std::string describe(int status) {
  switch (status) {
    case ARES_ENOTFOUND:
      return "the name does not exist (NXDOMAIN)";
    case ARES_ENODATA:
      return "no records of that type";
    case ARES_ETIMEOUT:
    case ARES_ECANCELLED:
      return "timed out";
    case ARES_ECONNREFUSED:
      return "the resolver refused the connection";
    case ARES_EREFUSED:
      return "the resolver refused the query";
    case ARES_ESERVFAIL:
      return "the resolver failed (SERVFAIL)";
    default:
      return ares_strerror(status);
  }
}

class DnsSource final : public Source {
 public:
  DnsSource(boost::asio::io_context& ioc, config::DnsDiscovery cfg, Report report)
      : ioc_(ioc),
        cfg_(std::move(cfg)),
        report_(std::move(report)),
        ares_timer_(ioc),
        refresh_timer_(ioc),
        deadline_(ioc),
        alive_(std::make_shared<bool>(true)) {}
  ~DnsSource() override { stop(); }

  std::optional<Answer> start() override {
    init_library();
    ares_options opts{};
    opts.sock_state_cb = &DnsSource::on_sock_state;
    opts.sock_state_cb_data = this;
    const auto total = std::chrono::duration_cast<milliseconds>(cfg_.timeout).count();
    opts.timeout = static_cast<int>(std::max<int64_t>(100, total / 3));
    opts.tries = 3;
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    if (int rc = ares_init_options(&channel_, &opts, mask); rc != ARES_SUCCESS) {
      channel_ = nullptr;
      init_error_ = std::string("cannot start the resolver: ") + ares_strerror(rc);
    } else if (!cfg_.resolvers_text.empty()) {
      std::string csv;
      for (const auto& r : cfg_.resolvers_text) csv += (csv.empty() ? "" : ",") + r;
      if (int rc2 = ares_set_servers_ports_csv(channel_, csv.c_str()); rc2 != ARES_SUCCESS) {
        init_error_ = "invalid resolvers '" + csv + "': " + ares_strerror(rc2);
      }
    }
    // The first lookup goes out now; its answer comes through report_ like every other.
    boost::asio::post(ioc_, [this, alive = alive_] {
      if (*alive) lookup();
    });
    return std::nullopt;
  }

  void stop() override {
    if (!*alive_) return;
    *alive_ = false;
    ares_timer_.cancel();
    refresh_timer_.cancel();
    deadline_.cancel();
    for (auto& [fd, w] : socks_) w.sd->release();  // c-ares owns and closes them
    socks_.clear();
    if (channel_) ares_destroy(channel_);  // pending callbacks see ARES_EDESTRUCTION
    channel_ = nullptr;
  }

 private:
  // --- c-ares on Asio ------------------------------------------------------------------------
  struct Watch {
    std::unique_ptr<boost::asio::posix::stream_descriptor> sd;
    bool want_read = false;
    bool want_write = false;
    bool reading = false;
    bool writing = false;
    uint64_t generation = 0;
  };

  static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
    auto* self = static_cast<DnsSource*>(data);
    if (!*self->alive_) return;
    if (!readable && !writable) {
      if (auto it = self->socks_.find(fd); it != self->socks_.end()) {
        it->second.sd->release();
        self->socks_.erase(it);
      }
      return;
    }
    auto& w = self->socks_[fd];
    if (!w.sd) {
      w.sd = std::make_unique<boost::asio::posix::stream_descriptor>(self->ioc_, fd);
      w.generation = ++self->generation_;
    }
    w.want_read = readable != 0;
    w.want_write = writable != 0;
    self->arm(fd);
  }

  void arm(int fd) {
    auto it = socks_.find(fd);
    if (it == socks_.end()) return;
    auto& w = it->second;
    using Wait = boost::asio::posix::stream_descriptor::wait_type;
    auto handler = [this, fd, gen = w.generation, alive = alive_](bool read) {
      return [this, fd, gen, alive, read](boost::system::error_code ec) {
        if (!*alive) return;
        auto it2 = socks_.find(fd);
        if (it2 == socks_.end() || it2->second.generation != gen) return;
        (read ? it2->second.reading : it2->second.writing) = false;
        if (ec) return;
        ares_process_fd(channel_, read ? fd : ARES_SOCKET_BAD, read ? ARES_SOCKET_BAD : fd);
        arm(fd);
        schedule_ares_timer();
      };
    };
    if (w.want_read && !w.reading) {
      w.reading = true;
      w.sd->async_wait(Wait::wait_read, handler(true));
    }
    if (w.want_write && !w.writing) {
      w.writing = true;
      w.sd->async_wait(Wait::wait_write, handler(false));
    }
  }

  void schedule_ares_timer() {
    if (!channel_) return;
    timeval tv{};
    if (ares_timeout(channel_, nullptr, &tv) == nullptr) return;
    ares_timer_.expires_after(std::chrono::seconds(tv.tv_sec) +
                              std::chrono::microseconds(tv.tv_usec));
    ares_timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
      if (!*alive || ec) return;
      ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      schedule_ares_timer();
    });
  }

  // --- lookups -------------------------------------------------------------------------------
  // One lookup's state; queries carry a pointer to it and its id.
  struct Lookup {
    uint64_t id = 0;
    int pending = 0;
    int min_ttl = -1;
    std::vector<ares_srv_reply> records;  // SRV: host strings owned by srv_hosts
    std::vector<std::string> srv_hosts;
    std::map<std::string, std::vector<SocketAddress>> addresses;  // SRV target -> addresses
    std::string first_error;
    bool finished = false;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    std::vector<std::string> queue;  // SRV targets to look up, sent from `next` on
    size_t next = 0;
  };

  struct QueryArg {
    DnsSource* self;
    uint64_t lookup_id;
    std::string target;  // SRV target ("" for the A / AAAA lookup)
  };

  static constexpr int kWindow = 32;  // SRV target lookups in flight at once

  void lookup() {
    if (!*alive_) return;
    if (!channel_ || !init_error_.empty()) return finish_failure(init_error_);
    current_ = std::make_unique<Lookup>();
    current_->id = ++lookup_ids_;
    deadline_.expires_after(cfg_.timeout);
    deadline_.async_wait([this, alive = alive_, id = current_->id](boost::system::error_code ec) {
      if (!*alive || ec || !current_ || current_->id != id || current_->finished) return;
      const auto ms = std::chrono::duration_cast<milliseconds>(cfg_.timeout).count();
      current_->first_error = "timed out after " + std::to_string(ms) + " ms";
      current_->finished = true;
      ares_cancel(channel_);  // the callbacks see a lookup that is over
      finish_failure(current_->first_error);
    });
    if (cfg_.type == config::DnsRecord::kSrv) {
      current_->pending = 1;
      ares_query(channel_, cfg_.name.c_str(), kClassIn, kSrvType, &DnsSource::on_srv,
                 new QueryArg{this, current_->id, ""});
    } else {
      resolve(cfg_.name, family());
    }
    schedule_ares_timer();
  }

  int family() const {
    switch (cfg_.type) {
      case config::DnsRecord::kAaaa:
        return AF_INET6;
      case config::DnsRecord::kAny:
      case config::DnsRecord::kSrv:
        return AF_UNSPEC;
      default:
        return AF_INET;
    }
  }

  void resolve(const std::string& name, int fam) {
    ares_addrinfo_hints hints{};
    hints.ai_family = fam;
    hints.ai_flags = ARES_AI_NOSORT;
    current_->pending++;
    ares_getaddrinfo(channel_, name.c_str(), nullptr, &hints, &DnsSource::on_addrinfo,
                     new QueryArg{this, current_->id, name});
  }

  // The lookup this answer belongs to, when it is still the current one.
  Lookup* live(const QueryArg& arg) {
    if (!*alive_ || !current_ || current_->id != arg.lookup_id || current_->finished) {
      return nullptr;
    }
    return current_.get();
  }

  static void on_srv(void* data, int status, int, unsigned char* abuf, int alen) {
    std::unique_ptr<QueryArg> arg(static_cast<QueryArg*>(data));
    if (status == ARES_EDESTRUCTION) return;
    DnsSource* self = arg->self;
    Lookup* l = self->live(*arg);
    if (!l) return;
    l->pending--;
    if (status == ARES_ENODATA) return self->finish_empty(describe(status));
    if (status != ARES_SUCCESS) return self->finish_failure(describe(status));
    ares_srv_reply* reply = nullptr;
    if (int rc = ares_parse_srv_reply(abuf, alen, &reply); rc != ARES_SUCCESS) {
      return self->finish_failure("malformed SRV answer: " + describe(rc));
    }
    std::set<std::string> targets;
    for (ares_srv_reply* r = reply; r != nullptr; r = r->next) {
      if (l->records.size() >= kMaxEndpoints) break;
      l->srv_hosts.emplace_back(r->host);
      ares_srv_reply copy = *r;
      copy.next = nullptr;
      copy.host = nullptr;
      l->records.push_back(copy);
      targets.insert(r->host);
    }
    ares_free_data(reply);
    if (targets.empty()) return self->finish_empty("the SRV answer has no records");
    l->queue.assign(targets.begin(), targets.end());
    self->pump();
  }

  // Sends the queued SRV targets' lookups, at most kWindow at a time (a resolver's socket
  // buffer holds a few hundred answers: a thousand at once would lose some and wait for
  // c-ares's retries), and finishes the lookup once every one has answered. Re-entrant
  // calls (c-ares can answer inside ares_getaddrinfo) return at once: the outer loop goes on.
  void pump() {
    if (pumping_ || !current_ || current_->finished) return;
    pumping_ = true;
    Lookup& l = *current_;
    while (!l.finished && l.pending < kWindow && l.next < l.queue.size()) {
      resolve(l.queue[l.next++], AF_UNSPEC);
    }
    pumping_ = false;
    if (!l.finished && l.pending == 0 && l.next == l.queue.size()) return finish();
    schedule_ares_timer();
  }

  static void on_addrinfo(void* data, int status, int, ares_addrinfo* res) {
    std::unique_ptr<QueryArg> arg(static_cast<QueryArg*>(data));
    struct Free {
      void operator()(ares_addrinfo* p) const { ares_freeaddrinfo(p); }
    };
    std::unique_ptr<ares_addrinfo, Free> owned(res);
    if (status == ARES_EDESTRUCTION) return;
    DnsSource* self = arg->self;
    Lookup* l = self->live(*arg);
    if (!l) return;
    l->pending--;
    auto& out = l->addresses[arg->target];
    if (status != ARES_SUCCESS) {
      if (l->first_error.empty()) {
        // The name itself is said by finish_with(); an SRV target is said here.
        l->first_error = arg->target == self->cfg_.name ? describe(status)
                                                        : arg->target + ": " + describe(status);
      }
    } else {
      for (ares_addrinfo_node* n = res ? res->nodes : nullptr; n != nullptr; n = n->ai_next) {
        if (n->ai_family != AF_INET && n->ai_family != AF_INET6) continue;
        if (n->ai_addrlen > sizeof(sockaddr_storage)) continue;
        SocketAddress a;
        std::memcpy(&a.storage, n->ai_addr, n->ai_addrlen);
        a.length = n->ai_addrlen;
        out.push_back(a);
        if (l->min_ttl < 0 || n->ai_ttl < l->min_ttl) l->min_ttl = std::max(0, n->ai_ttl);
      }
    }
    self->pump();
  }

  void finish() {
    Lookup& l = *current_;
    l.finished = true;
    deadline_.cancel();
    Answer answer;
    auto add = [&](const SocketAddress& a, uint16_t port, uint32_t weight, uint16_t priority) {
      if (answer.endpoints.size() >= kMaxEndpoints) return;
      config::Endpoint ep;
      ep.address = a;
      ep.address.set_port(port);
      ep.address_text = ep.address.to_string();
      ep.weight = std::clamp<uint32_t>(weight, 1, kMaxWeight);
      ep.priority = priority;
      ep.region = cfg_.region;
      ep.zone = cfg_.zone;
      answer.endpoints.push_back(std::move(ep));
    };
    if (cfg_.type == config::DnsRecord::kSrv) {
      for (size_t i = 0; i < l.records.size(); ++i) {
        const auto& r = l.records[i];
        for (const auto& a : l.addresses[l.srv_hosts[i]]) add(a, r.port, r.weight, r.priority);
      }
    } else {
      for (const auto& a : l.addresses[cfg_.name]) add(a, cfg_.port, 1, 0);
    }
    if (answer.endpoints.empty()) {
      return l.first_error.empty() || l.first_error.find("no records") != std::string::npos
                 ? finish_empty(l.first_error.empty() ? "no addresses" : l.first_error)
                 : finish_failure(l.first_error);
    }
    answer.result = Result::kSuccess;
    answer.took = std::chrono::steady_clock::now() - l.started;
    failures_ = 0;
    const auto ttl = l.min_ttl < 0 ? cfg_.refresh : std::chrono::seconds(l.min_ttl);
    schedule(std::clamp<switchyard::Duration>(ttl, cfg_.min_refresh, cfg_.refresh));
    report_(std::move(answer));
  }

  void finish_empty(const std::string& why) { finish_with(Result::kEmpty, why); }
  void finish_failure(const std::string& why) { finish_with(Result::kFailure, why); }
  void finish_with(Result result, const std::string& why) {
    if (current_) current_->finished = true;
    deadline_.cancel();
    // Retry sooner than refresh, backing off: min_refresh (at least 1 s), doubling.
    switchyard::Duration wait =
        std::max<switchyard::Duration>(cfg_.min_refresh, std::chrono::seconds(1));
    for (int i = 0; i < failures_ && wait < cfg_.refresh; ++i) wait *= 2;
    failures_ = std::min(failures_ + 1, 30);
    schedule(std::min(wait, cfg_.refresh));
    Answer answer;
    answer.result = result;
    answer.error = cfg_.name + ": " + why;
    report_(std::move(answer));
  }

  void schedule(switchyard::Duration after) {
    refresh_timer_.expires_after(after);
    refresh_timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
      if (*alive && !ec) lookup();
    });
  }

  boost::asio::io_context& ioc_;
  config::DnsDiscovery cfg_;
  Report report_;
  ares_channel channel_ = nullptr;
  std::string init_error_;
  std::map<int, Watch> socks_;
  uint64_t generation_ = 0;
  bool pumping_ = false;  // inside pump()
  boost::asio::steady_timer ares_timer_;
  boost::asio::steady_timer refresh_timer_;
  boost::asio::steady_timer deadline_;
  std::unique_ptr<Lookup> current_;
  uint64_t lookup_ids_ = 0;
  int failures_ = 0;
  std::shared_ptr<bool> alive_;
};

}  // namespace

std::unique_ptr<Source> make_dns_source(boost::asio::io_context& ioc,
                                        const config::DnsDiscovery& dns, Source::Report report) {
  return std::make_unique<DnsSource>(ioc, dns, std::move(report));
}

}  // namespace switchyard::discovery
