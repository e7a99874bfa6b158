#include "app/shard_cli.h"

#include <CLI/CLI.hpp>
#include <ctime>
#include <iostream>

#include "app/open_store.h"
#include "app/serve.h"

namespace hato::app {

struct ShardCli::Opts {
  CLI::App* shards = nullptr;
  CLI::App* where = nullptr;
  CLI::App* move = nullptr;
  CLI::App* cleanup = nullptr;
  std::string address, to;
};

namespace {

constexpr int kExitError = 1;

int Fail(const std::string& msg) {
  std::cerr << "hato: " << msg << "\n";
  return kExitError;
}

}  // namespace

ShardCli::ShardCli(CLI::App& app, std::string& data) : o_(std::make_unique<Opts>()), data_(data) {
  auto* account = app.add_subcommand(
      "account", "where accounts' mail lives: PostgreSQL shards ([store.shards], issue 15)");
  account->require_subcommand(1);
  auto add_data = [&data](CLI::App* c) {
    c->add_option("--data", data, "data directory")->capture_default_str();
  };
  o_->shards = account->add_subcommand("shards", "list the shards and their live accounts");
  add_data(o_->shards);
  o_->where = account->add_subcommand("where", "show the shard that holds an account's mail");
  o_->where->add_option("address", o_->address, "the account")->required();
  add_data(o_->where);
  o_->move = account->add_subcommand(
      "move", "move an account's mail to another shard online (copy, verify, switch)");
  o_->move->add_option("address", o_->address, "the account")->required();
  o_->move->add_option("--to", o_->to, "the target shard (a name of [store.shards], or main)")
      ->required();
  add_data(o_->move);
  o_->cleanup = account->add_subcommand(
      "cleanup", "delete now the source copies of moves older than store.move_retention_hours");
  add_data(o_->cleanup);
}

ShardCli::~ShardCli() = default;

int ShardCli::Run() {
  bool any =
      o_->shards->parsed() || o_->where->parsed() || o_->move->parsed() || o_->cleanup->parsed();
  if (!any) return -1;
  auto cfg = LoadConfig(data_);
  if (!cfg) return Fail(cfg.error().message);
  if (cfg->store_backend != "postgres") {
    return Fail("accounts are placed on shards only with [store] backend = \"postgres\"");
  }
  auto pg = PostgresFromConfig(*cfg);
  auto sharding = ShardingFromConfig(*cfg);
  if (o_->shards->parsed()) {
    auto usage = store::ListShardUsage(pg, sharding);
    if (!usage) return Fail(usage.error().message);
    for (const auto& u : *usage) {
      std::cout << u.name << "\t" << u.accounts << " accounts" << (u.closed ? "\tclosed" : "")
                << "\n";
    }
    return 0;
  }
  if (o_->where->parsed()) {
    auto home = store::FindAccountHome(pg, o_->address);
    if (!home) return Fail(home.error().message);
    std::cout << home->shard;
    if (!home->moving_to.empty()) std::cout << "\tmoving to " << home->moving_to;
    if (!home->previous.empty()) {
      std::time_t t = home->delete_after;
      char buf[32];
      std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
      std::cout << "\told copy on " << home->previous << " until " << buf;
    }
    std::cout << "\n";
    return 0;
  }
  if (o_->move->parsed()) {
    auto report = store::MoveAccount(pg, sharding, o_->address, o_->to,
                                     [](const std::string& s) { std::cerr << s << "\n"; });
    if (!report) return Fail(report.error().message);
    std::cout << "moved " << o_->address << " from " << report->from << " to " << o_->to << ": "
              << report->mailboxes << " mailboxes, " << report->messages << " messages, "
              << report->bodies << " bodies (" << report->bytes << " bytes) copied; writes held "
              << report->freeze_ms << " ms\nchecksum " << report->digest
              << "\nverified: both copies match; the old copy is deleted after "
              << cfg->store_move_retention_hours << " hours\n";
    return 0;
  }
  // cleanup: the retention purge, which deletes the old copies that are due.
  store::StoreOptions so;
  so.compress = cfg->store_compress;
  auto opened = OpenConfiguredStore(*cfg, data_, so);
  if (!opened) return Fail(opened.error().message);
  int64_t cutoff = std::time(nullptr) - int64_t{cfg->retention_days} * 86400;
  auto n = (*opened)->PurgeExpired(cutoff);
  if (!n) return Fail(n.error().message);
  std::cout << "done\n";
  return 0;
}

}  // namespace hato::app
