#include "h2/h2_memory.h"

#include <bit>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__SANITIZE_ADDRESS__)
#define SWITCHYARD_H2_POOL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SWITCHYARD_H2_POOL 0
#endif
#endif
#ifndef SWITCHYARD_H2_POOL
#define SWITCHYARD_H2_POOL 1
#endif

namespace switchyard::proxy::h2 {
namespace {

// Every block starts with a header (16 bytes, so the payload keeps malloc's alignment): the
// size class, or kLarge, and the payload's capacity (for realloc).
struct Header {
  uint32_t cls;
  uint32_t unused;
  uint64_t capacity;
};
static_assert(sizeof(Header) == 16);

constexpr uint32_t kClasses = 7;  // blocks of 64 << cls bytes, header included
constexpr uint32_t kLarge = kClasses;
constexpr size_t kSmallest = 64;
constexpr size_t kLargest = kSmallest << (kClasses - 1);  // 4 KiB

struct FreeBlock {
  FreeBlock* next;
};

struct FreeLists {
  FreeBlock* head[kClasses] = {};
  size_t count[kClasses] = {};
  ~FreeLists() {
    for (auto*& h : head) {
      while (h != nullptr) {
        FreeBlock* next = h->next;
        std::free(h);
        h = next;
      }
    }
  }
};

thread_local FreeLists lists;

uint32_t class_of(size_t total) {
  if (total <= kSmallest) return 0;
  return static_cast<uint32_t>(std::bit_width(total - 1)) - 6;  // 65..128 -> 1, ...
}

void* allocate(size_t size, void*) {
  if (size > SIZE_MAX - sizeof(Header)) return nullptr;
  const size_t total = size + sizeof(Header);
  uint32_t cls = kLarge;
  size_t block_size = total;
  if (SWITCHYARD_H2_POOL && total <= kLargest) {
    cls = class_of(total);
    block_size = kSmallest << cls;
  }
  void* block = nullptr;
  if (cls != kLarge && lists.head[cls] != nullptr) {
    FreeBlock* b = lists.head[cls];
    lists.head[cls] = b->next;
    --lists.count[cls];
    block = b;
  } else {
    block = std::malloc(block_size);
    if (block == nullptr) return nullptr;
  }
  auto* h = static_cast<Header*>(block);
  h->cls = cls;
  h->capacity = block_size - sizeof(Header);
  return h + 1;
}

void release(void* p, void*) {
  if (p == nullptr) return;
  Header* h = static_cast<Header*>(p) - 1;
  const uint32_t cls = h->cls;
  if (cls == kLarge || lists.count[cls] >= kKeepPerClass) return std::free(h);
  auto* b = reinterpret_cast<FreeBlock*>(h);
  b->next = lists.head[cls];
  lists.head[cls] = b;
  ++lists.count[cls];
}

void* allocate_zeroed(size_t n, size_t size, void* user) {
  if (size != 0 && n > SIZE_MAX / size) return nullptr;
  void* p = allocate(n * size, user);
  if (p != nullptr) std::memset(p, 0, n * size);
  return p;
}

void* reallocate(void* p, size_t size, void* user) {
  if (p == nullptr) return allocate(size, user);
  const Header* h = static_cast<const Header*>(p) - 1;
  if (size <= h->capacity) return p;
  void* grown = allocate(size, user);
  if (grown == nullptr) return nullptr;
  std::memcpy(grown, p, h->capacity);
  release(p, user);
  return grown;
}

nghttp2_mem the_memory{nullptr, allocate, release, allocate_zeroed, reallocate};

}  // namespace

nghttp2_mem* memory() { return &the_memory; }

bool pooling() { return SWITCHYARD_H2_POOL != 0; }

size_t kept_blocks() {
  size_t n = 0;
  for (size_t c : lists.count) n += c;
  return n;
}

}  // namespace switchyard::proxy::h2
