#include "app/cli.h"

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <ctime>
#include <iostream>

#include "app/msgauth_cli.h"
#include "app/serve.h"
#include "app/tls.h"
#include "auth/password.h"
#include "base/log.h"
#include "base/strings.h"
#include "io/fs.h"
#include "mime/message.h"
#include "smtp/address.h"
#include "store/store.h"

namespace hato::app {
namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

int Fail(const std::string& msg) {
  std::cerr << "hato: " << msg << "\n";
  return kExitError;
}

// Opens the store of an initialised data dir, or explains what is missing.
Result<std::unique_ptr<store::Store>> OpenStore(const std::string& data) {
  auto cfg = LoadConfig(data);
  if (!cfg) return cfg.error();
  store::StoreOptions so;
  so.compress = cfg->store_compress;
  return store::OpenEmbeddedStore(data, so);
}

Result<std::string> ReadPassword(const std::string& flag_value, bool from_stdin) {
  if (from_stdin) {
    std::string line;
    if (!std::getline(std::cin, line)) return Err(ErrorKind::kInvalid, "no password on stdin");
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) return Err(ErrorKind::kInvalid, "empty password on stdin");
    return line;
  }
  if (flag_value.empty()) return Err(ErrorKind::kInvalid, "give --password P or --password-stdin");
  return flag_value;
}

Result<std::string> CanonicalAddress(const std::string& addr) {
  auto m = smtp::ParseMailbox(addr, true);
  if (!m) return Err(ErrorKind::kInvalid, "invalid address '" + addr + "': " + m.error().message);
  return smtp::AccountKey(*m);
}

// "none" (no limit), or a size in bytes with an optional K, M, G or T suffix
// (powers of 1024), e.g. "500M".
Result<std::optional<uint64_t>> ParseQuota(const std::string& text) {
  if (text == "none") return std::optional<uint64_t>();
  std::string digits = text;
  uint64_t unit = 1;
  if (!digits.empty()) {
    switch (digits.back()) {
      case 'K':
      case 'k':
        unit = 1ull << 10;
        break;
      case 'M':
      case 'm':
        unit = 1ull << 20;
        break;
      case 'G':
      case 'g':
        unit = 1ull << 30;
        break;
      case 'T':
      case 't':
        unit = 1ull << 40;
        break;
      default:
        break;
    }
    if (unit != 1) digits.pop_back();
  }
  auto n = ParseUint(digits);
  if (!n || *n > UINT64_MAX / unit || *n * unit > static_cast<uint64_t>(INT64_MAX)) {
    return Err(ErrorKind::kInvalid,
               "invalid quota '" + text + "' (expected none, or bytes such as 1048576 or 500M)");
  }
  return std::optional<uint64_t>(*n * unit);
}

int CmdInit(const std::string& data, const std::string& domain, std::string hostname) {
  auto* fs = io::FileSystem::Default();
  if (fs->Exists(data + "/hato.toml")) return Fail(data + " is already initialised");
  if (domain.empty() || domain.find('@') != std::string::npos || domain.find('.') == 0) {
    return Fail("invalid domain '" + domain + "'");
  }
  if (hostname.empty()) hostname = "mail." + domain;
  if (auto st = fs->CreateDirs(data + "/tls"); !st) return Fail(st.error().message);
  if (auto st = GenerateSelfSigned(data + "/tls/cert.pem", data + "/tls/key.pem", hostname); !st) {
    return Fail(st.error().message);
  }
  if (auto st = fs->WriteFileAtomic(data + "/hato.toml", config::DefaultText(hostname)); !st) {
    return Fail(st.error().message);
  }
  auto store = OpenStore(data);
  if (!store) return Fail(store.error().message);
  if (auto st = (*store)->AddDomain(domain); !st) return Fail(st.error().message);
  std::cout << "initialised " << data << " for domain " << domain << " (hostname " << hostname
            << ")\n";
  return 0;
}

const char* StateName(store::RecipientState s) {
  switch (s) {
    case store::RecipientState::kQueued:
      return "queued";
    case store::RecipientState::kHeld:
      return "held";
    case store::RecipientState::kDelivered:
      return "delivered";
    case store::RecipientState::kFailed:
      return "failed";
  }
  return "?";
}

std::string FormatTime(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

std::string FormatAge(int64_t seconds) {
  if (seconds < 120) return std::to_string(seconds) + "s";
  if (seconds < 7200) return std::to_string(seconds / 60) + "m";
  if (seconds < 172800) return std::to_string(seconds / 3600) + "h";
  return std::to_string(seconds / 86400) + "d";
}

// `hato queue list`: one line per message, then its open recipients.
int CmdQueueList(store::Store& s) {
  auto list = s.ListQueue();
  if (!list) return Fail(list.error().message);
  if (list->empty()) {
    std::cout << "queue is empty\n";
    return 0;
  }
  int64_t now = std::time(nullptr);
  std::cout << "ID\tAGE\tSIZE\tSENDER\tRECIPIENTS\n";
  size_t recipients = 0;
  for (const auto& m : *list) {
    std::cout << m.id << "\t" << FormatAge(now - m.created_at) << "\t" << m.size << "\t<"
              << m.sender << ">\t" << m.recipients.size() << "\n";
    for (const auto& r : m.recipients) {
      ++recipients;
      std::cout << "\t" << StateName(r.state) << "\t<" << r.address << ">";
      if (r.state == store::RecipientState::kQueued) {
        std::cout << "\tnext " << FormatTime(r.next_attempt_at) << "\tattempts " << r.attempts;
      }
      if (!r.last_error.empty()) std::cout << "\t" << r.last_error;
      std::cout << "\n";
    }
  }
  std::cout << list->size() << " messages, " << recipients << " recipients\n";
  return 0;
}

int CmdQueueShow(store::Store& s, int64_t id) {
  auto m = s.GetQueued(id);
  if (!m) return Fail(m.error().message);
  std::cout << "id: " << m->id << "\nqueued: " << FormatTime(m->created_at) << "\nsender: <"
            << m->sender << ">\nsize: " << m->size << "\n";
  if (!m->envid.empty()) std::cout << "envid: " << m->envid << "\n";
  std::cout << "return: " << (m->ret_hdrs ? "headers" : "full") << "\n";
  for (const auto& r : m->recipients) {
    std::cout << "recipient: <" << r.address << "> " << StateName(r.state) << ", " << r.attempts
              << " attempts";
    if (r.state == store::RecipientState::kQueued) {
      std::cout << ", next " << FormatTime(r.next_attempt_at);
    }
    if (r.dsn != store::DsnPending::kNone) std::cout << ", report owed to the sender";
    std::cout << "\n";
    if (!r.last_error.empty()) std::cout << "  last: " << r.last_error << "\n";
  }
  auto content = s.ReadQueuedContent(id);
  if (!content) return Fail(content.error().message);
  size_t end = content->find("\r\n\r\n");
  std::string header = content->substr(0, end == std::string::npos ? end : end + 2);
  std::cout << "\n";
  for (char c : header) {
    if (c != '\r') std::cout << c;
  }
  return 0;
}

}  // namespace

int RunCli(int argc, char** argv) {
  CLI::App app{"Hato: a mail server (SMTP, POP3) with a durable embedded store"};
  app.require_subcommand(1);
  std::string data = "./var";
  auto add_data = [&data](CLI::App* cmd) {
    cmd->add_option("--data", data, "data directory")->capture_default_str();
  };

  // init
  std::string domain, hostname;
  auto* init = app.add_subcommand("init", "create a data directory, config and TLS certificate");
  add_data(init);
  init->add_option("--domain", domain, "first local mail domain")->required();
  init->add_option("--hostname", hostname, "server host name (default mail.DOMAIN)");

  // domain add|list|remove
  auto* dom = app.add_subcommand("domain", "manage local domains");
  dom->require_subcommand(1);
  std::string dom_name;
  auto* dom_add = dom->add_subcommand("add", "add a local domain");
  dom_add->add_option("DOMAIN", dom_name)->required();
  auto* dom_list = dom->add_subcommand("list", "list local domains");
  auto* dom_rm = dom->add_subcommand("remove", "remove a domain that has no accounts");
  dom_rm->add_option("DOMAIN", dom_name)->required();
  for (auto* c : {dom_add, dom_list, dom_rm}) add_data(c);

  // user add|list|passwd|remove
  auto* user = app.add_subcommand("user", "manage accounts");
  user->require_subcommand(1);
  std::string addr, password;
  bool password_stdin = false;
  auto* u_add = user->add_subcommand("add", "add an account");
  auto* u_list = user->add_subcommand("list", "list accounts with message counts");
  auto* u_pw = user->add_subcommand("passwd", "set an account's password");
  auto* u_rm = user->add_subcommand("remove", "remove an account (mail kept for retention.days)");
  auto* u_quota = user->add_subcommand("quota", "set an account's storage quota (RFC 9208)");
  std::string quota_text;
  u_quota->add_option("ADDRESS", addr)->required();
  u_quota->add_option("SIZE", quota_text, "bytes, with K/M/G/T suffix, or none")->required();
  for (auto* c : {u_add, u_pw, u_rm}) c->add_option("ADDRESS", addr)->required();
  for (auto* c : {u_add, u_pw}) {
    auto* p = c->add_option("--password", password, "the password (visible in ps; prefer stdin)");
    c->add_flag("--password-stdin", password_stdin, "read the password from standard input")
        ->excludes(p);
  }
  for (auto* c : {u_add, u_list, u_pw, u_rm, u_quota}) add_data(c);

  // serve
  ServeOptions serve_opts;
  auto* serve = app.add_subcommand("serve", "run the mail server in the foreground");
  add_data(serve);
  serve->add_option("--smtp", serve_opts.overrides.smtp, "SMTP (MX) listener host:port");
  serve->add_option("--submission", serve_opts.overrides.submission,
                    "submission (STARTTLS) host:port");
  serve->add_option("--submissions", serve_opts.overrides.submissions,
                    "submission with implicit TLS host:port");
  serve->add_option("--imap", serve_opts.overrides.imap, "IMAP host:port");
  serve->add_option("--imaps", serve_opts.overrides.imaps, "IMAP over implicit TLS host:port");
  serve->add_option("--pop3", serve_opts.overrides.pop3, "POP3 host:port");
  serve->add_option("--http", serve_opts.overrides.http, "HTTP host:port");
  serve
      ->add_option("--shutdown-grace", serve_opts.shutdown_grace_seconds,
                   "seconds to let sessions finish on SIGTERM")
      ->capture_default_str();

  // queue list|show|retry|hold|release|delete
  auto* queue = app.add_subcommand("queue", "inspect and manage the outbound queue");
  queue->require_subcommand(1);
  int64_t queue_id = 0;
  auto* q_list = queue->add_subcommand("list", "list queued messages and their recipients");
  auto* q_show = queue->add_subcommand("show", "show one queued message");
  auto* q_retry = queue->add_subcommand("retry", "attempt delivery now");
  auto* q_hold = queue->add_subcommand("hold", "stop delivery attempts until released");
  auto* q_release = queue->add_subcommand("release", "resume delivery of a held message");
  auto* q_delete = queue->add_subcommand("delete", "remove a message from the queue (no report)");
  for (auto* c : {q_show, q_retry, q_hold, q_release, q_delete}) {
    c->add_option("ID", queue_id, "queue id (see hato queue list)")->required();
  }
  for (auto* c : {q_list, q_show, q_retry, q_hold, q_release, q_delete}) add_data(c);
  // reindex
  auto* reindex =
      app.add_subcommand("reindex", "fill the SEARCH text index for mail stored before it existed");
  add_data(reindex);

  // verify
  auto* verify = app.add_subcommand("verify", "check every stored message against its checksum");
  add_data(verify);

  // dkim generate (and hidden test drivers): src/app/msgauth_cli.h
  MsgAuthCli msgauth_cli(app, data);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "hato: " << e.what() << " (see hato --help)\n";
    return kExitUsage;
  }

  if (init->parsed()) return CmdInit(data, domain, hostname);
  if (int rc = msgauth_cli.Run(); rc >= 0) return rc;
  if (serve->parsed()) {
    InitLogging(false);
    serve_opts.data_dir = data;
    return Serve(serve_opts);
  }

  auto store = OpenStore(data);
  if (!store) return Fail(store.error().message);
  store::Store& s = **store;

  if (dom_add->parsed()) {
    if (auto st = s.AddDomain(dom_name); !st) return Fail(st.error().message);
    std::cout << "added domain " << dom_name << "\n";
  } else if (dom_list->parsed()) {
    auto list = s.ListDomains();
    if (!list) return Fail(list.error().message);
    for (const auto& d : *list) std::cout << d << "\n";
  } else if (dom_rm->parsed()) {
    if (auto st = s.RemoveDomain(dom_name); !st) return Fail(st.error().message);
    std::cout << "removed domain " << dom_name << "\n";
  } else if (u_add->parsed() || u_pw->parsed()) {
    auto canonical = CanonicalAddress(addr);
    if (!canonical) return Fail(canonical.error().message);
    auto pw = ReadPassword(password, password_stdin);
    if (!pw) return Fail(pw.error().message);
    auto hash = auth::HashPassword(*pw);
    if (!hash) return Fail(hash.error().message);
    if (u_add->parsed()) {
      if (auto st = s.AddAccount(*canonical, *hash); !st) return Fail(st.error().message);
      std::cout << "added " << *canonical << "\n";
    } else {
      if (auto st = s.SetPassword(*canonical, *hash); !st) return Fail(st.error().message);
      std::cout << "password changed for " << *canonical << "\n";
    }
  } else if (u_list->parsed()) {
    auto list = s.ListAccounts();
    if (!list) return Fail(list.error().message);
    for (const auto& a : *list) {
      std::cout << a.address << "\t" << a.messages << " messages\t" << a.bytes << " bytes";
      if (a.quota_bytes) std::cout << "\tquota " << *a.quota_bytes << " bytes";
      std::cout << "\n";
    }
  } else if (u_rm->parsed()) {
    auto canonical = CanonicalAddress(addr);
    if (!canonical) return Fail(canonical.error().message);
    if (auto st = s.RemoveAccount(*canonical); !st) return Fail(st.error().message);
    std::cout << "removed " << *canonical << "; its mail is kept for the retention period\n";
  } else if (u_quota->parsed()) {
    auto canonical = CanonicalAddress(addr);
    if (!canonical) return Fail(canonical.error().message);
    auto limit = ParseQuota(quota_text);
    if (!limit) return Fail(limit.error().message);
    if (auto st = s.SetQuota(*canonical, *limit); !st) return Fail(st.error().message);
    if (*limit) {
      std::cout << "quota of " << *canonical << " set to " << **limit << " bytes\n";
    } else {
      std::cout << "quota of " << *canonical << " removed\n";
    }
  } else if (q_list->parsed()) {
    return CmdQueueList(s);
  } else if (q_show->parsed()) {
    return CmdQueueShow(s, queue_id);
  } else if (q_retry->parsed() || q_hold->parsed() || q_release->parsed() || q_delete->parsed()) {
    store::QueueAction action = q_retry->parsed()     ? store::QueueAction::kRetry
                                : q_hold->parsed()    ? store::QueueAction::kHold
                                : q_release->parsed() ? store::QueueAction::kRelease
                                                      : store::QueueAction::kDelete;
    if (auto st = s.ApplyQueueAction(queue_id, action); !st) return Fail(st.error().message);
    const char* done = q_retry->parsed()     ? "will be retried now"
                       : q_hold->parsed()    ? "held"
                       : q_release->parsed() ? "released"
                                             : "deleted";
    std::cout << "message " << queue_id << " " << done << "\n";
  } else if (reindex->parsed()) {
    // The decoded text as delivery computes it (mime::ExtractSearchText),
    // from the stored MIME tree when there is one.
    auto extract = [](std::string_view content, std::string_view mime_tree) {
      std::optional<mime::Part> tree;
      if (!mime_tree.empty()) {
        auto t = mime::Deserialize(mime_tree);
        if (t) tree = std::move(*t);
      }
      if (!tree) tree = *mime::Parse(content);
      mime::SearchText t = mime::ExtractSearchText(content, *tree);
      return store::IndexText{std::move(t.header), std::move(t.body)};
    };
    auto n = s.IndexMissingText(extract);
    if (!n) return Fail(n.error().message);
    std::cout << *n << " bodies indexed\n";
  } else if (verify->parsed()) {
    auto report = s.Verify();
    if (!report) return Fail(report.error().message);
    for (const auto& p : report->problems) std::cout << "PROBLEM " << p << "\n";
    std::cout << report->blobs_checked << " bodies checked, " << report->problems.size()
              << " problems\n";
    return report->problems.empty() ? 0 : kExitError;
  }
  return 0;
}

}  // namespace hato::app
