#pragma once

// Private to the proxy module. A try to an HTTP/2 endpoint (clusters[].protocol h2c or h2): one
// stream on a pooled multiplexed connection (H2Pool). The response body comes in DATA frames
// into the attempt's buffer; the stream's window (one buffer) is given back when the sink has
// written what it was handed, so a slow client holds the endpoint, never switchyard's memory.
// A stream the endpoint refused (GOAWAY past it, or REFUSED_STREAM) was never processed and
// goes again on another connection.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "upstream/h2_client.h"
#include "upstream/upstream_exchange.h"

namespace switchyard::proxy {

class UpstreamAttempt;

class H2Exchange final : public UpstreamExchange, private H2ClientStream {
 public:
  explicit H2Exchange(UpstreamAttempt& attempt) : a_(attempt) {}

  void begin() override;
  void send_body() override;
  void resume() override;
  bool interrupt(bool) override { return false; }  // the failure gives the stream up itself
  void drop() override { release(); }
  void abort() override { release(); }
  void finish() override { release(); }
  void reconnect() override {
    release();
    begin();
  }
  bool reused() const override { return false; }
  bool resends_partial_body() const override { return true; }

  // A new request: no connection refused it yet.
  void reset_refusals() { refused_on_ = nullptr; }

 private:
  void submit();
  void on_head();
  void hand();
  void release();

  // H2ClientStream: what the connection recorded, then h2_deliver() to act on it.
  void h2_ready(bool ok) override;
  void h2_header(std::string_view name, std::string_view value) override;
  void h2_headers_end() override;
  void h2_data(const uint8_t* data, size_t size) override;
  void h2_end_stream() override;
  void h2_closed(uint32_t error_code) override;
  void h2_deliver() override;
  ssize_t h2_read_body(uint8_t* buf, size_t length, uint32_t* flags) override;

  struct Span {
    uint32_t name, name_len, value, value_len;
  };
  std::string_view name_of(const Span& s) const { return {store_.data() + s.name, s.name_len}; }
  std::string_view value_of(const Span& s) const { return {store_.data() + s.value, s.value_len}; }

  UpstreamAttempt& a_;
  std::shared_ptr<H2Client> conn_;
  std::shared_ptr<void> keep_;  // the attempt's owner, while a stream is open
  int32_t id_ = 0;
  std::string store_;  // response head, then trailer names and values
  std::vector<Span> spans_;
  size_t trailers_from_ = SIZE_MAX;  // index of the first trailer span
  bool head_ready_ = false;          // the final head's block is complete
  bool ended_ = false;               // END_STREAM from the endpoint
  bool closed_ = false;
  uint32_t error_ = 0;
  bool want_body_ = false;  // the body provider ran dry: ask the sink for more
  bool overflow_ = false;   // more than the window, or a head past one buffer
  size_t fill_ = 0;         // body bytes in the attempt's buffer
  size_t handed_ = 0;       // bytes at the front of the buffer the sink holds
  size_t piece_ = 0;        // request body position in the sink's pieces or the replay
  size_t offset_ = 0;
  const H2Client* refused_on_ = nullptr;  // identity only: the connection that refused it
};

}  // namespace switchyard::proxy
