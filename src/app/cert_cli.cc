#include "app/cert_cli.h"

#include <CLI/CLI.hpp>
#include <iostream>

#include "acme/client.h"
#include "app/serve.h"

namespace hato::app {

struct CertCli::Opts {
  CLI::App* revoke = nullptr;
  CLI::App* rollover = nullptr;
  int reason = 0;
};

namespace {

constexpr int kExitError = 1;

int Fail(const std::string& msg) {
  std::cerr << "hato: " << msg << "\n";
  return kExitError;
}

}  // namespace

CertCli::CertCli(CLI::App& app, std::string& data) : o_(std::make_unique<Opts>()), data_(data) {
  auto* cert = app.add_subcommand("cert", "the ACME certificate ([acme])");
  cert->require_subcommand(1);
  o_->revoke = cert->add_subcommand(
      "revoke", "revoke the ACME certificate in use; the server then orders a new one");
  // RFC 5280 5.3.1 CRLReason codes the ACME CAs accept.
  o_->revoke
      ->add_option("--reason", o_->reason,
                   "0 unspecified, 1 keyCompromise, 4 superseded, 5 cessationOfOperation")
      ->check(CLI::IsMember({0, 1, 3, 4, 5}))
      ->capture_default_str();
  o_->revoke->add_option("--data", data, "data directory")->capture_default_str();
  o_->rollover = cert->add_subcommand("rollover", "replace the ACME account key");
  o_->rollover->add_option("--data", data, "data directory")->capture_default_str();
}

CertCli::~CertCli() = default;

int CertCli::Run() {
  if (!o_->revoke->parsed() && !o_->rollover->parsed()) return -1;
  auto cfg = LoadConfig(data_);
  if (!cfg) return Fail(cfg.error().message);
  if (cfg->acme.directory.empty()) return Fail("[acme] directory is not set in hato.toml");
  acme::Settings s;
  s.directory = cfg->acme.directory;
  s.contact = cfg->acme.contact;
  s.domains =
      cfg->acme.domains.empty() ? std::vector<std::string>{cfg->hostname} : cfg->acme.domains;
  s.ca_file = cfg->acme.ca_file.empty() || cfg->acme.ca_file.front() == '/'
                  ? cfg->acme.ca_file
                  : data_ + "/" + cfg->acme.ca_file;
  s.resolver = cfg->outbound.resolver;
  if (o_->revoke->parsed()) {
    if (auto st = acme::Manager::RevokeStored(data_, s, o_->reason); !st) {
      return Fail(st.error().message);
    }
    std::cout << "revoked " << acme::Manager::CertificatePath(data_)
              << " (kept as certificate.pem.revoked); the server orders a new certificate at its"
                 " next check (restart it to do so now)\n";
    return 0;
  }
  if (auto st = acme::Manager::RolloverAccountKey(data_, s); !st) return Fail(st.error().message);
  std::cout << "the ACME account now uses the new key in " << data_ << "/acme/account.key\n";
  return 0;
}

}  // namespace hato::app
