// The certificate commands of the `hato` CLI (issue 18), for the ACME
// certificate of [acme] (acme/client.h):
//   hato cert revoke [--reason N]   revoke DATA/acme/certificate.pem (RFC 8555 7.6);
//                                   the server then orders a new one
//   hato cert rollover              a new ACME account key (RFC 8555 7.3.5)
#pragma once

#include <memory>
#include <string>

namespace CLI {
class App;
}

namespace hato::app {

class CertCli {
 public:
  CertCli(CLI::App& app, std::string& data);
  ~CertCli();
  // After parsing: the exit status of the parsed command, or -1 when none of these.
  int Run();

 private:
  struct Opts;
  std::unique_ptr<Opts> o_;
  std::string& data_;
};

}  // namespace hato::app
