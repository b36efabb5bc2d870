#pragma once

// Private to the proxy module. One try's wire protocol, as UpstreamAttempt drives it (the shape
// of Envoy's router over upstreams/http/{http,tcp}). The attempt picks the endpoint, keeps the
// request body for a replay, runs the try's timer, decides retries and hedges and maps
// failures to the client's status; an exchange connects (or takes a pooled connection or
// stream), writes the request, reads the response and hands it back through the attempt. Two
// implementations: Http1Exchange (a connection per try, pooled for keep-alive, splice for large
// bodies) and H2Exchange (a stream on a multiplexed connection). Both live inside the attempt
// and are reused by every request of its session: a try allocates nothing for them.

namespace switchyard::proxy {

// How a try failed, as its exchange saw it; the attempt maps it to the client's status and
// decides whether another try may follow.
enum class TryFailure { kConnect, kClosed, kTimeout, kInvalid, kOther };

class UpstreamExchange {
 public:
  virtual ~UpstreamExchange() = default;

  // The try's endpoint is picked: take a pooled connection or stream, or connect, then send
  // the request head (and the body as it comes).
  virtual void begin() = 0;
  // More request body is there: the sink's pieces, or the kept copy when replaying.
  virtual void send_body() = 0;
  // The sink wrote what it was last handed: go on with the response.
  virtual void resume() = 0;
  // The try's timer fired. True: an operation of the exchange's own is pending and its
  // handler reports the failure (seeing the attempt's timed_out_); false: nothing is pending,
  // the attempt fails the try itself. connect_deadline: the timer was connect_timeout's.
  virtual bool interrupt(bool connect_deadline) = 0;
  // The endpoint sent the whole response: the connection goes back to the pool when it may be
  // reused (HTTP/1.1), the stream is over (HTTP/2).
  virtual void finish() = 0;
  // After a failure on a reused() connection: the same endpoint again, on a fresh one.
  virtual void reconnect() = 0;
  // The try gives up its connection or stream (mid-message or failed: never pooled).
  virtual void drop() = 0;
  // The client went away: as drop(), closing the socket first so no handler reads on.
  virtual void abort() = 0;

  // The try runs on a pooled connection the endpoint may have closed while it sat idle.
  virtual bool reused() const = 0;
  // A body taken in part can go again: the kept part is sent, then the rest as it comes
  // (HTTP/2's data provider can; an HTTP/1.1 Content-Length or chunked write cannot).
  virtual bool resends_partial_body() const = 0;
};

}  // namespace switchyard::proxy
