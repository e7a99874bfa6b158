// The Sieve commands of the `hato` CLI (issue 19, src/sieve):
//   hato sieve put ADDR NAME FILE      store a script (checked first; "-" = stdin)
//   hato sieve activate ADDR NAME      make it the one that runs at delivery
//   hato sieve deactivate ADDR         no script runs
//   hato sieve list ADDR               NAME [active] per line, then the last error
//   hato sieve get ADDR NAME           the script's text on stdout
//   hato sieve delete ADDR NAME        (not the active one)
//   hato sieve check FILE | ADDR NAME  compile only: "ok" or the error (exit 1)
#pragma once

#include <memory>
#include <string>

namespace CLI {
class App;
}

namespace hato::app {

class SieveCli {
 public:
  SieveCli(CLI::App& app, std::string& data);
  ~SieveCli();
  // After parsing: the exit status of the sieve command given, or -1.
  int Run();

 private:
  struct Opts;
  std::unique_ptr<Opts> o_;
  std::string& data_;
};

}  // namespace hato::app
