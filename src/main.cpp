// switchyard: wires the modules together. Control thread = this thread: it runs the control
// runtime (snapshots, health checks, the circuit breaker, the 100 ms tick), handles signals
// (SIGHUP reload, SIGTERM/SIGINT drain) and publishes snapshots to the workers. The admin
// server has its own thread.

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>

#include "switchyard/admin/admin_server.h"
#include "switchyard/balancer/policy.h"
#include "switchyard/common/logging.h"
#include "switchyard/common/stats.h"
#include "switchyard/config/loader.h"
#include "switchyard/control/reload.h"
#include "switchyard/control/runtime.h"
#include "switchyard/proxy/server.h"

namespace {

using namespace switchyard;

constexpr const char* kUsage = R"(usage: switchyard [--config FILE] [--check] [--log-level LEVEL]
       switchyard --version | --help

  --config FILE      configuration file (default: config/switchyard.yaml)
  --check            validate the configuration and exit: 0 if valid, else 1 with every
                     problem printed as FILE:LINE:COL: key.path: what is wrong
  --log-level LEVEL  trace | debug | info | warn | error (default: info)
  --version          print the version and exit
  --help             print this help and exit

signals: SIGHUP reloads the file (an invalid file keeps the running config);
         SIGTERM / SIGINT stop accepting, finish in-flight requests (drain_timeout), exit 0.
)";

struct Options {
  std::string config_path = "config/switchyard.yaml";
  std::string log_level = "info";
  bool check = false;
  bool version = false;
  bool help = false;
};

bool parse_args(int argc, char** argv, Options* out) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&](std::string* dest) {
      if (auto eq = arg.find('='); eq != std::string_view::npos) {
        *dest = std::string(arg.substr(eq + 1));
        return true;
      }
      if (i + 1 >= argc) return false;
      *dest = argv[++i];
      return true;
    };
    if (arg == "--check") {
      out->check = true;
    } else if (arg == "--version") {
      out->version = true;
    } else if (arg == "--help" || arg == "-h") {
      out->help = true;
    } else if (arg == "--config" || arg.rfind("--config=", 0) == 0 || arg == "-c") {
      if (!value(&out->config_path)) return false;
    } else if (arg == "--log-level" || arg.rfind("--log-level=", 0) == 0) {
      if (!value(&out->log_level)) return false;
    } else {
      std::cerr << "switchyard: unknown argument '" << arg << "'\n";
      return false;
    }
  }
  return true;
}

class Daemon {
 public:
  Daemon(Options options, std::shared_ptr<const config::Config> config)
      : options_(std::move(options)),
        config_(std::move(config)),
        runtime_(control_),
        proxy_(*config_),
        admin_(proxy_.stats(), runtime_, admin_state_),
        signals_(control_, SIGINT, SIGTERM, SIGHUP),
        drain_timer_(control_) {}

  int run() {
    std::string why;
    runtime_.on_rebuild([this](std::shared_ptr<const control::Snapshot> snapshot) {
      proxy_.publish(std::move(snapshot));
    });
    auto snapshot = runtime_.apply(config_, &why);
    if (!snapshot) {
      logs::main().error("{}: {}", options_.config_path, why);
      return 1;
    }
    if (!proxy_.bind()) return 1;
    proxy_.publish(snapshot);
    admin_.on_reload([this](std::function<void(admin::ReloadOutcome)> done) {
      boost::asio::post(control_,
                        [this, done = std::move(done)] { done(reload("POST /admin/reload")); });
    });
    if (!admin_.listen(config_->admin.listen, config_->admin.probe_listen)) return 1;
    runtime_.start();
    proxy_.start();
    admin_state_.ready = true;
    logs::main().info("switchyard {} serving with {} workers, config {}", SWITCHYARD_VERSION,
                      config_->workers, options_.config_path);
    wait_signal();
    control_.run();
    proxy_.stop();
    logs::main().info("stopped");
    return 0;
  }

 private:
  void wait_signal() {
    signals_.async_wait([this](boost::system::error_code ec, int signo) {
      if (ec) return;
      if (signo == SIGHUP) {
        reload("SIGHUP");
        return wait_signal();
      }
      begin_drain(signo);
    });
  }

  // SIGHUP and POST /admin/reload. Control thread.
  admin::ReloadOutcome reload(const char* cause) {
    logs::config().info("{}: reloading {}", cause, options_.config_path);
    auto result = control::reload_file(options_.config_path, *config_, runtime_,
                                       [this](auto snapshot) { proxy_.publish(snapshot); });
    if (result.ok) config_ = result.config;
    admin::ReloadOutcome outcome;
    outcome.ok = result.ok;
    outcome.version = result.version;
    outcome.errors = std::move(result.errors);
    return outcome;
  }

  void begin_drain(int signo) {
    // Not ready before it is said: whoever reads "draining" then sees /readyz answer 503.
    admin_state_.ready = false;
    logs::main().info("{}: draining (up to {})", signo == SIGTERM ? "SIGTERM" : "SIGINT",
                      format_duration(config_->drain_timeout));
    signals_.cancel();
    proxy_.drain();
    drain_deadline_ = std::chrono::steady_clock::now() + config_->drain_timeout;
    poll_drain();
  }

  void poll_drain() {
    size_t open = proxy_.open_connections();
    if (open == 0 || std::chrono::steady_clock::now() >= drain_deadline_) {
      if (open > 0) logs::main().warn("drain timeout: closing {} connections", open);
      admin_.stop();
      runtime_.stop();
      control_.stop();
      return;
    }
    drain_timer_.expires_after(std::chrono::milliseconds(20));
    drain_timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) poll_drain();
    });
  }

  Options options_;
  std::shared_ptr<const config::Config> config_;
  boost::asio::io_context control_{1};
  // Before proxy_: workers hold the module states it owns and report outcomes to its circuit
  // breaker until they stop.
  control::Runtime runtime_;
  proxy::ProxyServer proxy_;
  admin::AdminState admin_state_;
  admin::AdminServer admin_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer drain_timer_;
  std::chrono::steady_clock::time_point drain_deadline_;
};

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!parse_args(argc, argv, &options)) {
    std::cerr << kUsage;
    return 2;
  }
  if (options.help) {
    std::cout << kUsage;
    return 0;
  }
  if (options.version) {
    std::cout << "switchyard " << SWITCHYARD_VERSION << "\n";
    return 0;
  }
  if (!logs::init(options.log_level)) {
    std::cerr << "switchyard: --log-level must be trace, debug, info, warn or error\n";
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);

  auto result = config::load_file(options.config_path, balancer::schema());
  if (!result.ok()) {
    for (const auto& e : result.errors) std::cerr << e.to_string() << "\n";
    if (!options.check) std::cerr << "switchyard: invalid configuration, not starting\n";
    return 1;
  }
  if (options.check) {
    std::cout << options.config_path << ": ok\n";
    return 0;
  }
  // One statistics shard per worker thread, plus one for every other thread.
  stats::set_shard_count(result.config->workers + 1);
  Daemon daemon(options, result.config);
  return daemon.run();
}
