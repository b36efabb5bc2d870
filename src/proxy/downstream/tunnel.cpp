#include "downstream/tunnel.h"

#include <boost/asio/write.hpp>

namespace switchyard::proxy {

using boost::system::error_code;

Tunnel::Tunnel(Worker& worker, Stream client, Stream upstream, ConnectionSlot slot,
               std::chrono::milliseconds idle_timeout)
    : worker_(worker),
      client_(std::move(client)),
      upstream_(std::move(upstream)),
      slot_(std::move(slot)),
      idle_timeout_(idle_timeout) {
  up_.from = &client_;
  up_.to = &upstream_;
  down_.from = &upstream_;
  down_.to = &client_;
  worker_.link(this);
}

Tunnel::~Tunnel() {
  worker_.release_buffer(std::move(up_.buffer));
  worker_.release_buffer(std::move(down_.buffer));
  worker_.unlink(this);
}

void Tunnel::start(std::string_view head, std::string_view early, std::string_view pending) {
  activity_ = worker_.now();
  up_.buffer = worker_.acquire_buffer();
  down_.buffer = worker_.acquire_buffer();
  down_.first.assign(head);
  down_.first.append(early);
  up_.first.assign(pending);
  send_first(down_);
  send_first(up_);
}

void Tunnel::send_first(Direction& d) {
  if (d.first.empty()) return read(d);
  asio::async_write(*d.to, asio::buffer(d.first),
                    [self = shared_from_this(), &d](error_code ec, size_t) {
                      if (ec) return self->end();
                      d.first = std::string();
                      self->read(d);
                    });
}

void Tunnel::read(Direction& d) {
  if (ended_) return;
  d.from->async_read_some(
      asio::buffer(d.buffer.get(), kBodyBufferSize),
      [self = shared_from_this(), &d](error_code ec, size_t n) { self->on_read(d, ec, n); });
}

void Tunnel::on_read(Direction& d, error_code ec, size_t n) {
  if (ended_) return;
  if (ec) {
    if (ec == asio::error::eof && !d.to->tls() && !d.from->tls()) {
      error_code ignored;
      d.to->socket().shutdown(Socket::shutdown_send, ignored);  // pass the end of stream on
      d.open = false;
      if (!up_.open && !down_.open) end();
    } else {
      end();
    }
    return;
  }
  activity_ = worker_.now();
  asio::async_write(*d.to, asio::buffer(d.buffer.get(), n),
                    [self = shared_from_this(), &d](error_code ec, size_t) {
                      if (ec) return self->end();
                      self->activity_ = self->worker_.now();
                      self->read(d);
                    });
}

void Tunnel::on_sweep(Clock::time_point now) {
  if (!ended_ && now - activity_ > idle_timeout_) end();
}

void Tunnel::end() {
  if (ended_) return;
  ended_ = true;
  error_code ignored;
  client_.close(ignored);
  upstream_.close(ignored);
}

}  // namespace switchyard::proxy
