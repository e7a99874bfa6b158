// The message-authentication commands of the `hato` CLI:
//   hato dkim generate DOMAIN [--selector S] [--algorithm rsa|ed25519]
// and hidden commands that drive src/msgauth from tests with a DNS table
// file (msgauth/dns_table.h) instead of a resolver:
//   hato dkim sign --key K --domain D --selector S < message > signed
//   hato dkim verify --dns-file F [--now T] < message
//   hato spf check --ip IP --helo H [--sender S] --dns-file F
//   hato msgauth check --ip IP --helo H [--sender S] --dns-file F < message
#pragma once

#include <memory>
#include <string>

namespace CLI {
class App;
}

namespace hato::app {

class MsgAuthCli {
 public:
  // Adds the subcommands to `app`; `data` is the shared --data value.
  MsgAuthCli(CLI::App& app, std::string& data);
  ~MsgAuthCli();
  // After parsing: runs the parsed command and returns its exit status, or
  // -1 when none of these commands was given.
  int Run();

 private:
  struct Opts;
  std::unique_ptr<Opts> o_;
  std::string& data_;
};

}  // namespace hato::app
