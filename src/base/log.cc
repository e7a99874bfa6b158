#include "base/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace hato {
namespace {

// %~: the message on one line (issue 11 item 10): control characters (a CR/LF
// in a client's login name, EHLO, address or mailbox name, also inside an
// error text) are written as "\xNN", so no client can forge a log line that
// fail2ban-style tools would act on. Call sites also bound client values
// with LogSafe (base/strings.h).
constexpr const char* kTextPattern = "%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %~";
constexpr const char* kJsonPattern = R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","msg":"%*"})";

// %* in the JSON pattern: the message, escaped for a JSON string.
class JsonMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string escaped = JsonEscape(std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessage>();
  }
};

class OneLineMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    static constexpr char kHex[] = "0123456789abcdef";
    for (char c : std::string_view(msg.payload.data(), msg.payload.size())) {
      auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f) {
        const char esc[4] = {'\\', 'x', kHex[u >> 4], kHex[u & 15]};
        dest.append(esc, esc + 4);
      } else {
        dest.push_back(c);
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<OneLineMessage>();
  }
};

std::unique_ptr<spdlog::formatter> TextFormatter() {
  auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  f->add_flag<OneLineMessage>('~').set_pattern(kTextPattern);
  return f;
}

std::shared_ptr<spdlog::logger> Logger() {
  auto logger = spdlog::get("hato");
  return logger ? logger : spdlog::default_logger();
}

}  // namespace

std::string JsonEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

void InitLogging(bool verbose) {
  auto logger = spdlog::stderr_logger_mt("hato");
  logger->set_formatter(TextFormatter());
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

Status SetLogFormat(const std::string& format) {
  auto logger = Logger();
  if (format == "text") {
    logger->set_formatter(TextFormatter());
  } else if (format == "json") {
    auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    f->add_flag<JsonMessage>('*').set_pattern(kJsonPattern);
    logger->set_formatter(std::move(f));
  } else {
    return Err(ErrorKind::kInvalid, "log.format must be \"text\" or \"json\"");
  }
  return Ok();
}

Status SetLogLevel(const std::string& level) {
  spdlog::level::level_enum l;
  if (level == "debug") {
    l = spdlog::level::debug;
  } else if (level == "info") {
    l = spdlog::level::info;
  } else if (level == "warn") {
    l = spdlog::level::warn;
  } else if (level == "error") {
    l = spdlog::level::err;
  } else {
    return Err(ErrorKind::kInvalid, "log.level must be debug, info, warn or error");
  }
  auto logger = Logger();
  logger->set_level(l);
  logger->flush_on(std::min(l, spdlog::level::info));
  return Ok();
}

}  // namespace hato
