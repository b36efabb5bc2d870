#include "downstream/request_body.h"

#include <algorithm>
#include <cstring>

namespace switchyard::proxy {

http::http1::ParseStatus RequestBody::next(http::http1::RequestParser& parser, InBuffer& in) {
  pieces_.clear();
  trailers_.clear();
  pieces_.trailers = &trailers_;
  http::http1::ParseStatus st = http::http1::ParseStatus::kNeedMore;
  if (!in.empty()) {
    in.consume(parser.parse_body(in.view(), pieces_, &st));
    if (st == http::http1::ParseStatus::kNeedMore && pieces_.count == 0 && !in.empty()) {
      // An incomplete chunk header at the end of what came with the head: continue it in the
      // body buffer, where the rest will be read.
      if (!buffer_) buffer_ = worker_.acquire_buffer();
      auto rest = in.view();
      std::memcpy(buffer_.get(), rest.data(), rest.size());
      fill_ = rest.size();
      parsed_ = 0;
      in.consume(rest.size());
    }
  } else if (parsed_ < fill_) {
    parsed_ +=
        parser.parse_body(std::string_view(buffer_.get() + parsed_, fill_ - parsed_), pieces_, &st);
  }
  return st;
}

std::span<char> RequestBody::room(const http::http1::RequestParser& parser) {
  if (!buffer_) buffer_ = worker_.acquire_buffer();
  if (parsed_ > 0) {
    std::memmove(buffer_.get(), buffer_.get() + parsed_, fill_ - parsed_);
    fill_ -= parsed_;
    parsed_ = 0;
  }
  size_t room = kBodyBufferSize - fill_;
  if (auto remaining = parser.remaining()) room = std::min<uint64_t>(room, *remaining - fill_);
  return {buffer_.get() + fill_, room};
}

void RequestBody::finish(InBuffer& in, size_t in_limit) {
  if (!buffer_) return;
  if (parsed_ < fill_) {
    in.prepend(std::string_view(buffer_.get() + parsed_, fill_ - parsed_), in_limit);
  }
  release();
}

void RequestBody::release() {
  if (buffer_) worker_.release_buffer(std::move(buffer_));
  fill_ = parsed_ = 0;
}

}  // namespace switchyard::proxy
