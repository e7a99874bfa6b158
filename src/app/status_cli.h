// The status-page commands of the `hato` CLI (issue 13, item 4):
//   hato status note add TEXT...   post a note on the status page
//   hato status note list | clear
//   hato status publish DIR [--from HOST:PORT]
// Notes live in DATA/status-notes.txt (web/health.h), a small file of their
// own, so they can be posted while the store is sick; the running server
// re-reads it every few seconds. `publish` writes the live page of the running
// server ([listen] http, or --from) as static files (index.html,
// index.ja.html, status.json) that another machine can serve; when the
// server does not answer it writes a page that says so, with the notes.
#pragma once

#include <memory>
#include <string>

namespace CLI {
class App;
}

namespace hato::app {

inline constexpr const char* kStatusNotesFile = "status-notes.txt";

class StatusCli {
 public:
  StatusCli(CLI::App& app, std::string& data);
  ~StatusCli();
  // After parsing: the exit status of the parsed command, or -1 when none of these.
  int Run();

 private:
  struct Opts;
  std::unique_ptr<Opts> o_;
  std::string& data_;
};

}  // namespace hato::app
