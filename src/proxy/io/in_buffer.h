#pragma once

// A connection's input buffer for request heads: contiguous (Beast parses a head in one
// piece), grown on demand up to a limit, and never moved while a request's head is in use
// (views into it are the request's fields). Worker thread.

#include <cstring>
#include <memory>
#include <string_view>

namespace switchyard::proxy {

class InBuffer {
 public:
  static constexpr size_t kInitial = 4096;

  std::string_view view() const { return {data_.get() + begin_, end_ - begin_}; }
  size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  char* tail() { return data_.get() + end_; }
  size_t room() const { return capacity_ - end_; }
  size_t capacity() const { return capacity_; }
  void commit(size_t n) { end_ += n; }
  // Consumed bytes stay where they are (a head's views stay valid) until compact().
  void consume(size_t n) { begin_ += n; }

  // Moves the unconsumed bytes to the front; then makes room for at least `want` more bytes,
  // growing (by doubling) up to `limit` bytes in all. Invalidates views.
  void prepare(size_t want, size_t limit) {
    compact();
    if (!data_) {
      capacity_ = std::max(kInitial, std::min(want, limit));
      data_ = std::make_unique<char[]>(capacity_);
    }
    if (room() >= want || capacity_ >= limit) return;
    size_t grown = capacity_;
    while (grown - end_ < want && grown < limit) grown *= 2;
    grown = std::min(grown, limit);
    auto bigger = std::make_unique<char[]>(grown);
    std::memcpy(bigger.get(), data_.get(), end_);
    data_ = std::move(bigger);
    capacity_ = grown;
  }
  void compact() {
    if (begin_ == 0) return;
    std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  // Puts bytes back in front of the unconsumed ones (pipelined bytes read past a body).
  void prepend(std::string_view bytes, size_t limit) {
    compact();
    prepare(bytes.size(), std::max(limit, end_ + bytes.size()));
    std::memmove(data_.get() + bytes.size(), data_.get(), end_);
    std::memcpy(data_.get(), bytes.data(), bytes.size());
    end_ += bytes.size();
  }
  // A large head made the buffer grow: give the memory back between requests.
  void shrink() {
    if (capacity_ <= kInitial || size() > kInitial) return;
    compact();
    auto small = std::make_unique<char[]>(kInitial);
    std::memcpy(small.get(), data_.get(), end_);
    data_ = std::move(small);
    capacity_ = kInitial;
  }

 private:
  std::unique_ptr<char[]> data_;
  size_t capacity_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace switchyard::proxy
