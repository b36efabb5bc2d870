#pragma once

#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <optional>
#include <string>

#include "switchyard/proxy/retry.h"
#include "worker.h"

namespace switchyard::proxy {

namespace http = beast::http;

// One client connection: reads requests with a fresh Beast parser each, routes and picks an
// endpoint, relays the request to it and the response back, streaming bodies through one
// fixed buffer in both directions (never buffering a body whole). Every operation is armed
// with a timeout before it starts. All methods run on the owning worker's thread.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Worker& worker, size_t listener_index, Socket socket);
  ~Session();

  void start();
  // The worker is draining: close now if between requests, else after the current response.
  void on_drain();
  // The worker is stopping: close both sides now; pending operations end with an error.
  void abort();
  // Called by the worker's periodic sweep: a request head still incomplete after
  // header_timeout has its read cancelled and is answered 408; an upgrade tunnel idle for
  // longer than idle_timeout is closed.
  void on_sweep(std::chrono::steady_clock::time_point now);

  Session* prev = nullptr;  // Worker's intrusive list
  Session* next = nullptr;

 private:
  enum class Phase { kIdle, kHead, kRequest, kTunnel };

  void do_wait_request();
  void on_first_bytes(beast::error_code ec, size_t bytes);
  void do_read_head();
  void parse_head();
  void on_head_bytes(beast::error_code ec, size_t bytes);
  void on_head_complete();
  void pick_endpoint();
  void do_connect();
  void on_connect(beast::error_code ec);
  void send_request();
  void on_request_written(beast::error_code ec, size_t bytes);
  void do_send_continue();
  void do_read_request_body();
  void on_request_body_read(beast::error_code ec, size_t bytes);
  void do_read_response_head();
  void on_response_head(beast::error_code ec, size_t bytes);
  void do_read_response_body();
  void on_response_body_read(beast::error_code ec, size_t bytes);
  void on_response_written(beast::error_code ec, size_t bytes);
  void finish_request();
  void start_tunnel();
  void tunnel_read(bool to_upstream);
  void on_tunnel_read(bool to_upstream, beast::error_code ec, size_t bytes);
  void on_tunnel_written(bool to_upstream, beast::error_code ec);
  void end_tunnel();

  // How the body of the message being sent is delimited on the wire.
  enum class BodyFraming { kNone, kLength, kChunked, kUntilClose };
  void serialize_request_head(const http::request<http::buffer_body>& req);
  void serialize_response_head(const http::response<http::buffer_body>& res);
  template <typename Fields>
  void append_fields(const Fields& fields);
  // The buffers of the next write: the head if not yet sent, then `size` body bytes framed per
  // out_framing_ (and the last-chunk marker when `last`). Unused slots are empty.
  const std::array<asio::const_buffer, 5>& frame_piece(const char* data, size_t size, bool last);

  bool extract_hash_key(const http::request<http::buffer_body>& req, std::string_view path);
  void prepare_upstream_request();
  void prepare_response();
  // Reads, applies and counts the endpoint's load report, and removes it from the response.
  void consume_load_report();
  // Answers the current request with a short plain-text error. close: end the connection
  // after it (always when the request body was not read to its end).
  void respond_error(unsigned status, std::string_view reason, bool close);
  void on_error_written(beast::error_code ec, size_t bytes);
  // An upstream operation failed before any response byte went to the client.
  void upstream_failed(beast::error_code ec, const char* what);
  void release_endpoint();
  void record_outcome(bool success);
  // Starts another try if the route's retry policy, the budget and the request allow it.
  bool try_retry(RetryReason reason, unsigned status);
  bool can_replay() const;
  void release_retry();
  void log_request(unsigned status);
  void close_gracefully();
  void on_lingering_read(beast::error_code ec, size_t bytes);

  Worker& worker_;
  size_t listener_index_;
  Stream client_;
  beast::flat_buffer client_buffer_;
  std::string client_ip_;
  IpAddress client_addr_;
  std::shared_ptr<metrics::ListenerMetrics> listener_metrics_;
  Phase phase_ = Phase::kIdle;
  bool close_after_response_ = false;

  // --- per request ---
  std::shared_ptr<WorkerView> view_;
  const registry::ListenerSnapshot* listener_ = nullptr;
  const config::Route* route_ = nullptr;
  const registry::ClusterSnapshot* cluster_ = nullptr;
  const registry::Endpoint* endpoint_ = nullptr;
  std::optional<http::request_parser<http::buffer_body>> request_;
  std::optional<http::response_parser<http::buffer_body>> response_;
  std::optional<http::response<http::string_body>> error_response_;
  std::unique_ptr<UpstreamConnection> upstream_;
  std::unique_ptr<char[]> body_buffer_;
  std::string forwarded_for_;
  bool peer_trusted_ = false;
  std::string_view client_region_;  // points into the request or the snapshot's config
  std::string_view client_zone_;    // likewise
  std::string hop_scratch_;         // for strip_hop_by_hop; capacity reused
  std::string out_head_;            // serialized head being sent; its capacity is reused
  bool out_head_pending_ = false;
  BodyFraming out_framing_ = BodyFraming::kNone;
  char chunk_line_[24] = {};
  std::array<asio::const_buffer, 5> out_buffers_{};
  std::array<uint32_t, 4> tried_{};
  uint32_t tried_count_ = 0;
  uint32_t retries_done_ = 0;
  bool retry_counted_ = false;  // counted in the cluster's active_retries
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point head_deadline_;
  bool head_timed_out_ = false;
  bool upgrade_requested_ = false;
  std::string upgrade_protocol_;
  std::unique_ptr<char[]> tunnel_buffer_;  // client -> endpoint direction of a tunnel
  std::chrono::steady_clock::time_point tunnel_activity_;
  int tunnel_open_ = 0;  // directions not yet at end of stream
  std::chrono::steady_clock::time_point upstream_start_;
  std::chrono::steady_clock::time_point deadline_;
  uint64_t response_bytes_ = 0;
  unsigned client_version_ = 11;
  bool client_keep_alive_ = true;
  bool request_has_body_ = false;
  bool expect_continue_ = false;
  bool reused_connection_ = false;
  bool response_head_sent_ = false;
  bool active_counted_ = false;
  std::string hash_key_;  // capacity reused
  bool has_hash_key_ = false;
  bool trial_ = false;  // this try holds its endpoint's half-open trial
  bool outcome_recorded_ = false;
  std::string replay_;         // the request body, kept for a retry while it fits
  bool replay_ok_ = false;     // replay_ holds every body byte read so far
  bool replaying_ = false;     // this try sends replay_ instead of reading the client
  bool body_touched_ = false;  // some of the body was read from the client
  bool logged_ = false;
};

}  // namespace switchyard::proxy
