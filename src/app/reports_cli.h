// The reports commands of the `hato` CLI (issue 18):
//   hato reports send [--today] [--resolver IP[@PORT]]
// sends the TLS-RPT (RFC 8460) and DMARC aggregate (RFC 7489 7.2) reports
// of the recorded days that have ended (reports/send.h) now instead of at
// [reports] send_hour; --today also reports the current day so far. The
// reports are queued in the store; the running server's queue sends them.
#pragma once

#include <memory>
#include <string>

namespace CLI {
class App;
}

namespace hato::app {

class ReportsCli {
 public:
  ReportsCli(CLI::App& app, std::string& data);
  ~ReportsCli();
  // After parsing: the exit status of the parsed command, or -1 when none of these.
  int Run();

 private:
  struct Opts;
  std::unique_ptr<Opts> o_;
  std::string& data_;
};

}  // namespace hato::app
