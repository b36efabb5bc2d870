#include "upstream/h2_exchange.h"

#include <cstring>

#include "h2/h2_wire.h"
#include "switchyard/http/h2_fields.h"
#include "upstream/upstream_attempt.h"
#include "upstream/upstream_pools.h"

namespace switchyard::proxy {

using Failure = TryFailure;

void H2Exchange::begin() {
  store_.clear();
  spans_.clear();
  trailers_from_ = SIZE_MAX;
  head_ready_ = ended_ = closed_ = want_body_ = overflow_ = false;
  error_ = 0;
  handed_ = 0;
  fill_ = 0;
  id_ = 0;
  a_.response_buffer();
  const auto* ep = a_.pick_.ref->endpoint;
  const auto& up = a_.req_.balancer->config().upstream;
  keep_ = a_.owner_.lock();  // the connection holds only a plain pointer to this exchange
  conn_ = UpstreamPools::of(a_.worker_)
              .h2.acquire(ep->id, ep->address, ep->address_text, a_.tls_, up.connect_timeout,
                          up.idle_timeout, refused_on_);
  if (conn_->ready()) return submit();
  conn_->wait(this);
}

void H2Exchange::h2_ready(bool ok) {
  auto keep = a_.owner_.lock();
  if (!ok) {
    a_.endpoint_stats().connect_failures.add(0);
    return a_.fail(asio::error::connection_refused, Failure::kConnect);
  }
  a_.req_.balancer->connect_result(a_.pick_, true);  // it waited for a connect of its own pool
  submit();
}

void H2Exchange::submit() {
  const auto& req = a_.req_;
  auto& fields = http::H2Fields::scratch();
  fields.add_request(*req.head, *req.forward, req.origin_needs_slash,
                     a_.pick_.ref->endpoint->address_text, a_.tls_ != nullptr ? "https" : "http");
  piece_ = offset_ = 0;
  const int32_t id = conn_->submit(fields.nv(), fields.size(), req.has_body, this);
  if (id < 0) return a_.fail({}, Failure::kOther);
  id_ = id;
  a_.head_pending_ = false;
  a_.reached_ = true;   // it may be processed from here (a refusal says otherwise)
  conn_->flush_soon();  // the body provider asks the sink for pieces when it needs them
}

void H2Exchange::send_body() {  // the stream's body provider takes the pieces
  piece_ = 0;
  offset_ = 0;
  // An endpoint that never opens its window must not hold the request forever.
  if (!a_.body_done_ && !a_.timer_armed_) a_.arm_timer(a_.exchange_deadline(Clock::now()));
  conn_->resume_body(id_);
}

// nghttp2 pulls the request body: the sink's pieces (or the kept copy, replaying), then the
// end of the stream, with trailers when the client sent some.
ssize_t H2Exchange::h2_read_body(uint8_t* buf, size_t length, uint32_t* flags) {
  size_t n = 0;
  bool drained = false;
  if (a_.replaying_) {
    const std::string& replay = a_.replay_;
    n = std::min(length, replay.size() - offset_);
    std::memcpy(buf, replay.data() + offset_, n);
    offset_ += n;
    drained = offset_ == replay.size();
    if (drained && !a_.body_done_) {
      // The kept part is sent again; the rest of the body still comes from the sink (every
      // piece it handed over so far is in the replay).
      a_.replaying_ = false;
      a_.pieces_ = nullptr;
    }
  } else {
    n = h2::copy_pieces(a_.pieces_, piece_, offset_, buf, length, &drained);
  }
  if (n > 0) a_.progressed();
  if (!drained) return static_cast<ssize_t>(n);
  if (a_.replaying_ || a_.body_done_) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    const auto* pieces = a_.pieces_;
    if (!a_.replaying_ && pieces != nullptr && pieces->trailers != nullptr &&
        !pieces->trailers->items.empty()) {
      auto& trailers = http::H2Fields::scratch();
      trailers.add_trailers(*pieces->trailers);
      if (trailers.size() > 0) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        nghttp2_submit_trailer(conn_->native(), id_, trailers.nv(), trailers.size());
      }
    }
    a_.request_sent();
    return static_cast<ssize_t>(n);
  }
  if (!want_body_) {
    want_body_ = true;
    conn_->note(this);
  }
  return n > 0 ? static_cast<ssize_t>(n) : static_cast<ssize_t>(NGHTTP2_ERR_DEFERRED);
}

// --- what the connection recorded ---------------------------------------------------------------

void H2Exchange::h2_header(std::string_view name, std::string_view value) {
  if (store_.size() + name.size() + value.size() > kBodyBufferSize) {
    overflow_ = true;  // nghttp2 bounds the list by our SETTINGS; this is the backstop
    return;
  }
  if (spans_.capacity() == 0) {  // one allocation each for a usual head
    spans_.reserve(16);
    store_.reserve(512);
  }
  spans_.push_back(Span{static_cast<uint32_t>(store_.size()), static_cast<uint32_t>(name.size()),
                        static_cast<uint32_t>(store_.size() + name.size()),
                        static_cast<uint32_t>(value.size())});
  store_.append(name).append(value);
}

void H2Exchange::h2_headers_end() {
  a_.progressed();
  if (head_ready_) return;  // trailers: kept after the head's spans
  // An interim response (1xx) is dropped; the final head follows.
  if (!spans_.empty()) {
    const auto& s = spans_.front();
    std::string_view value = value_of(s);
    if (name_of(s) == ":status" && !value.empty() && value[0] == '1') {
      spans_.clear();
      store_.clear();
      return;
    }
  }
  head_ready_ = true;
  trailers_from_ = spans_.size();
}

void H2Exchange::h2_data(const uint8_t* data, size_t size) {
  if (fill_ + size > kBodyBufferSize) {
    overflow_ = true;  // past the window we gave
    return;
  }
  std::memcpy(a_.buffer_.get() + fill_, data, size);
  fill_ += size;
  a_.progressed();
}

void H2Exchange::h2_end_stream() { ended_ = true; }

void H2Exchange::h2_closed(uint32_t error_code) {
  closed_ = true;
  error_ = error_code;
}

// --- acting on it ------------------------------------------------------------------------------

void H2Exchange::h2_deliver() {
  if (!a_.current(this)) return;
  auto keep = a_.owner_.lock();
  const uint64_t generation = a_.generation_;
  auto moved_on = [&] { return generation != a_.generation_ || !a_.active(); };
  if (want_body_) {
    want_body_ = false;
    a_.want_body();
    if (generation != a_.generation_) return;
  }
  if (overflow_) return a_.fail({}, Failure::kInvalid);
  if (head_ready_ && !a_.head_accepted()) {
    on_head();
    if (moved_on()) return;  // retried on status, or failed
  }
  if (a_.head_accepted()) {
    hand();
    if (moved_on() || a_.phase_ == UpstreamAttempt::Phase::kDone) return;
  }
  if (!closed_) return;
  if (ended_ && error_ == NGHTTP2_NO_ERROR && a_.head_accepted()) return;  // handing the rest
  if (error_ == NGHTTP2_REFUSED_STREAM && !a_.head_accepted()) {
    a_.reached_ = false;  // RFC 9113 §8.7: not processed
    if (a_.resend_unprocessed()) {
      refused_on_ = conn_.get();  // another connection (a GOAWAY's takes no stream anyway)
      return reconnect();
    }
  }
  a_.fail(asio::error::connection_reset, Failure::kClosed);
}

void H2Exchange::on_head() {
  auto& head = a_.head_;
  head = http::ResponseHead{};
  head.fields.items.reserve(trailers_from_);
  head.version = 20;
  for (size_t i = 0; i < trailers_from_ && i < spans_.size(); ++i) {
    std::string_view name = name_of(spans_[i]);
    std::string_view value = value_of(spans_[i]);
    if (name == ":status") {
      unsigned status = 0;
      for (char c : value) status = status * 10 + static_cast<unsigned>(c - '0');
      head.status = status;
      continue;
    }
    if (!name.empty() && name[0] == ':') continue;
    http::Field f{name, value, http::classify_field(name)};
    if (f.id == http::FieldId::kContentLength) {
      uint64_t n = 0;
      for (char c : value) n = n * 10 + static_cast<uint64_t>(c - '0');  // nghttp2 checked it
      head.content_length = n;
    }
    head.fields.items.push_back(f);
  }
  const unsigned status = head.status;
  head.has_body = a_.req_.head->method != http::Method::kHead && status != 204 && status != 304;
  head.keep_alive = true;
  a_.endpoint_stats().upstream_requests.add(status);
  if (a_.accept_final_head()) a_.got_bytes_ = true;
}

// Hands the sink what arrived (at most one buffer; the window keeps it so) with the head
// first, then body pieces as the sink takes them; the end of the stream brings the trailers.
void H2Exchange::hand() {
  if (handed_ > 0) return;  // the sink still holds the last pieces
  const bool last = ended_;
  if (a_.head_out() && fill_ == 0 && !last) return;
  auto& pieces = a_.pieces_out_;
  pieces.clear();
  pieces.trailers = nullptr;
  if (fill_ > 0) {
    pieces.data[0] = std::string_view(a_.buffer_.get(), fill_);
    pieces.count = 1;
    pieces.bytes = fill_;
    handed_ = fill_;
  }
  if (last) {
    auto& trailers = a_.trailers_;
    trailers.clear();
    for (size_t i = trailers_from_; i < spans_.size(); ++i) {
      std::string_view name = name_of(spans_[i]);
      if (!name.empty() && name[0] == ':') continue;
      trailers.items.push_back(http::Field{name, value_of(spans_[i]), http::classify_field(name)});
    }
    pieces.trailers = &trailers;
  }
  a_.respond(last);
}

void H2Exchange::resume() {
  if (handed_ > 0) {
    conn_->consume(id_, handed_);
    char* buffer = a_.buffer_.get();
    std::memmove(buffer, buffer + handed_, fill_ - handed_);
    fill_ -= handed_;
    handed_ = 0;
  }
  if (fill_ > 0 || ended_) return hand();
  if (closed_) conn_->note(this);  // reset mid-body: say so
}

void H2Exchange::release() {
  if (!conn_) return;
  // Callers hold the owner themselves (a handler's or the sink's own reference), so letting go
  // of this one never ends the attempt under them.
  auto keep = std::move(keep_);
  if (handed_ > 0 || fill_ > 0) conn_->consume(id_, fill_);
  conn_->cancel(id_, this);
  conn_.reset();
  id_ = 0;
  handed_ = 0;
  fill_ = 0;
}

}  // namespace switchyard::proxy
