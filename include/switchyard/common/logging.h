#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <string_view>

namespace switchyard::logs {

// One spdlog logger per module, all writing to stderr (the access log goes to stdout, see
// proxy/access_log.h). Call init() once from main before any thread starts.
//
// No thread ever waits for stderr: every line is formatted by the thread that logs it into a
// slot of a bounded lock-free queue (1024 lines of at most 1 KiB), and the `sy-log` thread
// writes them out. When stderr is not read (a full pipe) the writer blocks, the queue fills,
// and further lines are dropped and counted (dropped()), never waited for. Lines still queued
// are written at exit.
bool init(std::string_view level);  // false if level is not trace|debug|info|warn|error
// Writes what is queued and stops the writer thread (also run at exit). Later lines are
// written synchronously.
void shutdown();

spdlog::logger& main();
spdlog::logger& config();
spdlog::logger& registry();
spdlog::logger& proxy();
spdlog::logger& admin();

// Why a worker warns about a connection. A hostile peer can make any of these happen as often
// as it likes, so each is rate-limited on its own (warn_every): a burst of 20 lines, then 5 a
// second; the lines left out are counted and the next line that passes says how many.
enum class Reason : uint8_t {
  kAccept,
  kH2Abuse,
  kTlsNoClientCertificate,
  kTlsBadClientCertificate,
  kUpstreamTls,
  kUpstreamH2,
  kOther,
  kCount,
};

// Lines dropped so far: the queue was full, or a reason was over its rate. Any thread.
uint64_t dropped();

namespace detail {
// Takes a token for `reason`: true when the line may be logged; *suppressed is then the number
// of lines left out since the last one that passed. Lock-free, any thread.
bool admit(Reason reason, uint64_t* suppressed);
}  // namespace detail

// A warning rate-limited by reason (above). Any thread; never blocks.
template <typename... Args>
void warn_every(spdlog::logger& logger, Reason reason, fmt::format_string<Args...> format,
                Args&&... args) {
  if (!logger.should_log(spdlog::level::warn)) return;
  uint64_t suppressed = 0;
  if (!detail::admit(reason, &suppressed)) return;
  if (suppressed == 0) return logger.warn(format, std::forward<Args>(args)...);
  logger.warn("{} ({} similar lines suppressed)", fmt::format(format, std::forward<Args>(args)...),
              suppressed);
}

}  // namespace switchyard::logs
