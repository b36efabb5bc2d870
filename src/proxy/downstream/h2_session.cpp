#include "downstream/h2_session.h"

#include <algorithm>
#include <cstring>

#include "downstream/h2_stream.h"
#include "h2/h2_memory.h"
#include "h2/h2_wire.h"
#include "switchyard/common/logging.h"

namespace switchyard::proxy {
namespace {

using boost::system::error_code;

// A client resetting at least this many streams before their response began, and at least
// half of all it opened, is abusive (CVE-2023-44487; Envoy's premature-reset rule).
constexpr uint64_t kPrematureResetFloor = 100;
// SETTINGS and PING frames accepted per second (CVE-2019-9512, -9515).
constexpr uint32_t kMaxControlFramesPerSecond = 1000;
// CONTINUATION frames per header block (CVE-2024-27316): a legitimate block needs few. Below
// nghttp2's own limit (16, h2_wire.h), so that this check is the one that acts and names the
// attack in the log; nghttp2's stays as the backstop.
constexpr uint32_t kMaxContinuations = 8;

H2Session* self_of(void* user) { return static_cast<H2Session*>(user); }

nghttp2_session_callbacks* server_callbacks();

}  // namespace

H2Session::H2Session(Worker& worker, size_t listener_index, Stream client, ConnectionSlot slot,
                     ClientIdentity id)
    : worker_(worker),
      listener_index_(listener_index),
      client_(std::move(client)),
      slot_(std::move(slot)),
      id_(std::move(id)) {
  tls_ = client_.tls();
  listener_stats_ = worker_.view()->stats->listeners[listener_index_];
  worker_.link(this);
}

H2Session::~H2Session() {
  if (ng_ != nullptr) nghttp2_session_del(ng_);
  if (in_) worker_.release_buffer(std::move(in_));
  worker_.unlink(this);
}

void H2Session::start(std::string_view early) {
  const auto& lim = worker_.view()->snapshot->listeners[listener_index_].config->limits;
  nghttp2_option* opt = h2::new_options();
  nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
  nghttp2_session_server_new3(&ng_, server_callbacks(), this, opt, h2::memory());
  nghttp2_option_del(opt);
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, lim.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(kStreamWindow)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, lim.max_request_header_bytes},
      {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 16384},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
  };
  nghttp2_submit_settings(ng_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(ng_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  in_ = worker_.acquire_buffer();
  idle_since_ = worker_.now();
  control_window_ = worker_.now();
  if (!early.empty() && !feed(reinterpret_cast<const uint8_t*>(early.data()), early.size())) {
    return;
  }
  flush();
  read();
}

// --- the I/O loop's hooks (h2/h2_io.h) ----------------------------------------------------------

bool H2Session::io_received(ssize_t n) {
  if (n < 0) {
    if (logs::proxy().should_log(spdlog::level::debug)) {
      logs::proxy().debug("HTTP/2 from {}: {}", id_.ip, nghttp2_strerror(static_cast<int>(n)));
    }
    // A protocol error or a flood (ours or nghttp2's): GOAWAY with a code that says which, if
    // nghttp2 has not queued one itself, then close once it is written.
    if (!going_away_) {
      const bool abuse = n == NGHTTP2_ERR_FLOODED || n == NGHTTP2_ERR_CALLBACK_FAILURE ||
                         n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS;
      if (n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS)
        refuse(NGHTTP2_ENHANCE_YOUR_CALM, "CONTINUATION flood");
      nghttp2_session_terminate_session(ng_,
                                        abuse ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
    }
    going_away_ = true;
    flush();
    if (!writing()) close_now();
    return false;
  }
  return !closed_;
}

// The streams' responses of one turn of the event loop went out: the streams waiting for that
// refill, queued ones start, and a finished connection closes.
void H2Session::io_flushed() {
  run_resumes();
  run_starts();
  maybe_close();
}

// A client that stops reading holds a write for at most the listener's idle_timeout (the
// sweep closes it).
void H2Session::io_writing(bool on) {
  write_deadline_ =
      on ? worker_.now() +
               worker_.view()->snapshot->listeners[listener_index_].config->limits.idle_timeout
         : Clock::time_point::max();
}

void H2Session::io_written() {
  if (going_away_ && !writing()) close_now();
}

void H2Session::resume_after_send(std::shared_ptr<H2Stream> stream) {
  resumes_.push_back(std::move(stream));
}

// --- requests in flight -------------------------------------------------------------------------

bool H2Session::claim_request(H2Stream* stream) {
  const auto& lim = worker_.view()->snapshot->listeners[listener_index_].config->limits;
  if (in_flight_ < lim.max_requests_in_flight && queue_.empty()) {
    ++in_flight_;
    return true;
  }
  if (std::find(queue_.begin(), queue_.end(), stream) == queue_.end()) queue_.push_back(stream);
  return false;
}

void H2Session::release_request(H2Stream*) {
  if (in_flight_ > 0) --in_flight_;
  if (!queue_.empty()) flush_soon();  // the next one starts after the current handler
}

void H2Session::unqueue(H2Stream* stream) { std::erase(queue_, stream); }

// Queued streams start in order as slots free up (outside nghttp2's callbacks).
void H2Session::run_starts() {
  const auto& lim = worker_.view()->snapshot->listeners[listener_index_].config->limits;
  while (!queue_.empty() && in_flight_ < lim.max_requests_in_flight && !closed_) {
    H2Stream* next = queue_.front();
    queue_.erase(queue_.begin());
    ++in_flight_;
    next->start_claimed();
  }
}

void H2Session::run_resumes() {
  while (!resumes_.empty()) {
    auto batch = std::move(resumes_);
    resumes_.clear();
    for (auto& s : batch) {
      if (!s->closed()) s->resume_attempt();
    }
  }
}

void H2Session::maybe_close() {
  if (closed_ || writing()) return;
  if (nghttp2_session_want_read(ng_) == 0 && nghttp2_session_want_write(ng_) == 0) close_now();
}

void H2Session::refuse(uint32_t error_code, const char* why) {
  if (going_away_) return;
  logs::warn_every(logs::proxy(), logs::Reason::kH2Abuse, "HTTP/2 client {} closed: {}", id_.ip,
                   why);
  going_away_ = true;
  nghttp2_session_terminate_session(ng_, error_code);
}

void H2Session::close_now() {
  if (closed_) return;
  closed_ = true;
  auto streams = std::move(streams_);
  streams_.clear();
  queue_.clear();
  for (auto& s : streams) s->on_closed();
  resumes_.clear();
  error_code ignored;
  client_.close(ignored);
}

// --- the connection's life ---------------------------------------------------------------------

void H2Session::on_sweep(Clock::time_point now) {
  if (closed_) return;
  const auto& lim = worker_.view()->snapshot->listeners[listener_index_].config->limits;
  if (now >= write_deadline_) return close_now();  // the client stopped reading
  if (streams_.empty()) {
    if (now - idle_since_ >= lim.idle_timeout) {
      going_away_ = true;
      nghttp2_session_terminate_session(ng_, NGHTTP2_NO_ERROR);
      flush();
      if (!writing()) close_now();
    }
    return;
  }
  // Streams without progress for idle_timeout are reset; copy: on_sweep may close them.
  auto streams = streams_;
  for (auto& s : streams) s->on_sweep(now);
  flush();
}

void H2Session::on_drain() {
  if (closed_ || going_away_) return;
  // GOAWAY for new streams; the open ones finish, then nghttp2 stops wanting to read.
  nghttp2_submit_goaway(ng_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(ng_),
                        NGHTTP2_NO_ERROR, nullptr, 0);
  nghttp2_session_terminate_session(ng_, NGHTTP2_NO_ERROR);
  going_away_ = true;
  flush();
}

void H2Session::abort() { close_now(); }

H2Stream* H2Session::stream_of(int32_t id) {
  return static_cast<H2Stream*>(nghttp2_session_get_stream_user_data(ng_, id));
}

// --- nghttp2 callbacks -------------------------------------------------------------------------

int H2Session::on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  auto* self = self_of(user);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  if (self->going_away_) {
    nghttp2_submit_rst_stream(self->ng_, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                              NGHTTP2_REFUSED_STREAM);
    return 0;
  }
  auto stream = std::make_shared<H2Stream>(*self, self->shared_from_this(), frame->hd.stream_id);
  nghttp2_session_set_stream_user_data(self->ng_, frame->hd.stream_id, stream.get());
  self->streams_.push_back(std::move(stream));
  ++self->streams_opened_;
  return 0;
}

int H2Session::on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                         size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                         void* user) {
  auto* self = self_of(user);
  H2Stream* s = self->stream_of(frame->hd.stream_id);
  if (s == nullptr) return 0;
  if (!s->add_header(std::string_view(reinterpret_cast<const char*>(name), namelen),
                     std::string_view(reinterpret_cast<const char*>(value), valuelen))) {
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // resets the stream
  }
  return 0;
}

int H2Session::on_begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* user) {
  auto* self = self_of(user);
  if (hd->type == NGHTTP2_HEADERS) {
    self->continuations_ = 0;
  } else if (hd->type == NGHTTP2_CONTINUATION && ++self->continuations_ > kMaxContinuations) {
    self->refuse(NGHTTP2_ENHANCE_YOUR_CALM, "CONTINUATION flood");
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  if ((hd->type == NGHTTP2_SETTINGS || hd->type == NGHTTP2_PING) &&
      (hd->flags & NGHTTP2_FLAG_ACK) == 0) {
    const auto now = self->worker_.now();
    if (now - self->control_window_ >= std::chrono::seconds(1)) {
      self->control_window_ = now;
      self->control_frames_ = 0;
    }
    if (++self->control_frames_ > kMaxControlFramesPerSecond) {
      self->refuse(NGHTTP2_ENHANCE_YOUR_CALM, "SETTINGS or PING flood");
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
  }
  return 0;
}

int H2Session::on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  auto* self = self_of(user);
  const int32_t id = frame->hd.stream_id;
  H2Stream* s = id != 0 ? self->stream_of(id) : nullptr;
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
      if (s == nullptr) break;
      if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        s->on_head((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0);
      } else if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
        s->on_trailers();
      }
      break;
    case NGHTTP2_DATA:
      if (s != nullptr && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) s->on_end_stream();
      break;
    default:
      break;
  }
  return 0;
}

int H2Session::on_data_chunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                             void* user) {
  auto* self = self_of(user);
  if (H2Stream* s = self->stream_of(id)) {
    s->on_data(data, len);
  } else {
    nghttp2_session_consume(self->ng_, id, len);  // a stream already answered and gone
  }
  return 0;
}

// A stream that ends before its response began counts against the connection's reset budget,
// whoever reset it: the client (rapid reset, CVE-2023-44487) or switchyard made to by the
// client's frames (a WINDOW_UPDATE that overflows, DATA past content-length or on a closed
// half: "MadeYouReset", CVE-2025-8671). Either way the client opened a stream, perhaps made an
// endpoint work on it, and freed its slot at once. At kPrematureResetFloor such streams, when
// they are at least half of all it opened, the connection gets GOAWAY ENHANCE_YOUR_CALM
// (Envoy's rule), so the endpoint work one connection can cause this way is bounded.
int H2Session::on_stream_close(nghttp2_session*, int32_t id, uint32_t, void* user) {
  auto* self = self_of(user);
  H2Stream* s = self->stream_of(id);
  if (s == nullptr) return 0;
  if (!s->response_started()) {
    ++self->premature_resets_;
    if (self->premature_resets_ >= kPrematureResetFloor &&
        self->premature_resets_ * 2 >= self->streams_opened_) {
      self->refuse(NGHTTP2_ENHANCE_YOUR_CALM,
                   "too many streams reset before their response (rapid reset)");
    }
  }
  nghttp2_session_set_stream_user_data(self->ng_, id, nullptr);
  for (size_t i = 0; i < self->streams_.size(); ++i) {
    if (self->streams_[i].get() != s) continue;
    auto keep = std::move(self->streams_[i]);
    self->streams_[i] = std::move(self->streams_.back());
    self->streams_.pop_back();
    keep->on_closed();
    break;
  }
  if (self->streams_.empty()) self->idle_since_ = self->worker_.now();
  return 0;
}

namespace {

nghttp2_session_callbacks* make_server_callbacks() {
  nghttp2_session_callbacks* cb = nullptr;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &H2Session::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, &H2Session::on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &H2Session::on_frame_recv);
  nghttp2_session_callbacks_set_on_begin_frame_callback(cb, &H2Session::on_begin_frame);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &H2Session::on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &H2Session::on_stream_close);
  return cb;
}

nghttp2_session_callbacks* server_callbacks() {
  static nghttp2_session_callbacks* const cb = make_server_callbacks();  // shared, read-only
  return cb;
}

}  // namespace

}  // namespace switchyard::proxy
