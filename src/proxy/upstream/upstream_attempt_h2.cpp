// UpstreamAttempt to an HTTP/2 endpoint (clusters[].protocol h2c or h2): one stream on a
// pooled multiplexed connection (H2Pool) per try. Picking, retries, the route timeout, load
// reports and the breaker are the HTTP/1.1 path's own (upstream_attempt.cpp); only the wire
// differs. The response body comes in DATA frames into the attempt's body buffer; the stream's
// window (one buffer) is given back when the sink has written what it was handed, so a slow
// client holds the endpoint, never switchyard's memory. A stream the endpoint refused (GOAWAY
// past it, or REFUSED_STREAM) was never processed and goes again on a fresh connection.

#include <cstring>

#include "h2/h2_wire.h"
#include "switchyard/common/logging.h"
#include "switchyard/http/h2_fields.h"
#include "switchyard/http/response_rules.h"
#include "upstream/upstream_attempt.h"

namespace switchyard::proxy {

using boost::system::error_code;

void UpstreamAttempt::h2_try() {
  h2_mode_ = true;
  reused_ = false;
  h2_store_.clear();
  h2_spans_.clear();
  h2_trailers_from_ = SIZE_MAX;
  h2_head_ready_ = h2_ended_ = h2_closed_ = h2_want_body_ = h2_overflow_ = false;
  h2_error_ = 0;
  h2_handed_ = 0;
  h2_id_ = 0;
  head_delivered_ = head_parsed_ = broken_after_head_ = upstream_done_ = false;
  trailers_.clear();
  if (!buffer_) buffer_ = worker_.acquire_buffer();
  fill_ = parsed_ = 0;
  const auto* ep = pick_.ref->endpoint;
  const auto& up = req_.balancer->config().upstream;
  h2_keep_ = owner_.lock();  // the connection holds only a plain pointer to this attempt
  h2_ = worker_.h2_pool().acquire(ep->id, ep->address, ep->address_text, tls_, up.connect_timeout,
                                  up.idle_timeout, refused_on_);
  if (h2_->ready()) return h2_submit();
  connecting_ = true;
  h2_->wait(this);
}

void UpstreamAttempt::h2_ready(bool ok) {
  auto keep = owner_.lock();
  connecting_ = false;
  if (!ok) {
    endpoint_stats().connect_failures.add(0);
    return fail(asio::error::connection_refused, Failure::kConnect);
  }
  req_.balancer->connect_result(pick_, true);  // it waited for a connect of its own pool
  h2_submit();
}

void UpstreamAttempt::h2_submit() {
  auto& fields = http::H2Fields::scratch();
  fields.add_request(*req_.head, *req_.forward, req_.origin_needs_slash,
                     pick_.ref->endpoint->address_text, tls_ != nullptr ? "https" : "http");
  h2_piece_ = h2_offset_ = 0;
  const int32_t id = h2_->submit(fields.nv(), fields.size(), req_.has_body, this);
  if (id < 0) return fail({}, Failure::kOther);
  h2_id_ = id;
  head_pending_ = false;
  reached_ = true;    // it may be processed from here (a refusal says otherwise)
  h2_->flush_soon();  // the body provider asks the sink for pieces when it needs them
}

// nghttp2 pulls the request body: the sink's pieces (or the kept copy, replaying), then the
// end of the stream, with trailers when the client sent some.
ssize_t UpstreamAttempt::h2_read_body(uint8_t* buf, size_t length, uint32_t* flags) {
  size_t n = 0;
  bool drained = false;
  if (replaying_) {
    n = std::min(length, replay_.size() - h2_offset_);
    std::memcpy(buf, replay_.data() + h2_offset_, n);
    h2_offset_ += n;
    drained = h2_offset_ == replay_.size();
    if (drained && !body_done_) {
      // The kept part is sent again; the rest of the body still comes from the sink (every
      // piece it handed over so far is in replay_).
      replaying_ = false;
      pieces_ = nullptr;
    }
  } else {
    n = h2::copy_pieces(pieces_, h2_piece_, h2_offset_, buf, length, &drained);
  }
  if (n > 0) progressed();
  if (!drained) return static_cast<ssize_t>(n);
  if (replaying_ || body_done_) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!replaying_ && pieces_ != nullptr && pieces_->trailers != nullptr &&
        !pieces_->trailers->items.empty()) {
      auto& trailers = http::H2Fields::scratch();
      trailers.add_trailers(*pieces_->trailers);
      if (trailers.size() > 0) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        nghttp2_submit_trailer(h2_->native(), h2_id_, trailers.nv(), trailers.size());
      }
    }
    // The request is complete: the route timeout starts now.
    arm_timer(exchange_deadline(Clock::now()));
    return static_cast<ssize_t>(n);
  }
  if (!h2_want_body_) {
    h2_want_body_ = true;
    h2_->note(this);
  }
  return n > 0 ? static_cast<ssize_t>(n) : static_cast<ssize_t>(NGHTTP2_ERR_DEFERRED);
}

// --- what the connection recorded ---------------------------------------------------------------

void UpstreamAttempt::h2_header(std::string_view name, std::string_view value) {
  if (h2_store_.size() + name.size() + value.size() > kBodyBufferSize) {
    h2_overflow_ = true;  // nghttp2 bounds the list by our SETTINGS; this is the backstop
    return;
  }
  if (h2_spans_.capacity() == 0) {  // one allocation each for a usual head
    h2_spans_.reserve(16);
    h2_store_.reserve(512);
  }
  h2_spans_.push_back(H2Span{
      static_cast<uint32_t>(h2_store_.size()), static_cast<uint32_t>(name.size()),
      static_cast<uint32_t>(h2_store_.size() + name.size()), static_cast<uint32_t>(value.size())});
  h2_store_.append(name).append(value);
}

void UpstreamAttempt::h2_headers_end() {
  progressed();
  if (h2_head_ready_) return;  // trailers: kept after the head's spans
  // An interim response (1xx) is dropped; the final head follows.
  if (!h2_spans_.empty()) {
    const auto& s = h2_spans_.front();
    std::string_view name(h2_store_.data() + s.name, s.name_len);
    std::string_view value(h2_store_.data() + s.value, s.value_len);
    if (name == ":status" && !value.empty() && value[0] == '1') {
      h2_spans_.clear();
      h2_store_.clear();
      return;
    }
  }
  h2_head_ready_ = true;
  h2_trailers_from_ = h2_spans_.size();
}

void UpstreamAttempt::h2_data(const uint8_t* data, size_t size) {
  if (fill_ + size > kBodyBufferSize) {
    h2_overflow_ = true;  // past the window we gave
    return;
  }
  std::memcpy(buffer_.get() + fill_, data, size);
  fill_ += size;
  progressed();
}

void UpstreamAttempt::h2_end_stream() { h2_ended_ = true; }

void UpstreamAttempt::h2_closed(uint32_t error_code) {
  h2_closed_ = true;
  h2_error_ = error_code;
}

// --- acting on it ------------------------------------------------------------------------------

void UpstreamAttempt::h2_deliver() {
  if (!active_ || !h2_mode_) return;
  auto keep = owner_.lock();
  const uint64_t generation = generation_;
  if (h2_want_body_) {
    h2_want_body_ = false;
    disarm_timer();  // waiting for the client is the client's idle_timeout, not ours
    sink_->want_request_body();
    if (generation != generation_) return;
  }
  if (h2_overflow_) return fail({}, Failure::kInvalid);
  if (h2_head_ready_ && !head_parsed_) {
    h2_on_head();
    if (generation != generation_ || !active_) return;  // retried on status, or failed
  }
  if (head_parsed_) {
    h2_hand();
    if (generation != generation_ || !active_ || upstream_done_) return;
  }
  if (!h2_closed_) return;
  if (h2_ended_ && h2_error_ == NGHTTP2_NO_ERROR && head_parsed_) return;  // handing the rest
  if (h2_error_ == NGHTTP2_REFUSED_STREAM && !head_parsed_) {
    reached_ = false;  // RFC 9113 §8.7: not processed
    if (h2_retry_unprocessed()) return;
  }
  fail(asio::error::connection_reset, Failure::kClosed);
}

// GOAWAY past this stream, or REFUSED_STREAM: the endpoint did not process it, so it may go
// again whatever its method (RFC 9113 §8.7), on another connection (the one that refused it is
// avoided; a GOAWAY's takes no new stream anyway). It counts as a retry: within the retry
// budget, and at most twice per request, so an endpoint that refuses everything cannot keep a
// request bouncing.
bool UpstreamAttempt::h2_retry_unprocessed() {
  constexpr uint32_t kMaxRefusals = 2;
  if (refusals_ >= kMaxRefusals || !can_resend() || !take_retry_token()) return false;
  ++refusals_;
  refused_on_ = h2_.get();
  if (req_.has_body && body_touched_) replaying_ = true;
  ++generation_;  // nothing of the refused stream's may touch the next one
  h2_release();
  h2_try();
  return true;
}

void UpstreamAttempt::h2_on_head() {
  head_ = http::ResponseHead{};
  head_.fields.items.reserve(h2_trailers_from_);
  head_.version = 20;
  for (size_t i = 0; i < h2_trailers_from_ && i < h2_spans_.size(); ++i) {
    const auto& s = h2_spans_[i];
    std::string_view name(h2_store_.data() + s.name, s.name_len);
    std::string_view value(h2_store_.data() + s.value, s.value_len);
    if (name == ":status") {
      unsigned status = 0;
      for (char c : value) status = status * 10 + static_cast<unsigned>(c - '0');
      head_.status = status;
      continue;
    }
    if (!name.empty() && name[0] == ':') continue;
    http::Field f{name, value, http::classify_field(name)};
    if (f.id == http::FieldId::kContentLength) {
      uint64_t n = 0;
      for (char c : value) n = n * 10 + static_cast<uint64_t>(c - '0');  // nghttp2 checked it
      head_.content_length = n;
    }
    head_.fields.items.push_back(f);
  }
  const unsigned status = head_.status;
  head_.has_body = req_.head->method != http::Method::kHead && status != 204 && status != 304;
  head_.keep_alive = true;
  endpoint_stats().upstream_requests.add(status);
  if (accept_final_head()) got_bytes_ = true;
}

// Hands the sink what arrived (at most one buffer; the window keeps it so) with the head
// first, then body pieces as the sink takes them; the end of the stream brings the trailers.
void UpstreamAttempt::h2_hand() {
  if (h2_handed_ > 0) return;  // the sink still holds the last pieces
  const bool last = h2_ended_;
  if (head_delivered_ && fill_ == 0 && !last) return;
  pieces_out_.clear();
  pieces_out_.trailers = nullptr;
  if (fill_ > 0) {
    pieces_out_.data[0] = std::string_view(buffer_.get(), fill_);
    pieces_out_.count = 1;
    pieces_out_.bytes = fill_;
    h2_handed_ = fill_;
  }
  if (last) {
    trailers_.clear();
    for (size_t i = h2_trailers_from_; i < h2_spans_.size(); ++i) {
      const auto& s = h2_spans_[i];
      std::string_view name(h2_store_.data() + s.name, s.name_len);
      std::string_view value(h2_store_.data() + s.value, s.value_len);
      if (!name.empty() && name[0] == ':') continue;
      trailers_.items.push_back(http::Field{name, value, http::classify_field(name)});
    }
    pieces_out_.trailers = &trailers_;
    upstream_finished();
  }
  if (!head_delivered_) {
    head_delivered_ = true;
    return sink_->on_response_head(head_, pieces_out_, last);
  }
  sink_->on_response_body(pieces_out_, last);
}

void UpstreamAttempt::h2_resume() {
  if (h2_handed_ > 0) {
    h2_->consume(h2_id_, h2_handed_);
    std::memmove(buffer_.get(), buffer_.get() + h2_handed_, fill_ - h2_handed_);
    fill_ -= h2_handed_;
    h2_handed_ = 0;
  }
  if (fill_ > 0 || h2_ended_) return h2_hand();
  if (h2_closed_) h2_->note(this);  // reset mid-body: say so
}

void UpstreamAttempt::h2_release() {
  if (!h2_) return;
  // Callers hold the owner themselves (a handler's or the sink's own reference), so letting go
  // of this one never ends the attempt under them.
  auto keep = std::move(h2_keep_);
  if (h2_handed_ > 0 || fill_ > 0) h2_->consume(h2_id_, fill_);
  h2_->cancel(h2_id_, this);
  h2_.reset();
  h2_id_ = 0;
  h2_handed_ = 0;
  fill_ = 0;
}

void UpstreamAttempt::drop_connection() {
  conn_.reset();
  h2_release();
}

}  // namespace switchyard::proxy
