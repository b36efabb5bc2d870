#include "upstream/http1_exchange.h"

#include <boost/asio/write.hpp>
#include <cstring>

#include "switchyard/common/asio_endpoint.h"
#include "switchyard/common/logging.h"
#include "upstream/upstream_attempt.h"
#include "upstream/upstream_pools.h"

namespace switchyard::proxy {
namespace {

using boost::system::error_code;
using Failure = TryFailure;

// A Content-Length body with at least this much still to come after the first read is
// spliced (when the sink allows it): below it, the pipe round trips cost more than the copies.
constexpr uint64_t kSpliceMinBytes = kBodyBufferSize;

bool closed(const error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted ||
         ec == asio::error::not_connected;
}

Failure failure_of(const error_code& ec) { return closed(ec) ? Failure::kClosed : Failure::kOther; }

http::http1::BodyMode mode_for(http::Framing framing) {
  switch (framing) {
    case http::Framing::kContentLength:
      return http::http1::BodyMode::kLength;
    case http::Framing::kChunked:
      return http::http1::BodyMode::kChunked;
    default:
      return http::http1::BodyMode::kNone;
  }
}

}  // namespace

Http1Exchange::~Http1Exchange() { end_splice(false); }

// --- connecting --------------------------------------------------------------------------------

void Http1Exchange::begin() {
  connecting_ = read_pending_ = write_pending_ = connect_timed_out_ = false;
  // A request that must not be sent twice only goes on a pooled connection that is known to
  // be open (a peek), so that it is never lost to an idle-close race.
  const auto& req = a_.req_;
  const bool careful = !http::idempotent(req.head->method) && !req.route->retries.non_idempotent;
  conn_ =
      UpstreamPools::of(a_.worker_).http1.take(a_.pick_.ref->endpoint->id, careful, a_.tls_.get());
  reused_ = conn_ != nullptr;
  if (conn_) return begin_send();
  connect();
}

void Http1Exchange::connect() {
  conn_ = std::make_unique<UpstreamConnection>(a_.worker_.ioc());
  conn_->endpoint_id = a_.pick_.ref->endpoint->id;
  conn_->tls = a_.tls_;
  reused_ = false;
  auto connect_deadline = Clock::now() + a_.req_.balancer->config().upstream.connect_timeout;
  const bool route_sooner = a_.timer_armed_ && a_.deadline_ < connect_deadline;
  if (!route_sooner) a_.arm_timer(connect_deadline, /*for_connect=*/true);
  connecting_ = true;
  conn_->socket().async_connect(to_endpoint(a_.pick_.ref->endpoint->address),
                                [this, keep = a_.owner_.lock(), g = a_.generation_](error_code ec) {
                                  if (g != a_.generation_) return;
                                  connecting_ = false;
                                  on_connect(ec);
                                });
}

error_code Http1Exchange::connect_outcome(error_code ec) {
  if (connect_timed_out_) {
    connect_timed_out_ = false;
    a_.timed_out_ = false;  // connect_timeout is a connect failure, not the route's timeout
    if (!ec) ec = asio::error::timed_out;
  }
  if (ec) a_.endpoint_stats().connect_failures.add(0);
  return ec;
}

void Http1Exchange::on_connect(error_code ec) {
  if ((ec = connect_outcome(ec))) {
    if (logs::proxy().should_log(spdlog::level::debug)) {
      logs::proxy().debug("connect to {} failed: {}", a_.endpoint()->address_text, ec.message());
    }
    return a_.fail(ec, Failure::kConnect);
  }
  conn_->socket().set_option(tcp::no_delay(true), ec);
  if (a_.tls_ != nullptr) return handshake();
  on_connected();
}

// Upstream TLS: the handshake is part of connecting (under connect_timeout; a failure is a
// connect failure, retried like one).
void Http1Exchange::handshake() {
  SSL* ssl = a_.tls_->new_ssl(tls::host_of(a_.pick_.ref->endpoint->address_text));
  if (ssl == nullptr) return a_.fail(asio::error::no_memory, Failure::kConnect);
  conn_->stream.use_tls(ssl);
  connecting_ = true;
  conn_->stream.async_handshake(asio::ssl::stream_base::client,
                                [this, keep = a_.owner_.lock(), g = a_.generation_](error_code ec) {
                                  if (g != a_.generation_) return;
                                  connecting_ = false;
                                  if ((ec = connect_outcome(ec))) {
                                    logs::warn_every(logs::proxy(), logs::Reason::kUpstreamTls,
                                                     "TLS handshake with {} failed: {}",
                                                     a_.endpoint()->address_text, ec.message());
                                    return a_.fail(ec, Failure::kConnect);
                                  }
                                  on_connected();
                                });
}

void Http1Exchange::on_connected() {
  a_.connected();
  begin_send();
}

// --- sending -----------------------------------------------------------------------------------

void Http1Exchange::begin_send() {
  const auto& req = a_.req_;
  http::http1::write_request_head(out_head_, *req.head, *req.forward, req.origin_needs_slash,
                                  a_.pick_.ref->endpoint->address_text);
  a_.head_pending_ = true;
  if (!req.has_body || a_.replaying_) return write();
  if (a_.pieces_ != nullptr) return write();  // a fresh connection for pieces not yet sent
  a_.sink_->want_request_body();
}

void Http1Exchange::send_body() { write(); }

void Http1Exchange::write() {
  const auto& req = a_.req_;
  framer_.reset(req.has_body ? mode_for(req.forward->framing) : http::http1::BodyMode::kNone);
  framer_.begin(a_.head_pending_ ? std::string_view(out_head_) : std::string_view());
  bool last = !req.has_body;
  const auto* pieces = a_.pieces_;
  if (a_.replaying_) {
    framer_.add(a_.replay_);
    last = true;
  } else if (req.has_body && pieces != nullptr) {
    for (size_t i = 0; i < pieces->count; ++i) framer_.add(pieces->data[i]);
    last = a_.body_done_;
  }
  if (last && framer_.mode() == http::http1::BodyMode::kChunked) {
    trailer_lines_.clear();
    if (!a_.replaying_ && pieces != nullptr && pieces->trailers != nullptr) {
      http::http1::write_trailers(trailer_lines_, *pieces->trailers);
    }
    framer_.finish(trailer_lines_);
  }
  // A stalled endpoint must not hold the request forever.
  if (!last && !a_.timer_armed_) a_.arm_timer(a_.exchange_deadline(Clock::now()));
  write_pending_ = true;
  asio::async_write(
      conn_->stream, iov_.fill(framer_),
      [this, keep = a_.owner_.lock(), g = a_.generation_, last](error_code ec, size_t bytes) {
        if (g != a_.generation_) return;
        write_pending_ = false;
        on_written(ec, bytes, last);
      });
}

void Http1Exchange::on_written(error_code ec, size_t bytes, bool last) {
  if (bytes > 0) a_.reached_ = true;
  a_.progressed();
  if (ec) return a_.fail(ec, failure_of(ec));
  a_.head_pending_ = false;
  if (!last) return a_.want_body();
  a_.request_sent();
  read_response_head();
}

// --- receiving ---------------------------------------------------------------------------------

void Http1Exchange::read_response_head() {
  a_.response_buffer();
  fill_ = 0;
  parsed_ = 0;
  scanned_ = 0;
  a_.pieces_out_.clear();
  a_.pieces_out_.trailers = &a_.trailers_;
  parser_.start(kBodyBufferSize, std::nullopt, a_.req_.head->method == http::Method::kHead);
  do_read_head();
}

void Http1Exchange::do_read_head() {
  read_pending_ = true;
  conn_->stream.async_read_some(
      asio::buffer(a_.buffer_.get() + fill_, kBodyBufferSize - fill_),
      [this, keep = a_.owner_.lock(), g = a_.generation_](error_code ec, size_t bytes) {
        if (g != a_.generation_) return;
        read_pending_ = false;
        on_head_read(ec, bytes);
      });
}

void Http1Exchange::on_head_read(error_code ec, size_t bytes) {
  if (ec) return a_.fail(ec, failure_of(ec));
  a_.got_bytes_ = true;
  a_.progressed();
  fill_ += bytes;
  const char* buffer = a_.buffer_.get();
  for (;;) {
    std::string_view rest(buffer + parsed_, fill_ - parsed_);
    size_t end = http::http1::find_head_end(rest, &scanned_);
    if (end == SIZE_MAX) return a_.fail({}, Failure::kInvalid);
    if (end == 0) {
      if (fill_ == kBodyBufferSize) return a_.fail({}, Failure::kInvalid);  // head too large
      return do_read_head();
    }
    std::string_view raw = rest.substr(0, end);
    if (http::has_obs_fold(raw) ||
        parser_.parse_head(raw, a_.head_) != http::http1::ParseStatus::kOk) {
      return a_.fail({}, Failure::kInvalid);
    }
    parsed_ += end;
    scanned_ = 0;
    const unsigned status = a_.head_.status;
    if (status >= 100 && status < 200 && status != 101) {
      // Interim responses (100, 103 Early Hints) are not forwarded; the final one follows.
      parser_.start(kBodyBufferSize, std::nullopt, a_.req_.head->method == http::Method::kHead);
      continue;
    }
    return on_response_head();
  }
}

void Http1Exchange::on_response_head() {
  const unsigned status = a_.head_.status;
  a_.endpoint_stats().upstream_requests.add(status);
  if (status == 101) {
    if (a_.req_.forward->upgrade.empty()) return a_.fail({}, Failure::kInvalid);  // not offered
    auto conn = std::move(conn_);
    return a_.upgraded(std::move(conn),
                       std::string_view(a_.buffer_.get() + parsed_, fill_ - parsed_));
  }
  if (!a_.accept_final_head()) return;
  parse_body();
}

void Http1Exchange::parse_body() {
  auto& pieces = a_.pieces_out_;
  // Until the head goes to the client, pieces accumulate (views into the buffer, which is not
  // compacted meanwhile): see the coalescing below.
  if (a_.head_out()) pieces.clear();
  http::http1::ParseStatus st = http::http1::ParseStatus::kOk;
  size_t used = parser_.parse_body(std::string_view(a_.buffer_.get() + parsed_, fill_ - parsed_),
                                   pieces, &st);
  parsed_ += used;
  if (st == http::http1::ParseStatus::kBad || st == http::http1::ParseStatus::kBodyLimit) {
    return a_.fail({}, Failure::kInvalid);
  }
  const bool last = parser_.done();
  if (!a_.head_out()) {
    // A small Content-Length body that has not all arrived with its head (a server that
    // writes the head, then sends the file) is waited for, so that the client gets head and
    // body in one write rather than two.
    const auto& head = a_.head_;
    if (!last && head.content_length && !head.chunked && !pieces.full() &&
        parsed_ + *parser_.remaining() <= kBodyBufferSize) {
      return read_body();
    }
    return a_.respond(last);
  }
  if (pieces.count > 0 || last) return a_.respond(last);
  read_body();  // nothing to hand over yet
}

void Http1Exchange::resume() {
  if (parsed_ < fill_) return parse_body();  // pieces left over from the last read
  read_body();
}

void Http1Exchange::read_body() {
  const bool head_out = a_.head_out();
  if (head_out && parsed_ == fill_ && start_splice()) return;
  char* buffer = a_.buffer_.get();
  if (head_out && parsed_ > 0) {  // keep an incomplete chunk header; drop the rest
    std::memmove(buffer, buffer + parsed_, fill_ - parsed_);
    fill_ -= parsed_;
    parsed_ = 0;
  }
  size_t room = kBodyBufferSize - fill_;
  // A Content-Length body is read exactly: nothing past it (the connection may be reused).
  if (auto remaining = parser_.remaining()) {
    room = std::min<uint64_t>(room, *remaining - (fill_ - parsed_));
  }
  if (room == 0) return a_.fail({}, Failure::kInvalid);  // a chunk header or trailer over 64 KiB
  read_pending_ = true;
  conn_->stream.async_read_some(
      asio::buffer(buffer + fill_, room),
      [this, keep = a_.owner_.lock(), g = a_.generation_](error_code ec, size_t bytes) {
        if (g != a_.generation_) return;
        read_pending_ = false;
        on_body_read(ec, bytes);
      });
}

void Http1Exchange::on_body_read(error_code ec, size_t bytes) {
  if (ec == asio::error::eof && a_.head_.close_delimited && !a_.timed_out_) {
    if (parser_.parse_eof() != http::http1::ParseStatus::kOk) return a_.fail(ec, Failure::kClosed);
    conn_.reset();  // the end of the body was the end of the connection
    a_.pieces_out_.clear();
    return a_.respond(true);
  }
  if (ec) return a_.fail(ec, failure_of(ec));
  a_.progressed();
  fill_ += bytes;
  parse_body();
}

void Http1Exchange::finish() {
  const auto& head = a_.head_;
  const bool reusable = conn_ && head.keep_alive && !head.close_delimited && parsed_ == fill_;
  if (reusable) {
    const auto& up = a_.req_.balancer->config().upstream;
    UpstreamPools::of(a_.worker_)
        .http1.put(std::move(conn_), up.idle_timeout, up.max_idle_per_endpoint);
  }
  conn_.reset();
}

// --- zero-copy bodies --------------------------------------------------------------------------

bool Http1Exchange::start_splice() {
  const auto& head = a_.head_;
  if (!head.content_length || head.chunked) return false;
  auto remaining = parser_.remaining();
  if (!remaining || *remaining < kSpliceMinBytes) return false;
  if (conn_->stream.tls()) return false;  // TLS bytes are decrypted in user space
  Socket* to = a_.sink_->splice_target();
  if (to == nullptr) return false;
  pipe_ = a_.worker_.pipes().acquire();
  if (pipe_.read_fd < 0) return false;  // out of pipes: copy as usual
  splice_to_ = to;
  splice_left_ = *remaining;
  pipe_fill_ = 0;
  run_splice();
  return true;
}

// Moves bytes endpoint -> pipe -> client until one side would block, then waits for it. The
// endpoint side waits only while the pipe has room; the client side only while it has bytes.
void Http1Exchange::run_splice() {
  const int from = conn_->socket().native_handle();
  const int to = splice_to_->native_handle();
  bool from_blocked = false;
  bool to_blocked = false;
  uint64_t moved_out = 0;
  for (int round = 0; round < 64; ++round) {
    bool progress = false;
    if (splice_left_ > 0 && pipe_fill_ < pipe_.capacity && !from_blocked) {
      size_t n = 0;
      size_t want =
          static_cast<size_t>(std::min<uint64_t>(splice_left_, pipe_.capacity - pipe_fill_));
      switch (splice_some(from, pipe_.write_fd, want, &n)) {
        case SpliceStep::kProgress:
          pipe_fill_ += n;
          splice_left_ -= n;
          progress = true;
          break;
        case SpliceStep::kWouldBlock:
          from_blocked = true;
          break;
        case SpliceStep::kEnd:  // the endpoint closed before the end of its body
        case SpliceStep::kError:
          end_splice(false);
          return a_.fail(asio::error::eof, Failure::kClosed);
      }
    }
    if (pipe_fill_ > 0 && !to_blocked) {
      size_t n = 0;
      switch (splice_some(pipe_.read_fd, to, pipe_fill_, &n)) {
        case SpliceStep::kProgress:
          pipe_fill_ -= n;
          moved_out += n;
          progress = true;
          break;
        case SpliceStep::kWouldBlock:
          to_blocked = true;
          break;
        case SpliceStep::kEnd:
        case SpliceStep::kError:  // the client went away
          end_splice(false);
          return a_.fail(asio::error::broken_pipe, Failure::kOther);
      }
    }
    if (splice_left_ == 0 && pipe_fill_ == 0) {
      end_splice(true);
      parsed_ = fill_ = 0;
      auto* sink = a_.sink_;
      a_.upstream_finished();
      return sink->on_response_spliced(moved_out, true);
    }
    if (!progress) break;
  }
  if (moved_out > 0) {
    a_.progressed();
    a_.sink_->on_response_spliced(moved_out, false);
  }
  auto resume = [this, keep = a_.owner_.lock(), g = a_.generation_](error_code ec) {
    if (g != a_.generation_) return;
    read_pending_ = false;
    if (ec) {
      end_splice(false);
      return a_.fail(ec, a_.timed_out_ ? Failure::kTimeout : Failure::kOther);
    }
    run_splice();
  };
  read_pending_ = true;  // a wait on either socket: the route timer cancels it
  if (pipe_fill_ > 0 && (to_blocked || pipe_fill_ == pipe_.capacity || splice_left_ == 0)) {
    splice_to_->async_wait(Socket::wait_write, resume);
  } else {
    conn_->socket().async_wait(Socket::wait_read, resume);
  }
}

void Http1Exchange::end_splice(bool clean) {
  if (pipe_.read_fd < 0) return;
  a_.worker_.pipes().release(pipe_, clean && pipe_fill_ == 0);
  pipe_ = Pipe{};
  pipe_fill_ = 0;
  splice_to_ = nullptr;
}

// --- ending ------------------------------------------------------------------------------------

bool Http1Exchange::interrupt(bool connect_deadline) {
  if (connecting_ && connect_deadline) connect_timed_out_ = true;
  if (!read_pending_ && !write_pending_ && !connecting_) return false;
  // The pending operation ends with operation_aborted; its handler sees the timeout.
  error_code ignored;
  if (splice_to_) splice_to_->cancel(ignored);  // a splice waiting for the client
  if (conn_) conn_->socket().close(ignored);
  return true;
}

void Http1Exchange::drop() {
  end_splice(false);
  conn_.reset();
}

void Http1Exchange::abort() {
  end_splice(false);
  if (conn_) {
    error_code ignored;
    conn_->socket().close(ignored);
  }
  conn_.reset();
}

}  // namespace switchyard::proxy
