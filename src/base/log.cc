#include "base/log.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <mutex>
#include <string>

namespace hato {
namespace {

// One event, one line (issue 11 item 10): whatever a log call was given, a
// control character in the message (a CR/LF in a client's login name, EHLO,
// address or mailbox name that reached an error text) is written escaped
// ("\x0d"), so no client can start a forged line that fail2ban-style tools
// would act on. Call sites also pass client values through LogSafe, which
// additionally bounds their length.
class OneLineSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit OneLineSink(std::shared_ptr<spdlog::sinks::sink> out) : out_(std::move(out)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string_view payload(msg.payload.data(), msg.payload.size());
    bool clean = true;
    for (char c : payload) {
      auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f) clean = false;
    }
    if (clean) {
      out_->log(msg);
      return;
    }
    std::string escaped;
    static constexpr char kHex[] = "0123456789abcdef";
    for (char c : payload) {
      auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f) {
        escaped += "\\x";
        escaped += kHex[u >> 4];
        escaped += kHex[u & 15];
      } else {
        escaped += c;
      }
    }
    spdlog::details::log_msg copy(msg);
    copy.payload = spdlog::string_view_t(escaped.data(), escaped.size());
    out_->log(copy);
  }
  void flush_() override { out_->flush(); }

 private:
  std::shared_ptr<spdlog::sinks::sink> out_;
};

}  // namespace

void InitLogging(bool verbose) {
  auto stderr_sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  // The pattern belongs to the sink that writes (OneLineSink only escapes).
  stderr_sink->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  auto sink = std::make_shared<OneLineSink>(stderr_sink);
  auto logger = std::make_shared<spdlog::logger>("hato", sink);
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  logger->flush_on(spdlog::level::info);
  spdlog::register_logger(logger);
  spdlog::set_default_logger(logger);
}

}  // namespace hato
