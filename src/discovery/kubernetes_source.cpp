// discovery.kubernetes: a Service's EndpointSlices (discovery.k8s.io/v1) through the API
// server, as the Kubernetes API documents list and watch:
//   - list: GET .../namespaces/NS/endpointslices?labelSelector=kubernetes.io/service-name=SVC
//     (pages of 500, `continue`), remembering the list's resourceVersion;
//   - watch from it: `watch=1&allowWatchBookmarks=true&resourceVersion=RV&timeoutSeconds=60`,
//     a chunked stream of one JSON event per line (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR);
//     each event moves the resourceVersion on, and a watch that ends is started again from it;
//   - 410 Gone (on the watch, or as an ERROR event): the version is too old, list again;
//   - anything else that fails (refused, TLS, 401 / 403 / 500, a broken or silent stream,
//     malformed JSON): the last good set stays, and the next try comes after a backoff of
//     0.5 s doubling to 30 s.
// An endpoint is used when its `ready` condition is true (or absent, which the API says to read
// as ready); when no endpoint of the Service is ready, those that are `serving` while
// `terminating` are (KEP-1669: a rollout's last pods drain instead of the Service going dark).
// Its port: the slice's port named `port`, that number, or the first port. Its zone: the
// endpoint's `zone`; its region: that zone without its zone letter (us-east-1a -> us-east-1,
// europe-west1-b -> europe-west1), else the source's `region`.

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>

#include "sources.h"

namespace switchyard::discovery {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

constexpr auto kWatchSeconds = 60;
// A watch that ends cleanly sooner than this having carried no event is not a watch the
// server timed out: the next one waits for the backoff instead of spinning.
constexpr auto kShortestWatch = std::chrono::seconds(1);
constexpr const char* kNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
constexpr size_t kMaxListBytes = 64u << 20;
constexpr size_t kMaxEndpoints = 10000;
constexpr size_t kMaxLineBytes = 16u << 20;
constexpr auto kBackoffMin = std::chrono::milliseconds(500);
constexpr auto kBackoffMax = std::chrono::seconds(30);

std::string percent_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

// us-east-1a -> us-east-1 (AWS), europe-west1-b -> europe-west1 (GCP), eastus-2 -> eastus
// (Azure); "" when the zone has no such suffix.
std::string region_of_zone(const std::string& zone) {
  const size_t n = zone.size();
  if (n >= 3 && zone[n - 2] == '-' && std::isalnum(static_cast<unsigned char>(zone[n - 1]))) {
    return zone.substr(0, n - 2);
  }
  if (n >= 2 && std::islower(static_cast<unsigned char>(zone[n - 1])) &&
      std::isdigit(static_cast<unsigned char>(zone[n - 2]))) {
    return zone.substr(0, n - 1);
  }
  return "";
}

std::string read_file(const std::string& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  *ok = static_cast<bool>(in);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

const json::value* find(const json::value& v, std::initializer_list<std::string_view> path) {
  const json::value* at = &v;
  for (auto key : path) {
    const auto* obj = at->if_object();
    if (!obj) return nullptr;
    auto it = obj->find(key);
    if (it == obj->end()) return nullptr;
    at = &it->value();
  }
  return at;
}

std::string string_at(const json::value& v, std::initializer_list<std::string_view> path) {
  const auto* s = find(v, path);
  return s && s->is_string() ? std::string(s->as_string()) : std::string();
}

// The endpoints one slice offers, split by readiness.
struct Slice {
  std::vector<config::Endpoint> ready;
  std::vector<config::Endpoint> draining;  // serving while terminating
  bool port_missing = false;
};

// Where the API server is: scheme, host, port.
struct Target {
  bool tls = true;
  std::string host;
  std::string port;
};

// One GET to the API server: connect, TLS, request, response head, then the body in pieces.
class Get : public std::enable_shared_from_this<Get> {
 public:
  struct Callbacks {
    // The response head: return false to stop reading (the error is the caller's).
    std::function<bool(unsigned status)> on_head;
    // A piece of the body: return false to stop.
    std::function<bool(std::string_view)> on_data;
    // The end: "" when the response ended cleanly, else why not.
    std::function<void(std::string error)> on_done;
  };

  Get(asio::io_context& ioc, asio::ssl::context* tls, Target target, std::string path,
      std::string token, Duration timeout, Duration read_silence, Callbacks cb)
      : ioc_(ioc),
        tls_context_(tls),
        target_(std::move(target)),
        timeout_(timeout),
        silence_(read_silence),
        cb_(std::move(cb)),
        resolver_(ioc) {
    request_.method(http::verb::get);
    request_.target(path);
    request_.version(11);
    const bool v6 = target_.host.find(':') != std::string::npos;
    request_.set(http::field::host,
                 (v6 ? "[" + target_.host + "]" : target_.host) + ":" + target_.port);
    request_.set(http::field::accept, "application/json");
    request_.set(http::field::user_agent, "switchyard");
    if (!token.empty()) request_.set(http::field::authorization, "Bearer " + token);
  }

  void start() {
    resolver_.async_resolve(
        target_.host, target_.port,
        [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type results) {
          if (self->done_) return;
          if (ec) return self->finish("resolve " + self->target_.host + ": " + ec.message());
          self->stream_.emplace(self->ioc_);
          self->stream_->expires_after(self->timeout_);
          self->stream_->async_connect(results, [self](beast::error_code e, const auto&) {
            if (self->done_) return;
            if (e) return self->finish("connect: " + e.message());
            if (!self->tls_context_) return self->send();
            self->handshake();
          });
        });
  }

  void cancel() {
    done_ = true;
    resolver_.cancel();
    if (stream_) stream_->close();
    if (tls_) tls_->next_layer().close();
  }

 private:
  beast::tcp_stream& tcp() { return tls_ ? tls_->next_layer() : *stream_; }
  template <typename F>
  void with_stream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(*stream_);
    }
  }

  void handshake() {
    tls_.emplace(std::move(*stream_), *tls_context_);
    stream_.reset();
    SSL_set_tlsext_host_name(tls_->native_handle(), target_.host.c_str());
    tls_->set_verify_callback(asio::ssl::host_name_verification(target_.host));
    tls_->async_handshake(asio::ssl::stream_base::client,
                          [self = shared_from_this()](beast::error_code ec) {
                            if (self->done_) return;
                            if (ec) return self->finish("tls: " + ec.message());
                            self->send();
                          });
  }

  void send() {
    with_stream([&](auto& s) {
      http::async_write(s, request_, [self = shared_from_this()](beast::error_code ec, size_t) {
        if (self->done_) return;
        if (ec) return self->finish("write: " + ec.message());
        self->read_head();
      });
    });
  }

  void read_head() {
    parser_.body_limit(boost::none);
    with_stream([&](auto& s) {
      http::async_read_header(s, buffer_, parser_,
                              [self = shared_from_this()](beast::error_code ec, size_t) {
                                if (self->done_) return;
                                if (ec) return self->finish("read: " + ec.message());
                                if (!self->cb_.on_head(self->parser_.get().result_int())) {
                                  return self->finish("");
                                }
                                self->read_body();
                              });
    });
  }

  void read_body() {
    if (parser_.is_done()) return finish("");
    parser_.get().body().data = chunk_.data();
    parser_.get().body().size = chunk_.size();
    tcp().expires_after(silence_);
    with_stream([&](auto& s) {
      http::async_read_some(
          s, buffer_, parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
            if (self->done_) return;
            if (ec == http::error::need_buffer) ec = {};
            if (ec) return self->finish("read: " + ec.message());
            const size_t got = self->chunk_.size() - self->parser_.get().body().size;
            if (got > 0 && !self->cb_.on_data(std::string_view(self->chunk_.data(), got))) {
              return self->finish("");
            }
            self->read_body();
          });
    });
  }

  void finish(std::string error) {
    if (done_) return;
    done_ = true;
    if (stream_) stream_->close();
    if (tls_) tls_->next_layer().close();
    cb_.on_done(std::move(error));
  }

  asio::io_context& ioc_;
  asio::ssl::context* tls_context_;
  Target target_;
  Duration timeout_;
  Duration silence_;
  Callbacks cb_;
  tcp::resolver resolver_;
  std::optional<beast::tcp_stream> stream_;
  std::optional<asio::ssl::stream<beast::tcp_stream>> tls_;
  http::request<http::empty_body> request_;
  beast::flat_buffer buffer_;
  http::response_parser<http::buffer_body> parser_;
  std::array<char, 16384> chunk_{};
  bool done_ = false;
};

class KubernetesSource final : public Source {
 public:
  KubernetesSource(asio::io_context& ioc, config::KubernetesDiscovery cfg, Report report)
      : ioc_(ioc),
        cfg_(std::move(cfg)),
        report_(std::move(report)),
        retry_(ioc),
        alive_(std::make_shared<bool>(true)) {
    cfg_.namespace_ = kubernetes_namespace(cfg_);
    base_path_ = "/apis/discovery.k8s.io/v1/namespaces/" + percent_encode(cfg_.namespace_) +
                 "/endpointslices?labelSelector=" +
                 percent_encode("kubernetes.io/service-name=" + cfg_.service);
  }
  ~KubernetesSource() override { stop(); }

  std::optional<Answer> start() override {
    asio::post(ioc_, [this, alive = alive_] {
      if (*alive) list();
    });
    return std::nullopt;
  }

  void stop() override {
    if (!*alive_) return;
    *alive_ = false;
    retry_.cancel();
    if (get_) get_->cancel();
    get_.reset();
  }

 private:
  // --- setup ---------------------------------------------------------------------------------
  // The API server and its TLS context; "" or why not.
  std::string prepare() {
    std::string url = cfg_.api_server;
    if (url.empty()) {
      const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
      const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
      if (!host || !port) {
        return "no api_server set and not in a pod (KUBERNETES_SERVICE_HOST is unset)";
      }
      std::string h = host;
      url = "https://" + (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + port;
    }
    Target t;
    std::string rest;
    if (url.rfind("https://", 0) == 0) {
      rest = url.substr(8);
    } else if (url.rfind("http://", 0) == 0) {
      t.tls = false;
      rest = url.substr(7);
    } else {
      return "api_server '" + url + "' must start with https:// or http://";
    }
    rest = rest.substr(0, rest.find('/'));
    if (!rest.empty() && rest.front() == '[') {
      const auto end = rest.find(']');
      if (end == std::string::npos) return "api_server '" + url + "': unclosed [";
      t.host = rest.substr(1, end - 1);
      t.port = rest.size() > end + 2 ? rest.substr(end + 2) : "";
    } else {
      const auto colon = rest.rfind(':');
      t.host = rest.substr(0, colon);
      t.port = colon == std::string::npos ? "" : rest.substr(colon + 1);
    }
    if (t.port.empty()) t.port = t.tls ? "443" : "80";
    if (t.host.empty()) return "api_server '" + url + "' has no host";
    if (t.tls && !tls_) {
      tls_.emplace(asio::ssl::context::tls_client);
      boost::system::error_code ec;
      if (cfg_.verify) {
        tls_->set_verify_mode(asio::ssl::verify_peer);
        tls_->load_verify_file(cfg_.ca_file, ec);
        if (ec) {
          tls_.reset();
          return "ca_file " + cfg_.ca_file + ": " + ec.message();
        }
      } else {
        tls_->set_verify_mode(asio::ssl::verify_none);
      }
    }
    target_ = t;
    return "";
  }

  // The service account token, read for every request (projected tokens rotate). A missing
  // file at the default path means no credential (an API server reached over a local proxy).
  bool token(std::string* out, std::string* error) {
    bool ok = false;
    *out = read_file(cfg_.token_file, &ok);
    if (!ok) {
      out->clear();
      if (cfg_.token_file != config::KubernetesDiscovery{}.token_file) {
        *error = "cannot read token_file " + cfg_.token_file;
        return false;
      }
      return true;
    }
    while (!out->empty() && std::isspace(static_cast<unsigned char>(out->back()))) out->pop_back();
    return true;
  }

  // --- list ----------------------------------------------------------------------------------
  void list(std::string continue_token = "") {
    if (!*alive_) return;
    if (auto why = prepare(); !why.empty()) return fail(why, false);
    std::string tok, why;
    if (!token(&tok, &why)) return fail(why, false);
    if (continue_token.empty()) pending_.clear();
    std::string path = base_path_ + "&limit=500";
    if (!continue_token.empty()) path += "&continue=" + percent_encode(continue_token);
    auto body = std::make_shared<std::string>();
    auto status = std::make_shared<unsigned>(0);
    Get::Callbacks cb;
    cb.on_head = [status](unsigned s) {
      *status = s;
      return true;
    };
    cb.on_data = [body](std::string_view piece) {
      if (body->size() + piece.size() > kMaxListBytes) return false;
      body->append(piece);
      return true;
    };
    cb.on_done = [this, alive = alive_, body, status](std::string error) {
      if (!*alive) return;
      get_.reset();
      if (!error.empty()) return fail("list: " + error, false);
      if (*status != 200) return fail("list: " + status_text(*status, *body), *status == 410);
      boost::system::error_code ec;
      json::value doc = json::parse(*body, ec);
      const auto* items = ec ? nullptr : find(doc, {"items"});
      if (!items || !items->is_array()) return fail("list: not an EndpointSliceList", false);
      for (const auto& item : items->as_array()) {
        pending_[string_at(item, {"metadata", "name"})] = parse_slice(item);
      }
      if (auto next = string_at(doc, {"metadata", "continue"}); !next.empty()) return list(next);
      slices_ = std::move(pending_);
      pending_.clear();
      version_ = string_at(doc, {"metadata", "resourceVersion"});
      backoff_ = kBackoffMin;
      publish();
      watch();
    };
    start_get(path, cfg_.timeout, std::move(cb));
  }

  // --- watch ---------------------------------------------------------------------------------
  void watch() {
    if (!*alive_) return;
    std::string tok, why;
    if (!token(&tok, &why)) return fail(why, false);
    const std::string path = base_path_ + "&watch=1&allowWatchBookmarks=true&resourceVersion=" +
                             percent_encode(version_) +
                             "&timeoutSeconds=" + std::to_string(kWatchSeconds);
    auto status = std::make_shared<unsigned>(0);
    auto body = std::make_shared<std::string>();
    auto relist = std::make_shared<bool>(false);
    const auto started = std::chrono::steady_clock::now();
    watch_events_ = 0;
    Get::Callbacks cb;
    cb.on_head = [status](unsigned s) {
      *status = s;
      return true;
    };
    cb.on_data = [this, status, body, relist](std::string_view piece) {
      if (*status != 200) {
        if (body->size() < 4096) body->append(piece.substr(0, 4096));
        return true;
      }
      line_.append(piece);
      if (line_.size() > kMaxLineBytes) {
        watch_error_ = "an event over 16 MiB";
        return false;
      }
      bool changed = false;
      for (size_t nl; (nl = line_.find('\n')) != std::string::npos; line_.erase(0, nl + 1)) {
        if (!on_event(std::string_view(line_).substr(0, nl), &changed, relist.get())) {
          if (changed) publish();
          return false;
        }
      }
      if (changed) publish();
      return true;
    };
    cb.on_done = [this, alive = alive_, status, body, relist, started](std::string error) {
      if (!*alive) return;
      get_.reset();
      line_.clear();
      if (*relist) return fail("watch: 410 Gone (the version is too old): listing again", true);
      if (!watch_error_.empty()) {
        auto why = std::move(watch_error_);
        watch_error_.clear();
        return fail("watch: " + why, false);
      }
      if (*status != 0 && *status != 200) {
        return fail("watch: " + status_text(*status, *body), *status == 410);
      }
      if (!error.empty()) return fail("watch: " + error, false);
      if (watch_events_ == 0 && std::chrono::steady_clock::now() - started < kShortestWatch) {
        return fail("watch: the server ended it at once, with no event", false);
      }
      watch();  // the server ended it (timeoutSeconds): on from where it was
    };
    // The server ends a watch after timeoutSeconds; silence well beyond that is a dead peer.
    start_get(path, std::chrono::seconds(kWatchSeconds) + cfg_.timeout, std::move(cb));
  }

  // One watch event. false: stop the watch (an ERROR event, or a line that is not one).
  bool on_event(std::string_view line, bool* changed, bool* relist) {
    if (line.find_first_not_of(" \r\t") == std::string_view::npos) return true;
    boost::system::error_code ec;
    json::value ev = json::parse(line, ec);
    if (ec || !ev.is_object()) {
      watch_error_ = "an event that is not JSON";
      return false;
    }
    const std::string type = string_at(ev, {"type"});
    const json::value* object = find(ev, {"object"});
    if (!object) {
      watch_error_ = "an event without an object";
      return false;
    }
    if (type == "ERROR") {
      const auto* code = find(*object, {"code"});
      if (code && code->is_int64() && code->as_int64() == 410) {
        *relist = true;
      } else {
        watch_error_ = "ERROR event: " + string_at(*object, {"message"});
      }
      return false;
    }
    if (auto v = string_at(*object, {"metadata", "resourceVersion"}); !v.empty()) version_ = v;
    const std::string name = string_at(*object, {"metadata", "name"});
    if (type == "ADDED" || type == "MODIFIED") {
      slices_[name] = parse_slice(*object);
      *changed = true;
    } else if (type == "DELETED") {
      *changed = slices_.erase(name) > 0 || *changed;
    } else if (type != "BOOKMARK") {
      watch_error_ = "an event of unknown type '" + type + "'";
      return false;
    }
    backoff_ = kBackoffMin;
    ++watch_events_;
    return true;
  }

  // --- slices to endpoints -------------------------------------------------------------------
  Slice parse_slice(const json::value& s) const {
    Slice out;
    const std::string type = string_at(s, {"addressType"});
    if (type != "IPv4" && type != "IPv6") return out;  // FQDN slices name no address
    int port = -1;
    if (const auto* ports = find(s, {"ports"}); ports && ports->is_array()) {
      for (const auto& p : ports->as_array()) {
        const auto* number = find(p, {"port"});
        if (!number || !number->is_int64()) continue;
        const std::string name = string_at(p, {"name"});
        const std::string proto = string_at(p, {"protocol"});
        if (!proto.empty() && proto != "TCP") continue;
        const bool numeric =
            !cfg_.port.empty() && cfg_.port.find_first_not_of("0123456789") == std::string::npos;
        if (cfg_.port.empty() || name == cfg_.port ||
            (numeric && std::to_string(number->as_int64()) == cfg_.port)) {
          port = static_cast<int>(number->as_int64());
          break;
        }
      }
    }
    if (port <= 0 || port > 65535) {
      out.port_missing = true;
      return out;
    }
    const auto* eps = find(s, {"endpoints"});
    if (!eps || !eps->is_array()) return out;
    for (const auto& e : eps->as_array()) {
      auto condition = [&](std::string_view key, bool absent) {
        const auto* c = find(e, {"conditions", key});
        return c && c->is_bool() ? c->as_bool() : absent;
      };
      const bool ready = condition("ready", true);
      const bool draining =
          !ready && condition("serving", false) && condition("terminating", false);
      if (!ready && !draining) continue;
      const auto* addresses = find(e, {"addresses"});
      if (!addresses || !addresses->is_array() || addresses->as_array().empty()) continue;
      const auto& first = addresses->as_array()[0];  // the API says they are fungible
      if (!first.is_string()) continue;
      std::string ip(first.as_string());
      auto parsed = IpAddress::parse(ip);
      if (!parsed) continue;
      std::string text = (type == "IPv6" ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
      std::string why;
      auto address = parse_host_port(text, false, &why);  // an IP literal: no lookup
      if (!address) continue;
      config::Endpoint ep;
      ep.address = *address;
      ep.address_text = address->to_string();
      ep.zone = string_at(e, {"zone"});
      ep.region = region_of_zone(ep.zone);
      if (ep.region.empty()) ep.region = cfg_.region;
      (ready ? out.ready : out.draining).push_back(std::move(ep));
    }
    return out;
  }

  void publish() {
    Answer answer;
    answer.result = Result::kSuccess;
    bool port_missing = false;
    for (const auto& [name, s] : slices_) {
      answer.endpoints.insert(answer.endpoints.end(), s.ready.begin(), s.ready.end());
      port_missing = port_missing || s.port_missing;
    }
    if (answer.endpoints.empty()) {
      for (const auto& [name, s] : slices_) {
        answer.endpoints.insert(answer.endpoints.end(), s.draining.begin(), s.draining.end());
      }
    }
    // As many as a DNS answer or a file may give; slices are in name order, so which are
    // kept does not change from one answer to the next.
    if (answer.endpoints.size() > kMaxEndpoints) answer.endpoints.resize(kMaxEndpoints);
    if (slices_.empty()) {
      // No EndpointSlice at all: the Service is gone or its name is wrong (a Service scaled
      // to zero keeps its slices, with no endpoints in them, and that set is applied).
      answer.result = Result::kEmpty;
      answer.error = cfg_.namespace_ + "/" + cfg_.service + ": no EndpointSlices";
    } else if (answer.endpoints.empty() && port_missing) {
      answer.result = Result::kFailure;
      answer.error = cfg_.namespace_ + "/" + cfg_.service + ": no port " +
                     (cfg_.port.empty() ? std::string("over TCP") : "'" + cfg_.port + "'") +
                     " in its EndpointSlices";
    }
    report_(std::move(answer));
  }

  // --- plumbing ------------------------------------------------------------------------------
  void start_get(const std::string& path, Duration silence, Get::Callbacks cb) {
    std::string tok, why;
    token(&tok, &why);
    get_ = std::make_shared<Get>(ioc_, target_.tls ? &*tls_ : nullptr, target_, path, tok,
                                 cfg_.timeout, silence, std::move(cb));
    get_->start();
  }

  static std::string status_text(unsigned status, const std::string& body) {
    std::string out = "HTTP " + std::to_string(status);
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (!ec) {
      if (auto m = string_at(v, {"message"}); !m.empty()) out += " (" + m.substr(0, 200) + ")";
    }
    return out;
  }

  // Reports the failure (the last good set stays) and tries again after the backoff: a list
  // when relist (or nothing was listed yet), else a watch from the version it had.
  void fail(const std::string& why, bool relist) {
    Answer answer;
    answer.error = cfg_.namespace_ + "/" + cfg_.service + ": " + why;
    report_(std::move(answer));
    const bool list_again = relist || version_.empty();
    if (relist) version_.clear();
    retry_.expires_after(backoff_);
    backoff_ = std::min<Duration>(backoff_ * 2, kBackoffMax);
    retry_.async_wait([this, alive = alive_, list_again](boost::system::error_code ec) {
      if (!*alive || ec) return;
      if (list_again) {
        list();
      } else {
        watch();
      }
    });
  }

  asio::io_context& ioc_;
  config::KubernetesDiscovery cfg_;
  Report report_;
  std::string base_path_;
  Target target_;
  std::optional<asio::ssl::context> tls_;
  std::shared_ptr<Get> get_;
  asio::steady_timer retry_;
  Duration backoff_ = kBackoffMin;
  std::map<std::string, Slice> slices_;   // by slice name
  std::map<std::string, Slice> pending_;  // a list's pages so far
  std::string version_;                   // the resourceVersion to watch from
  std::string line_;                      // the watch stream's unfinished line
  std::string watch_error_;
  size_t watch_events_ = 0;  // in the current watch
  std::shared_ptr<bool> alive_;
};

}  // namespace

std::string kubernetes_namespace(const config::KubernetesDiscovery& k8s) {
  if (!k8s.namespace_.empty()) return k8s.namespace_;
  // The pod's own namespace, as client-go reads it; "default" outside a pod.
  bool ok = false;
  std::string ns = read_file(kNamespaceFile, &ok);
  while (!ns.empty() && std::isspace(static_cast<unsigned char>(ns.back()))) ns.pop_back();
  return ok && !ns.empty() ? ns : "default";
}

std::unique_ptr<Source> make_kubernetes_source(asio::io_context& ioc,
                                               const config::KubernetesDiscovery& k8s,
                                               Source::Report report) {
  return std::make_unique<KubernetesSource>(ioc, k8s, std::move(report));
}

}  // namespace switchyard::discovery
