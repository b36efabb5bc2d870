// discovery.file: a YAML or JSON file of endpoints, watched with inotify.
//
// The watch is on the file's directory, not the file: deploy tools replace a file by writing
// another and renaming it over (the inode changes), and a Kubernetes ConfigMap volume swaps a
// `..data` symlink; any event in the directory schedules a read 20 ms later (a burst of
// events is one read), and a read whose bytes equal the last read's changes nothing. A
// directory that does not exist yet, or a filesystem without inotify, falls back to reading
// every 5 s. A file that does not parse keeps the last good set and says where it is wrong,
// FILE:LINE:COL, as --check does.

#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "sources.h"
#include "switchyard/config/loader.h"

namespace switchyard::discovery {
namespace {

constexpr auto kDebounce = std::chrono::milliseconds(20);
constexpr auto kPoll = std::chrono::seconds(5);
constexpr size_t kMaxFileBytes = 16u << 20;

class FileSource final : public Source {
 public:
  FileSource(boost::asio::io_context& ioc, std::string path, Report report)
      : ioc_(ioc),
        path_(std::move(path)),
        report_(std::move(report)),
        debounce_(ioc),
        poll_(ioc),
        alive_(std::make_shared<bool>(true)) {}
  ~FileSource() override { stop(); }

  std::optional<Answer> start() override {
    watch();
    schedule_poll();
    return read(/*force=*/true);
  }

  void stop() override {
    *alive_ = false;
    debounce_.cancel();
    poll_.cancel();
    if (inotify_) {
      boost::system::error_code ec;
      inotify_->close(ec);
      inotify_.reset();
    }
  }

 private:
  void watch() {
    const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return;  // polling only
    const auto slash = path_.rfind('/');
    const std::string dir = slash == std::string::npos ? "."
                            : slash == 0               ? "/"
                                                       : path_.substr(0, slash);
    if (inotify_add_watch(
            fd, dir.c_str(),
            IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB) < 0) {
      ::close(fd);
      return;  // the directory is not there (yet): polling finds the file when it comes
    }
    inotify_ = std::make_unique<boost::asio::posix::stream_descriptor>(ioc_, fd);
    wait_event();
  }

  void wait_event() {
    inotify_->async_read_some(boost::asio::buffer(events_),
                              [this, alive = alive_](boost::system::error_code ec, size_t) {
                                if (!*alive || ec) return;
                                debounce_.expires_after(kDebounce);
                                debounce_.async_wait([this, alive](boost::system::error_code e) {
                                  if (*alive && !e) deliver(read(false));
                                });
                                wait_event();
                              });
  }

  void schedule_poll() {
    poll_.expires_after(kPoll);
    poll_.async_wait([this, alive = alive_](boost::system::error_code ec) {
      if (!*alive || ec) return;
      if (!inotify_) watch();
      deliver(read(false));
      schedule_poll();
    });
  }

  void deliver(std::optional<Answer> answer) {
    if (answer) report_(std::move(*answer));
  }

  // The file's answer, or nothing when its bytes are those of the last read (and not force).
  std::optional<Answer> read(bool force) {
    Answer answer;
    std::ifstream in(path_, std::ios::binary);
    if (!in) {
      const std::string why = std::strerror(errno);
      if (!force && last_error_ == why) return std::nullopt;
      last_error_ = why;
      last_bytes_.reset();
      answer.error = path_ + ": cannot read the file (" + why + ")";
      return answer;
    }
    // In pieces, up to one byte past the limit: a buffer of the limit's size (16 MiB) for a
    // file of a few hundred bytes, every 5 s and at every change, would be touched and left
    // resident by the allocator.
    std::string bytes;
    std::array<char, 65536> piece;
    while (bytes.size() <= kMaxFileBytes &&
           in.read(piece.data(), static_cast<std::streamsize>(piece.size())).gcount() > 0) {
      bytes.append(piece.data(), static_cast<size_t>(in.gcount()));
    }
    if (!force && last_bytes_ && *last_bytes_ == bytes) return std::nullopt;
    last_bytes_ = bytes;
    last_error_.clear();
    if (bytes.size() > kMaxFileBytes) {
      answer.error = path_ + ": larger than 16 MiB";
      return answer;
    }
    auto result = config::load_endpoints(bytes, path_);
    if (!result.ok()) {
      answer.error = result.errors.front().to_string();
      if (result.errors.size() > 1) {
        answer.error += " (and " + std::to_string(result.errors.size() - 1) + " more)";
      }
      return answer;
    }
    // An explicit empty list is a set (the operator drained the cluster); an empty file is
    // not (it is usually a write in progress) and was refused above.
    answer.result = Result::kSuccess;
    answer.endpoints = std::move(result.endpoints);
    return answer;
  }

  boost::asio::io_context& ioc_;
  std::string path_;
  Report report_;
  boost::asio::steady_timer debounce_;
  boost::asio::steady_timer poll_;
  std::unique_ptr<boost::asio::posix::stream_descriptor> inotify_;
  std::array<char, 4096> events_{};
  std::optional<std::string> last_bytes_;
  std::string last_error_;
  std::shared_ptr<bool> alive_;
};

}  // namespace

std::unique_ptr<Source> make_file_source(boost::asio::io_context& ioc,
                                         const config::FileDiscovery& file, Source::Report report) {
  return std::make_unique<FileSource>(ioc, file.path, std::move(report));
}

}  // namespace switchyard::discovery
