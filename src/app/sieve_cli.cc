#include "app/sieve_cli.h"

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <sstream>

#include "app/open_store.h"
#include "app/serve.h"
#include "sieve/deliver.h"
#include "sieve/interpret.h"
#include "smtp/address.h"
#include "store/store.h"

namespace hato::app {
namespace {

int Fail(const std::string& msg) {
  std::cerr << "hato: " << msg << "\n";
  return 1;
}

Result<std::string> ReadScript(const std::string& path) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
    return ss.str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Err(ErrorKind::kNotFound, "cannot read " + path);
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

struct SieveCli::Opts {
  CLI::App *sieve, *put, *activate, *deactivate, *list, *get, *del, *check;
  std::string addr, name, file;
  std::vector<std::string> check_args;
};

SieveCli::SieveCli(CLI::App& app, std::string& data) : o_(std::make_unique<Opts>()), data_(data) {
  Opts& o = *o_;
  o.sieve = app.add_subcommand("sieve", "manage users' Sieve filters (RFC 5228)");
  o.put = o.sieve->add_subcommand("put", "store a script (checked first)");
  o.put->add_option("address", o.addr)->required();
  o.put->add_option("name", o.name)->required();
  o.put->add_option("file", o.file, "the script, or - for stdin")->required();
  o.activate = o.sieve->add_subcommand("activate", "make a script the one run at delivery");
  o.activate->add_option("address", o.addr)->required();
  o.activate->add_option("name", o.name)->required();
  o.deactivate = o.sieve->add_subcommand("deactivate", "run no script for the account");
  o.deactivate->add_option("address", o.addr)->required();
  o.list = o.sieve->add_subcommand("list", "the account's scripts and the last error");
  o.list->add_option("address", o.addr)->required();
  o.get = o.sieve->add_subcommand("get", "print a script");
  o.get->add_option("address", o.addr)->required();
  o.get->add_option("name", o.name)->required();
  o.del = o.sieve->add_subcommand("delete", "remove a script (not the active one)");
  o.del->add_option("address", o.addr)->required();
  o.del->add_option("name", o.name)->required();
  o.check = o.sieve->add_subcommand("check", "compile a script: FILE, or ADDR NAME");
  o.check->add_option("args", o.check_args)->required()->expected(1, 2);
  for (CLI::App* c : {o.put, o.activate, o.deactivate, o.list, o.get, o.del, o.check}) {
    c->add_option("--data", data, "data directory")->capture_default_str();
  }
  o.sieve->require_subcommand(1);
}

SieveCli::~SieveCli() = default;

int SieveCli::Run() {
  Opts& o = *o_;
  if (!o.sieve->parsed()) return -1;
  if (o.check->parsed() && o.check_args.size() == 1) {
    auto text = ReadScript(o.check_args[0]);
    if (!text) return Fail(text.error().message);
    auto script = sieve::Compile(*text);
    if (!script) return Fail(script.error().message);
    std::cout << "ok\n";
    return 0;
  }
  if (o.check->parsed()) {
    o.addr = o.check_args[0];
    o.name = o.check_args[1];
  }
  auto cfg = LoadConfig(data_);
  if (!cfg) return Fail(cfg.error().message);
  store::StoreOptions so;
  so.compress = cfg->store_compress;
  auto opened = OpenConfiguredStore(*cfg, data_, so);
  if (!opened) return Fail(opened.error().message);
  store::Store& s = **opened;
  auto mailbox = smtp::ParseMailbox(o.addr, true);
  if (!mailbox) return Fail("invalid address '" + o.addr + "'");
  auto account = s.FindAccount(smtp::AccountKey(*mailbox));
  if (!account) return Fail("no such account: " + o.addr);
  int64_t id = account->id;
  if (!o.name.empty()) {
    if (auto st = sieve::CheckScriptName(o.name); !st) return Fail(st.error().message);
  }

  if (o.put->parsed()) {
    auto text = ReadScript(o.file);
    if (!text) return Fail(text.error().message);
    // The operator's [sieve] limits, as for ManageSieve and JMAP.
    sieve::StoreCheck check = sieve::CheckStore(s, id, o.name, *text, cfg->sieve);
    if (!check.ok()) return Fail("script not stored: " + check.message);
    if (auto st = s.PutSieveScript(id, o.name, *text); !st) return Fail(st.error().message);
    std::cout << "stored " << o.name << " for " << account->address << "\n";
    return 0;
  }
  if (o.activate->parsed() || o.deactivate->parsed()) {
    if (auto st = s.SetActiveSieveScript(id, o.activate->parsed() ? o.name : ""); !st) {
      return Fail(st.error().message);
    }
    return 0;
  }
  if (o.list->parsed()) {
    auto list = s.ListSieveScripts(id);
    if (!list) return Fail(list.error().message);
    for (const auto& sc : *list) {
      std::cout << sc.name << (sc.active ? "\tactive" : "\t") << "\t" << sc.size << " bytes\n";
    }
    auto status = s.GetSieveStatus(id);
    if (status && !status->error.empty()) std::cout << "last error: " << status->error << "\n";
    return 0;
  }
  if (o.get->parsed() || o.check->parsed()) {
    auto text = s.GetSieveScript(id, o.name);
    if (!text) return Fail(text.error().message);
    if (o.get->parsed()) {
      std::cout << *text;
      return 0;
    }
    auto script = sieve::Compile(*text);
    if (!script) return Fail(script.error().message);
    std::cout << "ok\n";
    return 0;
  }
  if (o.del->parsed()) {
    if (auto st = s.DeleteSieveScript(id, o.name); !st) return Fail(st.error().message);
    return 0;
  }
  return -1;
}

}  // namespace hato::app
