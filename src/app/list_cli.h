// The mailing-list commands of the `hato` CLI (issue 14, src/lists):
//   hato list create LIST@DOMAIN [--mode discussion|announce]
//   hato list remove|show LIST, hato list ls
//   hato list set LIST [--mode M] [--name N] [--confirm-text-file F] [--welcome-text-file F]
//                      [--max-message-size N] [--max-posts-per-hour N]
//                      [--bounce-threshold N] [--dmarc-rewrite auto|always|never]
//   hato list members add LIST ADDR... [--owner] [--moderator] [--no-receive]
//   hato list members remove LIST ADDR...
//   hato list members list LIST [--verbose]          one address a line
//   hato list members import LIST FILE.csv [--update] / export LIST
//   hato list members set LIST ADDR [--delivery on|off] [--enable]
//   hato list posts LIST, hato list report LIST [--post ID] [--json]
//   hato list moderate LIST [--approve ID | --reject ID]
#pragma once

#include <memory>
#include <string>

namespace CLI {
class App;
}

namespace hato::app {

class ListCli {
 public:
  ListCli(CLI::App& app, std::string& data);
  ~ListCli();
  // After parsing: the exit status of the list command given, or -1.
  int Run();

 private:
  struct Opts;
  std::unique_ptr<Opts> o_;
  std::string& data_;
};

}  // namespace hato::app
