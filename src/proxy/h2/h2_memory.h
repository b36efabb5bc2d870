#pragma once

// Private to the proxy module. nghttp2's allocator for switchyard's HTTP/2 sessions: blocks of
// up to 4 KiB come from per-thread free lists in seven size classes (64 B .. 4 KiB), so the
// frames, streams and header buffers nghttp2 makes for every request reuse memory instead of
// going to malloc about twenty times per request. Each thread keeps at most kKeepPerClass
// blocks per class (about 2 MiB in all); the rest goes back to malloc. Larger blocks go to
// malloc directly. Under AddressSanitizer every call goes to malloc, so that it sees nghttp2's
// memory as it is.

#include <nghttp2/nghttp2.h>

#include <cstddef>

namespace switchyard::proxy::h2 {

inline constexpr size_t kKeepPerClass = 256;

// The allocator to pass to nghttp2_session_*_new3. Any thread; blocks may be freed on a
// thread other than the one that allocated them.
nghttp2_mem* memory();

// Blocks the calling thread holds in its free lists, and whether it keeps any (not under
// AddressSanitizer). For tests.
size_t kept_blocks();
bool pooling();

}  // namespace switchyard::proxy::h2
