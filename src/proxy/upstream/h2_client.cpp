#include "upstream/h2_client.h"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <cstring>

#include "h2/h2_memory.h"
#include "h2/h2_wire.h"
#include "switchyard/common/asio_endpoint.h"
#include "switchyard/common/logging.h"
#include "switchyard/tls/context.h"

namespace switchyard::proxy {
namespace {

using boost::system::error_code;

// Until the endpoint's SETTINGS say otherwise (RFC 9113 §6.5.2 recommends at least 100).
constexpr uint32_t kDefaultMaxStreams = 100;
// An idle connection is probed after this long; a PING unanswered this long closes it.
constexpr auto kPingIdle = std::chrono::seconds(10);
constexpr auto kPingTimeout = std::chrono::seconds(5);

H2Client* self_of(void* user) { return static_cast<H2Client*>(user); }

// The owner is looked up by stream, never kept in the provider: an owner that cancelled its
// stream is gone from it, and nghttp2 must not reach it through a stale pointer.
ssize_t body_callback(nghttp2_session* ng, int32_t id, uint8_t* buf, size_t length, uint32_t* flags,
                      nghttp2_data_source*, void*) {
  auto* owner = static_cast<H2ClientStream*>(nghttp2_session_get_stream_user_data(ng, id));
  if (owner == nullptr) return NGHTTP2_ERR_DEFERRED;  // cancelled: its RST_STREAM goes first
  return owner->h2_read_body(buf, length, flags);
}

nghttp2_session_callbacks* make_callbacks() {
  nghttp2_session_callbacks* cb = nullptr;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_header_callback(cb, &H2Client::on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &H2Client::on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &H2Client::on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &H2Client::on_stream_close);
  nghttp2_session_callbacks_set_before_frame_send_callback(cb, &H2Client::before_frame_send);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, &H2Client::on_frame_not_send);
  return cb;
}

nghttp2_session_callbacks* client_callbacks() {
  static nghttp2_session_callbacks* const cb = make_callbacks();
  return cb;
}

}  // namespace

H2Client::H2Client(Worker& worker, const SocketAddress& address, std::string_view host,
                   std::shared_ptr<const tls::ClientContext> tls,
                   std::chrono::milliseconds connect_timeout,
                   std::chrono::milliseconds idle_timeout)
    : worker_(worker),
      address_(address),
      host_(host),
      tls_(std::move(tls)),
      connect_timeout_(connect_timeout),
      idle_timeout_(idle_timeout),
      stream_(Socket(worker.ioc().get_executor())),
      timer_(worker.ioc().get_executor()) {}

H2Client::~H2Client() {
  if (ng_ != nullptr) nghttp2_session_del(ng_);
  if (in_) worker_.release_buffer(std::move(in_));
}

bool H2Client::open_for_streams() const {
  if (closed_ || goaway_) return false;
  if (!ready_) return active_ + waiters_.size() < kDefaultMaxStreams;
  const uint32_t max =
      nghttp2_session_get_remote_settings(ng_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  return active_ < std::min<uint32_t>(max, 1u << 20);
}

// --- connecting --------------------------------------------------------------------------------

void H2Client::connect() {
  connecting_ = true;
  timer_.expires_after(connect_timeout_);
  timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (ec || !self->connecting_) return;
    error_code ignored;
    self->stream_.socket().close(ignored);  // the pending connect or handshake fails
  });
  stream_.socket().async_connect(
      to_endpoint(address_), [self = shared_from_this()](error_code ec) { self->on_connect(ec); });
}

void H2Client::start_connected(Socket socket) {
  stream_ = Stream(std::move(socket));
  start_session();
}

void H2Client::on_connect(error_code ec) {
  if (ec || closed_) {
    logs::proxy().debug("HTTP/2 connect to {} failed: {}", host_, ec.message());
    return fail_waiters();
  }
  stream_.socket().set_option(tcp::no_delay(true), ec);
  if (tls_ == nullptr) return start_session();
  SSL* ssl = tls_->new_ssl(tls::host_of(host_));
  if (ssl == nullptr) return fail_waiters();
  stream_.use_tls(ssl);
  stream_.async_handshake(
      asio::ssl::stream_base::client, [self = shared_from_this()](error_code ec) {
        if (ec || self->closed_) {
          logs::warn_every(logs::proxy(), logs::Reason::kUpstreamTls,
                           "TLS handshake with {} failed: {}", self->host_, ec.message());
          return self->fail_waiters();
        }
        const unsigned char* alpn = nullptr;
        unsigned int len = 0;
        SSL_get0_alpn_selected(self->stream_.ssl(), &alpn, &len);
        if (len != 2 || std::memcmp(alpn, "h2", 2) != 0) {
          logs::warn_every(logs::proxy(), logs::Reason::kUpstreamH2,
                           "{} did not agree to h2 by ALPN", self->host_);
          return self->fail_waiters();
        }
        self->start_session();
      });
}

void H2Client::start_session() {
  connecting_ = false;
  timer_.cancel();
  nghttp2_option* opt = h2::new_options();
  nghttp2_session_client_new3(&ng_, client_callbacks(), this, opt, h2::memory());
  nghttp2_option_del(opt);
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(kStreamWindow)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(kBodyBufferSize)},
  };
  nghttp2_submit_settings(ng_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  // The connection's window: every stream's may be full at once.
  nghttp2_session_set_local_window_size(ng_, NGHTTP2_FLAG_NONE, 0, 16 * 1024 * 1024);
  in_ = worker_.acquire_buffer();
  ready_ = true;
  idle_since_ = worker_.now();
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto* w : waiters) w->h2_ready(true);
  flush();
  read();
}

void H2Client::fail_waiters() {
  connecting_ = false;
  timer_.cancel();
  closed_ = true;
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto* w : waiters) w->h2_ready(false);
}

void H2Client::wait(H2ClientStream* owner) { waiters_.push_back(owner); }

void H2Client::unwait(H2ClientStream* owner) {
  std::erase(waiters_, owner);
  std::erase(touched_, owner);
}

// --- streams -----------------------------------------------------------------------------------

// The owner is attached to the stream when nghttp2 opens it, just before its HEADERS go out
// (before_frame_send): until then it waits in pending_, so that a cancel before the flush, or a
// GOAWAY that stops the HEADERS from ever going out (on_frame_not_send), reaches it and nothing
// else does.
int32_t H2Client::submit(const nghttp2_nv* nv, size_t n, bool has_body, H2ClientStream* owner) {
  nghttp2_data_provider provider{};
  provider.source.ptr = nullptr;
  provider.read_callback = body_callback;
  const int32_t id =
      nghttp2_submit_request(ng_, nullptr, nv, n, has_body ? &provider : nullptr, nullptr);
  if (id < 0) return id;
  pending_.push_back({id, owner});
  ++active_;
  return id;  // the caller flushes once it knows the id
}

H2ClientStream* H2Client::take_pending(int32_t id) {
  for (size_t i = 0; i < pending_.size(); ++i) {
    if (pending_[i].first != id) continue;
    H2ClientStream* owner = pending_[i].second;
    pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
    return owner;
  }
  return nullptr;
}

void H2Client::resume_body(int32_t id) {
  nghttp2_session_resume_data(ng_, id);
  flush_soon();
}

void H2Client::consume(int32_t id, size_t bytes) {
  if (closed_ || ng_ == nullptr || bytes == 0) return;
  // The connection's share always; the stream's only while it is open.
  nghttp2_session_consume_connection(ng_, bytes);
  if (owner_of(id) != nullptr) nghttp2_session_consume_stream(ng_, id, bytes);
  flush_soon();
}

void H2Client::cancel(int32_t id, H2ClientStream* owner) {
  std::erase(touched_, owner);
  std::erase(waiters_, owner);
  if (closed_ || ng_ == nullptr || id <= 0) return;
  if (take_pending(id) == owner && owner != nullptr) {
    // Its HEADERS have not gone out: RST_STREAM cancels them in nghttp2's queue, and the stream
    // never opens.
    if (active_ > 0) --active_;
    nghttp2_submit_rst_stream(ng_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    return flush_soon();
  }
  if (owner_of(id) != owner) return;
  nghttp2_session_set_stream_user_data(ng_, id, nullptr);
  nghttp2_submit_rst_stream(ng_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
  flush_soon();
}

H2ClientStream* H2Client::owner_of(int32_t id) {
  return static_cast<H2ClientStream*>(nghttp2_session_get_stream_user_data(ng_, id));
}

void H2Client::note(H2ClientStream* owner) {
  for (auto* t : touched_) {
    if (t == owner) return;
  }
  touched_.push_back(owner);
}

// --- I/O -----------------------------------------------------------------------------------------

bool H2Client::io_received(ssize_t n) {
  deliver();
  if (n < 0) {
    logs::proxy().debug("HTTP/2 from {}: {}", host_, nghttp2_strerror(static_cast<int>(n)));
    flush();
    close();
    return false;
  }
  // Told GOAWAY and every stream done, or terminated: nothing more will come.
  if (nghttp2_session_want_read(ng_) == 0 && nghttp2_session_want_write(ng_) == 0 && !writing()) {
    close();
    return false;
  }
  return true;
}

// One owner at a time, taken off the list first: an owner may cancel (and so unlist) others
// while it acts, and a cancelled one is never called.
void H2Client::deliver() {
  if (delivering_) return;
  delivering_ = true;
  while (!touched_.empty()) {
    H2ClientStream* owner = touched_.front();
    touched_.erase(touched_.begin());
    owner->h2_deliver();
  }
  delivering_ = false;
}

bool H2Client::sweep(Clock::time_point now) {
  if (closed_) return false;
  if (!ready_) return true;
  if (active_ > 0) {
    idle_since_ = now;
    return true;
  }
  if (now - idle_since_ >= idle_timeout_ || goaway_ || retired_) {
    close();
    return false;
  }
  if (ping_sent_ != Clock::time_point::max()) {
    if (now - ping_sent_ >= kPingTimeout) {
      logs::proxy().info("HTTP/2 connection to {} did not answer PING: closed", host_);
      close();
      return false;
    }
  } else if (now - idle_since_ >= kPingIdle) {
    nghttp2_submit_ping(ng_, NGHTTP2_FLAG_NONE, nullptr);
    ping_sent_ = now;
    flush();
  }
  return true;
}

void H2Client::close() {
  if (closed_) return;
  closed_ = true;
  error_code ignored;
  stream_.socket().close(ignored);
  timer_.cancel();
  fail_waiters();
  if (ng_ == nullptr) return;
  // Streams still open end now; each owner hears of it once.
  const int32_t next = static_cast<int32_t>(nghttp2_session_get_next_stream_id(ng_));
  for (int32_t id = 1; id > 0 && id < next; id += 2) {
    if (auto* o = owner_of(id)) {
      nghttp2_session_set_stream_user_data(ng_, id, nullptr);
      o->h2_closed(NGHTTP2_INTERNAL_ERROR);
      note(o);
    }
  }
  // Streams whose HEADERS never went out were not processed: the owner may send them again.
  auto pending = std::move(pending_);
  pending_.clear();
  for (const auto& [id, o] : pending) {
    o->h2_closed(NGHTTP2_REFUSED_STREAM);
    note(o);
  }
  active_ = 0;
  auto keep = shared_from_this();  // owners may drop their reference while told
  deliver();
}

// --- nghttp2 callbacks ---------------------------------------------------------------------------

int H2Client::on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                        size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                        void* user) {
  auto* self = self_of(user);
  if (auto* o = self->owner_of(frame->hd.stream_id)) {
    o->h2_header(std::string_view(reinterpret_cast<const char*>(name), namelen),
                 std::string_view(reinterpret_cast<const char*>(value), valuelen));
  }
  return 0;
}

int H2Client::on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  auto* self = self_of(user);
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
      if (auto* o = self->owner_of(frame->hd.stream_id)) {
        o->h2_headers_end();
        if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) o->h2_end_stream();
        self->note(o);
      }
      break;
    case NGHTTP2_DATA:
      if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
        if (auto* o = self->owner_of(frame->hd.stream_id)) {
          o->h2_end_stream();
          self->note(o);
        }
      }
      break;
    case NGHTTP2_GOAWAY:
      self->goaway_ = true;  // streams it did not cover close with REFUSED_STREAM
      break;
    case NGHTTP2_PING:
      if ((frame->hd.flags & NGHTTP2_FLAG_ACK) != 0) self->ping_sent_ = Clock::time_point::max();
      break;
    default:
      break;
  }
  return 0;
}

int H2Client::on_data_chunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                            void* user) {
  auto* self = self_of(user);
  if (auto* o = self->owner_of(id)) {
    o->h2_data(data, len);
    self->note(o);
  } else {
    nghttp2_session_consume(self->ng_, id, len);  // a cancelled stream
  }
  return 0;
}

int H2Client::before_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  auto* self = self_of(user);
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    if (auto* o = self->take_pending(frame->hd.stream_id)) {
      nghttp2_session_set_stream_user_data(self->ng_, frame->hd.stream_id, o);
    }
  }
  return 0;
}

// A request whose HEADERS could not go out (a GOAWAY came first): never processed, so its owner
// hears REFUSED_STREAM and may send it again elsewhere.
int H2Client::on_frame_not_send(nghttp2_session*, const nghttp2_frame* frame, int, void* user) {
  auto* self = self_of(user);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  if (auto* o = self->take_pending(frame->hd.stream_id)) {
    if (self->active_ > 0) --self->active_;
    o->h2_closed(NGHTTP2_REFUSED_STREAM);
    self->note(o);
  }
  return 0;
}

int H2Client::on_stream_close(nghttp2_session*, int32_t id, uint32_t error_code, void* user) {
  auto* self = self_of(user);
  if (self->active_ > 0) --self->active_;
  if (self->active_ == 0) self->idle_since_ = self->worker_.now();
  auto* o = self->owner_of(id);
  if (o == nullptr) return 0;
  nghttp2_session_set_stream_user_data(self->ng_, id, nullptr);
  o->h2_closed(error_code);
  self->note(o);
  return 0;
}

// --- the pool ------------------------------------------------------------------------------------

std::shared_ptr<H2Client> H2Pool::acquire(uint32_t endpoint_id, const SocketAddress& address,
                                          std::string_view host,
                                          const std::shared_ptr<const tls::ClientContext>& tls,
                                          std::chrono::milliseconds connect_timeout,
                                          std::chrono::milliseconds idle_timeout,
                                          const H2Client* avoid) {
  if (by_endpoint_.size() <= endpoint_id) by_endpoint_.resize(endpoint_id + 1);
  auto& list = by_endpoint_[endpoint_id];
  std::erase_if(list, [](const auto& c) { return c->failed(); });
  for (auto& c : list) {
    // A connection made under another TLS context (a reload changed the cluster's TLS) takes
    // no new stream; its open ones finish and it closes once idle (sweep).
    if (c->tls_context() != tls.get()) {
      c->retire();
      continue;
    }
    if (c.get() != avoid && c->open_for_streams()) return c;
  }
  auto c = std::make_shared<H2Client>(worker_, address, host, tls, connect_timeout, idle_timeout);
  list.push_back(c);
  c->connect();
  return c;
}

void H2Pool::sweep(Clock::time_point now) {
  for (auto& list : by_endpoint_) {
    std::erase_if(list, [now](const auto& c) { return !c->sweep(now); });
  }
}

void H2Pool::clear() {
  for (auto& list : by_endpoint_) {
    for (auto& c : list) c->close();
  }
  by_endpoint_.clear();
}

}  // namespace switchyard::proxy
