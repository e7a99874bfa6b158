#include "app/reports_cli.h"

#include <CLI/CLI.hpp>
#include <ctime>
#include <iostream>

#include "app/open_store.h"
#include "app/serve.h"
#include "dns/blocking_lookup.h"
#include "reports/send.h"

namespace hato::app {

struct ReportsCli::Opts {
  CLI::App* send = nullptr;
  bool today = false;
  std::string resolver;
};

namespace {

constexpr int kExitError = 1;
constexpr int kDnsTimeoutSeconds = 10;  // per query
constexpr int kDnsBudgetSeconds = 300;  // all the queries of one run

int Fail(const std::string& msg) {
  std::cerr << "hato: " << msg << "\n";
  return kExitError;
}

}  // namespace

ReportsCli::ReportsCli(CLI::App& app, std::string& data)
    : o_(std::make_unique<Opts>()), data_(data) {
  auto* reports = app.add_subcommand("reports", "TLS-RPT and DMARC aggregate reports");
  reports->require_subcommand(1);
  o_->send = reports->add_subcommand(
      "send", "queue the reports of the recorded days that have ended (the server sends daily)");
  o_->send->add_flag("--today", o_->today, "also report the current UTC day so far");
  o_->send->add_option("--resolver", o_->resolver,
                       "resolver ip or ip@port (default: outbound.resolver, else the system's)");
  o_->send->add_option("--data", data, "data directory")->capture_default_str();
}

ReportsCli::~ReportsCli() = default;

int ReportsCli::Run() {
  if (!o_->send->parsed()) return -1;
  auto cfg = LoadConfig(data_);
  if (!cfg) return Fail(cfg.error().message);
  store::StoreOptions so;
  so.compress = cfg->store_compress;
  auto store = OpenConfiguredStore(*cfg, data_, so);
  if (!store) return Fail(store.error().message);
  dns::LookupOptions lo;
  lo.forward_to = o_->resolver.empty() ? cfg->outbound.resolver : o_->resolver;
  lo.query_timeout = std::chrono::seconds(kDnsTimeoutSeconds);
  auto shared = dns::OpenSharedLookup(lo);
  if (!shared) return Fail(shared.error().message);
  dns::BudgetLookup lookup(*shared, std::chrono::seconds(kDnsBudgetSeconds));
  reports::SendOptions opts;
  opts.now = std::time(nullptr);
  opts.include_today = o_->today;
  opts.resolver = lo.forward_to;
  opts.ca_file = cfg->outbound.tls_ca_file;
  auto sent = reports::SendDueReports(**store, data_, *cfg, lookup, opts);
  if (!sent) return Fail(sent.error().message);
  for (const auto& line : sent->log) std::cout << line << "\n";
  std::cout << sent->reports << " reports queued, " << sent->posted << " posted, " << sent->skipped
            << " domains without a reporting address\n";
  return 0;
}

}  // namespace hato::app
