#include "app/cli.h"

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "app/cert_cli.h"
#include "app/cli_docs.h"
#include "app/list_cli.h"
#include "app/msgauth_cli.h"
#include "app/open_store.h"
#include "app/reports_cli.h"
#include "app/serve.h"
#include "app/setup.h"
#include "app/shard_cli.h"
#include "app/sieve_cli.h"
#include "app/status_cli.h"
#include "app/tls.h"
#include "auth/password.h"
#include "auth/password_policy.h"
#include "auth/scram.h"
#include "backup/backup.h"
#include "base/log.h"
#include "base/strings.h"
#include "http/auth.h"
#include "io/fs.h"
#include "mime/message.h"
#include "search/extract.h"
#include "smtp/address.h"
#include "store/postgres/pg_store.h"
#include "store/store.h"
#include "transfer/migrate.h"
#include "transfer/transfer.h"

namespace hato::app {
namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
#ifdef HATO_VERSION
constexpr const char* kVersion = HATO_VERSION;
#else
constexpr const char* kVersion = "unknown";
#endif

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
  return OpenConfiguredStore(*cfg, data, so);
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
  // The domain in its one canonical form, the A-label (RFC 5890).
  if (m->domain.empty() || m->domain.front() != '[') {
    auto d = CanonicalHostName(m->domain, "domain");
    if (!d.ok) return Err(ErrorKind::kInvalid, "invalid address '" + addr + "': " + d.error);
    m->domain = d.name;
  }
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

bool IsPostgresTarget(const std::string& to) {
  return to.rfind("postgres://", 0) == 0 || to.rfind("postgresql://", 0) == 0 ||
         to.find("dbname=") != std::string::npos || to.find("host=") != std::string::npos;
}

// hato store copy (issue 15): the whole store of `data` into an empty
// PostgreSQL database, or into a new embedded data dir, from one consistent
// snapshot; then both sides' snapshots are compared by checksum and every
// copied body is re-read and verified. Mail written to the source after the
// snapshot is not copied: stop the server first.
int CmdStoreCopy(store::Store& src, const std::string& data, const std::string& to) {
  namespace fs = std::filesystem;
  auto cfg = LoadConfig(data);
  if (!cfg) return Fail(cfg.error().message);
  std::string tmpl = (fs::temp_directory_path() / "hato-copy-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) return Fail("cannot make a temporary directory");
  std::string tmp = tmpl;
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{tmp};
  std::string src_snap = tmp + "/source.db", dst_snap = tmp + "/target.db";
  if (auto st = src.SnapshotMetadata(src_snap); !st) return Fail(st.error().message);
  uint64_t messages = 0, copied = 0;
  auto want = store::SnapshotDigest(src_snap, messages);
  if (!want) return Fail(want.error().message);
  store::BodySource source = [&src](const store::BlobRef& ref) { return src.ReadBlob(ref); };
  store::StoreOptions so;
  so.compress = cfg->store_compress;
  std::unique_ptr<store::Store> target;
  if (IsPostgresTarget(to)) {
    store::PostgresOptions pg;
    pg.conninfo = to;
    pg.statement_timeout_ms = cfg->store_statement_timeout_ms;
    if (auto st = store::ImportSnapshotToPostgres(src_snap, pg, source); !st) {
      return Fail("copy to PostgreSQL failed (nothing was committed): " + st.error().message);
    }
    auto t = store::OpenPostgresStore(pg, so);
    if (!t) return Fail(t.error().message);
    target = std::move(*t);
  } else {
    if (fs::exists(to + "/hato.toml")) return Fail(to + " is already a data dir");
    if (auto st = store::RebuildStoreFromSnapshot(src_snap, to, {}, source); !st) {
      return Fail("copy to " + to + " failed: " + st.error().message);
    }
    // The new data dir gets the same configuration with the embedded store, and the keys.
    std::ifstream in(data + "/hato.toml");
    std::string line, text;
    while (std::getline(in, line)) {
      if (line.rfind("backend =", 0) == 0) line = "backend = \"embedded\"";
      text += line + "\n";
    }
    if (auto st = io::FileSystem::Default()->WriteFileAtomic(to + "/hato.toml", text); !st) {
      return Fail(st.error().message);
    }
    std::error_code ec;
    for (const char* sub : {"tls", "dkim"}) {
      if (fs::exists(data + "/" + sub)) {
        fs::copy(data + "/" + sub, to + "/" + sub, fs::copy_options::recursive, ec);
        if (ec) return Fail("cannot copy " + std::string(sub) + ": " + ec.message());
      }
    }
    auto t = store::OpenEmbeddedStore(to, so);
    if (!t) return Fail(t.error().message);
    target = std::move(*t);
  }
  if (auto st = target->SnapshotMetadata(dst_snap); !st) return Fail(st.error().message);
  auto got = store::SnapshotDigest(dst_snap, copied);
  if (!got) return Fail(got.error().message);
  auto report = target->Verify();
  if (!report) return Fail(report.error().message);
  for (const auto& p : report->problems) std::cout << "PROBLEM " << p << "\n";
  std::cout << "copied " << copied << " messages and " << report->blobs_checked << " bodies to "
            << (IsPostgresTarget(to) ? "PostgreSQL" : to) << "\n"
            << "source checksum " << *want << "\ntarget checksum " << *got << "\n";
  if (*want != *got || messages != copied || !report->problems.empty()) {
    return Fail("the copy does not match the source; do not switch to it");
  }
  std::cout << "verified: the copy matches the source\n";
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

// "2026-11-01" (UTC midnight) or unix seconds.
Result<int64_t> ParseDate(const std::string& s) {
  if (auto n = ParseUint(s)) return static_cast<int64_t>(*n);
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%Y-%m-%d", &tm);
  if (end == nullptr || *end != '\0') {
    return Err(ErrorKind::kInvalid, "bad date '" + s + "' (want YYYY-MM-DD or unix seconds)");
  }
  return static_cast<int64_t>(timegm(&tm));
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

// A queue id ("17") or the 16-hex-digit SMTP transaction id of the `250 ...
// queued as ID` reply and the log, found in the message's Received field.
Result<int64_t> ResolveQueueId(store::Store& s, const std::string& ref) {
  bool digits = !ref.empty() && ref.size() < 16 &&
                std::all_of(ref.begin(), ref.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (digits) return static_cast<int64_t>(*ParseUint(ref));
  bool hex = ref.size() == 16 && std::all_of(ref.begin(), ref.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
             });
  if (!hex) {
    return Err(ErrorKind::kInvalid,
               "bad message id '" + ref + "' (a queue id, or the 16-digit SMTP id)");
  }
  auto list = s.ListQueue();
  if (!list) return list.error();
  for (const auto& m : *list) {
    auto content = s.ReadQueuedContent(m.id);
    if (!content) continue;
    size_t end = content->find("\r\n\r\n");
    std::string_view header(*content);
    header = header.substr(0, end);
    if (header.find(" id " + ref + "\r\n") != std::string_view::npos) return m.id;
  }
  return Err(ErrorKind::kNotFound, "no queued message with SMTP id " + ref);
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

int PrintRestore(const Result<backup::RestoreResult>& r, bool merge) {
  if (!r) return Fail(r.error().message);
  for (const auto& p : r->problems) std::cerr << "hato: restore: " << p << "\n";
  double secs = std::max(r->seconds, 1e-3);
  std::cout << "restored set " << r->id << (merge ? " (merge): " : ": ") << r->messages
            << " messages, " << r->added << (merge ? " added, " : " bodies written, ") << r->skipped
            << " already present, " << r->problems.size() << " failed; "
            << static_cast<uint64_t>(r->added / secs) << " /s, " << r->bytes / 1e6 / secs
            << " MB/s\n";
  if (r->lists > 0) {
    std::cout << "merged " << r->lists << " mailing lists, " << r->list_members
              << " members added\n";
  }
  if (!r->lists_left_out.empty()) {
    // A subset merge (--account) leaves the lists it was not given alone:
    // said, so nobody takes a list's archive as restored when it was not.
    std::cout << "left out " << r->lists_left_out.size()
              << " mailing lists and their archives (name one with --account LIST@DOMAIN):";
    for (const auto& l : r->lists_left_out) std::cout << " " << l;
    std::cout << "\n";
  }
  return r->problems.empty() ? 0 : kExitError;
}

// A command line CLI11 refused: one line naming the (sub)command it was
// given to and pointing at that command's own --help ("hato user lst" ->
// "hato: unknown command 'lst' for 'hato user' (see hato user --help)").
int UsageError(const CLI::App& app, const CLI::ParseError& e) {
  const CLI::App* node = &app;
  std::string path = "hato";
  for (auto subs = node->get_subcommands(); !subs.empty(); subs = node->get_subcommands()) {
    node = subs.front();
    path += " " + node->get_name();
  }
  std::vector<std::string> extra = node->remaining();
  bool has_commands = !node->get_subcommands({}).empty();
  if (has_commands && !extra.empty() && !extra.front().empty() && extra.front()[0] != '-') {
    std::cerr << "hato: unknown command '" << extra.front() << "' for '" << path << "' (see "
              << path << " --help)\n";
  } else if (has_commands && extra.empty() && e.get_name() == "RequiredError") {
    std::cerr << "hato: '" << path << "' needs a command (see " << path << " --help)\n";
  } else {
    std::cerr << "hato: " << (node == &app ? "" : path.substr(5) + ": ") << e.what() << " (see "
              << path << " --help)\n";
  }
  return kExitUsage;
}

}  // namespace

int RunCli(int argc, char** argv) {
  CLI::App app{"Hato: a mail server (SMTP, submission, IMAP, POP3) with a durable embedded store"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("hato ") + kVersion, "print the version and exit");
  std::string data = "./var";
  auto add_data = [&data](CLI::App* cmd) {
    cmd->add_option("--data", data, "data directory")->capture_default_str();
  };

  // init, dns check (src/app/setup.h)
  InitOptions init_opts;
  auto* init = app.add_subcommand(
      "init", "create a data directory, config, TLS certificate and DKIM key; print DNS records");
  add_data(init);
  init->add_option("--domain", init_opts.domain, "first local mail domain")->required();
  init->add_option("--hostname", init_opts.hostname, "server host name (default mail.DOMAIN)");
  init->add_option("--ip", init_opts.addresses,
                   "public IPv4/IPv6 of the server, for the A/AAAA records (repeatable)");
  init->add_option("--postgres", init_opts.postgres,
                   "store mail in this PostgreSQL database (libpq URL or connection string); "
                   "a database other nodes use is attached to, never wiped");
  init->add_option("--dkim-selector", init_opts.dkim_selector, "selector of the DKIM key")
      ->capture_default_str();
  DnsCheckOptions dns_opts;
  auto* dns_cmd = app.add_subcommand("dns", "the DNS records of a local domain");
  dns_cmd->require_subcommand(1);
  auto* dns_check = dns_cmd->add_subcommand(
      "check", "compare the records hato init printed with what the resolver answers");
  dns_check->add_option("DOMAIN", dns_opts.domain)->required();
  dns_check->add_option("--resolver", dns_opts.resolver,
                        "resolver ip or ip@port (default: outbound.resolver, else the system's)");
  add_data(dns_check);
  DnsRecordsOptions dns_records_opts;
  auto* dns_records = dns_cmd->add_subcommand(
      "records", "print the records to publish now (MTA-STS id of the served policy, DKIM key)");
  dns_records->add_option("DOMAIN", dns_records_opts.domain)->required();
  add_data(dns_records);

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
  auto* u_signout = user->add_subcommand(
      "signout", "end the account's open sessions (IMAP, POP3, submission) everywhere");
  auto* u_quota = user->add_subcommand("quota", "set an account's storage quota (RFC 9208)");
  std::string quota_text;
  u_quota->add_option("ADDRESS", addr)->required();
  u_quota->add_option("SIZE", quota_text, "bytes, with K/M/G/T suffix, or none")->required();
  for (auto* c : {u_add, u_pw, u_rm, u_signout}) c->add_option("ADDRESS", addr)->required();
  for (auto* c : {u_add, u_pw}) {
    auto* p = c->add_option("--password", password, "the password (visible in ps; prefer stdin)");
    c->add_flag("--password-stdin", password_stdin, "read the password from standard input")
        ->excludes(p);
  }
  for (auto* c : {u_add, u_list, u_pw, u_rm, u_quota, u_signout}) add_data(c);

  // alias add|remove|list (issue 5)
  auto* alias = app.add_subcommand(
      "alias",
      "manage address aliases: mail to an alias goes to its account, which may send as it");
  alias->require_subcommand(1);
  std::string alias_addr;
  auto* a_add = alias->add_subcommand("add", "give an account another address");
  a_add
      ->add_option("ALIAS", alias_addr,
                   "the alias address (its domain must be local), or @DOMAIN for a catch-all")
      ->required();
  a_add->add_option("ACCOUNT", addr, "the account it delivers to")->required();
  auto* a_rm = alias->add_subcommand("remove", "remove an alias");
  a_rm->add_option("ALIAS", alias_addr)->required();
  auto* a_list = alias->add_subcommand("list", "list aliases and their accounts");
  a_list->add_option("ACCOUNT", addr, "only this account's aliases");
  for (auto* c : {a_add, a_rm, a_list}) add_data(c);

  // token add|list|revoke (issue 12): bearer tokens for HTTP API clients.
  auto* token = app.add_subcommand("token", "manage HTTP API tokens (bearer, RFC 6750)");
  token->require_subcommand(1);
  std::string token_label;
  int64_t token_days = 0, token_id = 0;
  auto* t_add = token->add_subcommand("add", "create a token for an account (printed once)");
  t_add->add_option("ADDRESS", addr)->required();
  t_add->add_option("--label", token_label, "what the token is for");
  t_add->add_option("--expires-days", token_days, "days until it expires; 0 = never")
      ->check(CLI::Range(0, 36500));
  auto* t_list = token->add_subcommand("list", "list an account's tokens (not their secrets)");
  t_list->add_option("ADDRESS", addr)->required();
  auto* t_revoke = token->add_subcommand("revoke", "revoke a token by its id");
  t_revoke->add_option("ADDRESS", addr)->required();
  t_revoke->add_option("ID", token_id)->required();
  for (auto* c : {t_add, t_list, t_revoke}) add_data(c);

  // serve
  ServeOptions serve_opts;
  auto* serve = app.add_subcommand("serve", "run the mail server in the foreground");
  add_data(serve);
  serve->add_option("--smtp", serve_opts.overrides.smtp,
                    "SMTP (MX) listener host:port (\"\" turns a listener off)");
  serve->add_option("--submission", serve_opts.overrides.submission,
                    "submission (STARTTLS) host:port");
  serve->add_option("--submissions", serve_opts.overrides.submissions,
                    "submission with implicit TLS host:port");
  serve->add_option("--imap", serve_opts.overrides.imap, "IMAP host:port");
  serve->add_option("--imaps", serve_opts.overrides.imaps, "IMAP over implicit TLS host:port");
  serve->add_option("--managesieve", serve_opts.overrides.managesieve,
                    "ManageSieve (RFC 5804) host:port");
  serve->add_option("--pop3", serve_opts.overrides.pop3, "POP3 host:port");
  serve->add_option("--pop3s", serve_opts.overrides.pop3s, "POP3 over implicit TLS host:port");
  serve->add_option("--http", serve_opts.overrides.http, "HTTP host:port");
  serve->add_option("--https", serve_opts.overrides.https, "HTTPS host:port (needs [tls])");
  serve
      ->add_option("--event-loops", serve_opts.event_loops,
                   "event-loop threads serving sessions (0 = one per core; default: [server] "
                   "event_loops)")
      ->check(CLI::Range(0, 256));
  serve
      ->add_option("--shutdown-grace", serve_opts.shutdown_grace_seconds,
                   "seconds to let sessions finish on SIGTERM")
      ->capture_default_str();

  // queue list|show|retry|hold|release|delete
  auto* queue = app.add_subcommand("queue", "inspect and manage the outbound queue");
  queue->require_subcommand(1);
  int64_t queue_id = 0;
  std::string queue_ref;
  auto* q_list = queue->add_subcommand("list", "list queued messages and their recipients");
  auto* q_show = queue->add_subcommand("show", "show one queued message");
  auto* q_retry = queue->add_subcommand("retry", "attempt delivery now");
  auto* q_hold = queue->add_subcommand("hold", "stop delivery attempts until released");
  auto* q_release = queue->add_subcommand("release", "resume delivery of a held message");
  auto* q_delete = queue->add_subcommand("delete", "remove a message from the queue (no report)");
  for (auto* c : {q_show, q_retry, q_hold, q_release, q_delete}) {
    c->add_option("ID", queue_ref,
                  "queue id (hato queue list), or the SMTP id of the 250 reply and the log")
        ->required();
  }
  for (auto* c : {q_list, q_show, q_retry, q_hold, q_release, q_delete}) add_data(c);
  // reindex
  auto* reindex = app.add_subcommand("reindex",
                                     "bring the SEARCH text index (DATA/index) up to date now; "
                                     "hato serve does it in the background");
  add_data(reindex);
  auto* u_restore =
      user->add_subcommand("restore", "bring back a removed account still in retention");
  u_restore->add_option("ADDRESS", addr)->required();
  add_data(u_restore);
  bool purge = false, yes = false, list_removed = false, add_new = false;
  int64_t purge_id = 0;
  std::string purge_backup;
  u_list->add_flag("--removed", list_removed,
                   "list removed accounts still in retention (ID, address, removal date)");
  u_add->add_flag("--new", add_new,
                  "add a new, empty account even though a removed one with this address is "
                  "in retention");
  bool add_admin = false;
  u_add->add_flag("--admin", add_admin, "give the account the admin role (the web admin console)");
  // admin grant|revoke|list: the admin role (web/admin_api.h)
  auto* admin_cmd = app.add_subcommand("admin", "the admin role of the web admin console");
  admin_cmd->require_subcommand(1);
  auto* adm_grant = admin_cmd->add_subcommand("grant", "give an account the admin role");
  auto* adm_revoke = admin_cmd->add_subcommand("revoke", "take the admin role away");
  auto* adm_list = admin_cmd->add_subcommand("list", "list the accounts with the admin role");
  for (auto* c : {adm_grant, adm_revoke}) c->add_option("ADDRESS", addr)->required();
  for (auto* c : {adm_grant, adm_revoke, adm_list}) add_data(c);
  u_rm->add_option("--id", purge_id,
                   "with --purge: the removed account to purge (see hato user list --removed)");
  u_rm->add_flag("--purge", purge, "destroy the account and its mail now (after a backup)");
  u_rm->add_flag("--yes", yes, "confirm --purge");
  u_rm->add_option("--backup", purge_backup,
                   "backup destination for --purge (default DATA/purge-backups)");

  // backup create|list|verify, restore
  std::string dest, backup_id;
  std::vector<std::string> restore_accounts;
  bool merge = false, accounts_only = false;
  auto* bk = app.add_subcommand("backup", "online, incremental, verified backups");
  bk->require_subcommand(1);
  auto* bk_create = bk->add_subcommand("create", "back up the store to DEST while it runs");
  auto* bk_list = bk->add_subcommand("list", "list the backup sets in DEST");
  auto* bk_verify = bk->add_subcommand("verify", "re-read a backup and check every checksum");
  auto* bk_prune =
      bk->add_subcommand("prune", "remove the oldest sets, keeping the newest N, and their bodies");
  for (auto* c : {bk_create, bk_list, bk_verify, bk_prune}) {
    c->add_option("DEST", dest)->required();
  }
  bool bk_create_dest = false;
  bk_create->add_flag("--create", bk_create_dest,
                      "start a new backup destination (DEST missing or empty)");
  size_t bk_keep = 0;
  bk_prune->add_option("--keep", bk_keep, "complete sets to keep (at least 1)")->required();
  bk_verify->add_option("--backup", backup_id, "the set to check (default: all)");
  add_data(bk_create);
  auto* restore = app.add_subcommand("restore", "restore from a backup (see docs/operations.md)");
  restore->add_option("DEST", dest)->required();
  restore->add_option("--backup", backup_id, "the set (default: the newest complete one)");
  restore->add_option("--account", restore_accounts,
                      "restore only this account, or this list with its archive (repeatable)");
  restore->add_flag("--merge", merge, "merge into the live store (the server may run)");
  restore->add_flag("--accounts-only", accounts_only,
                    "domains, accounts and folders only, no messages (recovery step)");
  add_data(restore);

  // fsck
  bool repair = false;
  auto* fsck = app.add_subcommand("fsck", "check every body and reference; repair from a backup");
  fsck->add_flag("--repair", repair,
                 "recount mailbox counters; rewrite damaged bodies from --backup DEST");
  fsck->add_option("--backup", dest, "backup destination to repair from");
  add_data(fsck);

  // undelete
  std::string folder, since;
  auto* undelete =
      app.add_subcommand("undelete", "bring back expunged or POP3-deleted mail in retention");
  undelete->add_option("ADDRESS", addr)->required();
  undelete->add_option("--folder", folder, "only this folder");
  undelete->add_option("--since", since, "only mail deleted since (YYYY-MM-DD or unix time)");
  add_data(undelete);

  // export, import
  std::string format = "mbox", out_path;
  auto* exp = app.add_subcommand("export", "write an account's folders as mbox or Maildir");
  exp->add_option("ADDRESS", addr)->required();
  exp->add_option("OUT", out_path, "output directory (created; must be empty)")->required();
  exp->add_option("--format", format, "mbox or maildir")
      ->check(CLI::IsMember({"mbox", "maildir"}))
      ->capture_default_str();
  auto* imp = app.add_subcommand("import", "import mbox files or a Maildir into an account");
  imp->add_option("ADDRESS", addr)->required();
  imp->add_option("PATH", out_path, "an mbox file, a directory of them, or a Maildir")->required();
  imp->add_option("--folder", folder, "folder for a single mbox file or the Maildir root");
  for (auto* c : {exp, imp}) add_data(c);

  // migrate
  std::string from_url, password_file;
  bool insecure = false;
  auto* migrate =
      app.add_subcommand("migrate", "copy an account from another IMAP server (resumable)");
  migrate->add_option("ADDRESS", addr)->required();
  migrate->add_option("--from", from_url, "imaps://user@host[:port] (imap:// for loopback)")
      ->required();
  auto* pf = migrate->add_option("--password-file", password_file, "file holding the password");
  migrate->add_flag("--password-stdin", password_stdin, "read the password from standard input")
      ->excludes(pf);
  migrate->add_flag("--insecure", insecure, "do not verify the source's TLS certificate");
  add_data(migrate);

  // verify
  auto* verify = app.add_subcommand("verify", "check every stored message against its checksum");
  add_data(verify);
  auto* store_cmd = app.add_subcommand("store", "the store as a whole");
  auto* store_copy = store_cmd->add_subcommand(
      "copy", "copy the whole store to PostgreSQL or a new data dir, verified by checksums");
  add_data(store_copy);
  std::string copy_to;
  store_copy
      ->add_option("--to", copy_to, "postgres://... (an empty database) or a new data directory")
      ->required();

  // dkim generate (and hidden test drivers): src/app/msgauth_cli.h
  MsgAuthCli msgauth_cli(app, data);
  // sieve (issue 19): src/app/sieve_cli.h
  SieveCli sieve_cli(app, data);
  // list (issue 14): src/app/list_cli.h
  ListCli list_cli(app, data);
  // status note|publish: src/app/status_cli.h
  StatusCli status_cli(app, data);
  // account shards|where|move|cleanup (issue 15): src/app/shard_cli.h
  ShardCli shard_cli(app, data);
  // reports send (issue 18): src/app/reports_cli.h
  ReportsCli reports_cli(app, data);
  // cert revoke|rollover (issue 18): src/app/cert_cli.h
  CertCli cert_cli(app, data);

  // Documentation generated from this command tree (src/app/cli_docs.h).
  auto* man = app.add_subcommand("man", "print the man page hato(1) (roff)");
  auto* completion = app.add_subcommand("completion", "print a shell completion script");
  completion->require_subcommand(1);
  auto* completion_bash =
      completion->add_subcommand("bash",
                                 "bash completion (source it, or install it in "
                                 "/usr/share/bash-completion/completions/hato)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return UsageError(app, e);
  }

  if (man->parsed()) {
    std::cout << ManPage(app, std::string("hato ") + kVersion);
    return 0;
  }
  if (completion_bash->parsed()) {
    std::cout << BashCompletion(app);
    return 0;
  }
  if (init->parsed()) {
    init_opts.data = data;
    return InitDataDir(init_opts);
  }
  if (dns_records->parsed()) {
    dns_records_opts.data = data;
    return DnsRecords(dns_records_opts);
  }
  if (dns_check->parsed()) {
    dns_opts.data = data;
    return DnsCheck(dns_opts);
  }
  if (int rc = msgauth_cli.Run(); rc >= 0) return rc;
  if (int rc = sieve_cli.Run(); rc >= 0) return rc;
  if (int rc = list_cli.Run(); rc >= 0) return rc;
  if (int rc = reports_cli.Run(); rc >= 0) return rc;
  if (int rc = cert_cli.Run(); rc >= 0) return rc;
  if (int rc = status_cli.Run(); rc >= 0) return rc;
  if (int rc = shard_cli.Run(); rc >= 0) return rc;
  if (bk_list->parsed()) {
    auto sets = backup::ListBackups(dest);
    if (!sets) return Fail(sets.error().message);
    for (const auto& s : *sets) {
      if (!s.complete) {
        std::cout << s.id << "\tINCOMPLETE\t" << s.problem << "\n";
        continue;
      }
      auto c = s.manifest.counts;
      std::cout << s.id << "\t" << FormatTime(s.manifest.created) << "\t" << c["accounts"]
                << " accounts\t" << c["messages"] << " messages\t" << c["bodies"] << " bodies\t"
                << c["body_bytes"] << " bytes\t" << c["copied_bodies"] << " new\n";
    }
    return 0;
  }
  if (bk_prune->parsed()) {
    auto r = backup::PruneBackups(dest, bk_keep);
    if (!r) return Fail(r.error().message);
    for (const auto& id : r->removed_sets) std::cout << "removed set " << id << "\n";
    std::cout << r->removed_sets.size() << " sets and " << r->removed_bodies << " bodies ("
              << r->removed_bytes << " bytes) removed\n";
    if (r->bodies_kept) {
      std::cout << "bodies kept: an incomplete set (a backup running or interrupted) is in " << dest
                << "\n";
    }
    return 0;
  }
  if (bk_verify->parsed()) {
    auto r = backup::VerifyBackup(dest, backup_id);
    if (!r) return Fail(r.error().message);
    for (const auto& p : r->problems) std::cout << "PROBLEM " << p << "\n";
    std::cout << r->sets << " sets, " << r->bodies << " bodies (" << r->bytes << " bytes) checked, "
              << r->problems.size() << " problems\n";
    return r->problems.empty() ? 0 : kExitError;
  }
  if (restore->parsed() && !merge) {
    backup::RestoreOptions ro{backup_id, {}, accounts_only};
    for (const auto& a : restore_accounts) {
      auto c = CanonicalAddress(a);
      if (!c) return Fail(c.error().message);
      ro.accounts.push_back(*c);
    }
    return PrintRestore(backup::RestoreInto(dest, data, ro), false);
  }
  if (serve->parsed()) {
    InitLogging(false);
    serve_opts.data_dir = data;
    return Serve(serve_opts);
  }

  auto store = OpenStore(data);
  if (!store) return Fail(store.error().message);
  store::Store& s = **store;
  if (!queue_ref.empty()) {  // hato queue show|retry|hold|release|delete ID
    auto id = ResolveQueueId(s, queue_ref);
    if (!id) return Fail(id.error().message);
    queue_id = *id;
  }

  if (dom_add->parsed() || dom_rm->parsed()) {
    // One canonical form, the A-label (RFC 5890): "bücher.example" is stored
    // as "xn--bcher-kva.example" and mail to either form is local.
    auto canonical = CanonicalHostName(dom_name, "domain");
    if (!canonical.ok) return Fail(canonical.error);
    dom_name = canonical.name;
  }
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
    auto cfg = LoadConfig(data);
    if (!cfg) return Fail(cfg.error().message);
    auth::PasswordPolicy policy{cfg->auth.min_password_length, cfg->auth.refuse_common_passwords};
    if (auto st = auth::CheckPassword(*pw, *canonical, policy); !st) {
      return Fail(*canonical + ": " + st.error().message);
    }
    auto hash = auth::HashPassword(*pw);
    if (!hash) return Fail(hash.error().message);
    auto scram = auth::NewScramVerifier(*pw);  // SCRAM-SHA-256 logins (RFC 7677)
    if (!scram) return Fail(scram.error().message);
    if (u_add->parsed()) {
      // A removed account in retention with this address: restoring it is
      // probably what is wanted; a new one must be asked for (defect 7).
      auto removed = s.ListRemovedAccounts();
      if (!removed) return Fail(removed.error().message);
      for (const auto& r : *removed) {
        if (r.address != *canonical || add_new) continue;
        return Fail(*canonical + " was removed on " + FormatTime(r.removed_at) +
                    " and its mail is still in retention: hato user restore " + *canonical +
                    " brings it back; hato user add " + *canonical +
                    " --new creates a new, empty account instead");
      }
      if (auto st = s.AddAccount(*canonical, *hash, *scram); !st) return Fail(st.error().message);
      if (add_admin) {
        if (auto st = s.SetAdmin(*canonical, true); !st) return Fail(st.error().message);
      }
      std::cout << "added " << *canonical << (add_admin ? " (admin)" : "") << "\n";
    } else {
      if (auto st = s.SetPassword(*canonical, *hash, *scram); !st) {
        return Fail(st.error().message);
      }
      std::cout << "password changed for " << *canonical << "\n";
    }
  } else if (adm_grant->parsed() || adm_revoke->parsed()) {
    auto canonical = CanonicalAddress(addr);
    if (!canonical) return Fail(canonical.error().message);
    bool grant = adm_grant->parsed();
    if (auto st = s.SetAdmin(*canonical, grant); !st) return Fail(st.error().message);
    std::cout << *canonical << (grant ? " is an admin\n" : " is no longer an admin\n");
  } else if (adm_list->parsed()) {
    auto list = s.ListAccounts();
    if (!list) return Fail(list.error().message);
    for (const auto& a : *list) {
      if (a.admin) std::cout << a.address << "\n";
    }
  } else if (u_list->parsed() && list_removed) {
    auto list = s.ListRemovedAccounts();
    if (!list) return Fail(list.error().message);
    auto cfg = LoadConfig(data);
    if (!cfg) return Fail(cfg.error().message);
    for (const auto& a : *list) {
      std::cout << a.id << "\t" << a.address << "\tremoved " << FormatTime(a.removed_at) << "\t"
                << a.messages << " messages\t" << a.bytes << " bytes\tpurged after "
                << FormatTime(a.removed_at + int64_t{cfg->retention_days} * 86400) << "\n";
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
    if (purge) {
      if (!yes) return Fail("--purge destroys " + *canonical + " and its mail now; add --yes");
      // Exactly one account: the live one, or with --id (or when it is the
      // only one) a removed one; never every account that had the address.
      int64_t target = 0;
      auto removed = s.ListRemovedAccounts();
      if (!removed) return Fail(removed.error().message);
      std::vector<int64_t> removed_ids;
      for (const auto& r : *removed) {
        if (r.address == *canonical) removed_ids.push_back(r.id);
      }
      if (purge_id != 0) {
        if (std::find(removed_ids.begin(), removed_ids.end(), purge_id) == removed_ids.end()) {
          return Fail("no removed account " + *canonical + " with id " + std::to_string(purge_id) +
                      " (see hato user list --removed)");
        }
        target = purge_id;
      } else if (auto live = s.FindAccount(*canonical); live) {
        target = live->id;
      } else if (removed_ids.size() == 1) {
        target = removed_ids.front();
      } else if (removed_ids.empty()) {
        return Fail("no such account: " + *canonical);
      } else {
        return Fail(std::to_string(removed_ids.size()) + " removed accounts " + *canonical +
                    " are in retention: choose one with --id (see hato user list --removed)");
      }
      if (purge_backup.empty()) purge_backup = data + "/purge-backups";
      auto m = backup::CreateBackup(s, data, purge_backup);
      if (!m) return Fail("backup before purge failed, nothing purged: " + m.error().message);
      if (auto st = s.PurgeAccountById(target); !st) return Fail(st.error().message);
      std::cout << "purged " << *canonical << "; backup " << m->id << " in " << purge_backup
                << " (hato restore " << purge_backup << " --backup " << m->id
                << " --merge --account " << *canonical << ")\n";
      return 0;
    }
    if (auto st = s.RemoveAccount(*canonical); !st) return Fail(st.error().message);
    std::cout << "removed " << *canonical << "; its mail is kept for the retention period\n";
  } else if (u_signout->parsed()) {
    // Recorded in the store; a running server ends the sessions within about
    // a second (server/account_sessions.h).
    auto canonical = CanonicalAddress(addr);
    if (!canonical) return Fail(canonical.error().message);
    if (auto st = s.EndSessions(*canonical); !st) return Fail(st.error().message);
    std::cout << "sessions of " << *canonical << " end within a few seconds\n";
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
  } else if (a_add->parsed() || a_rm->parsed()) {
    // "@DOMAIN": the domain's catch-all (mail to any address nothing else claims).
    Result<std::string> canonical = std::string();
    if (alias_addr.rfind('@', 0) == 0) {
      auto d = CanonicalHostName(alias_addr.substr(1), "domain");
      if (!d.ok) return Fail(d.error);
      canonical = "@" + d.name;
    } else {
      canonical = CanonicalAddress(alias_addr);
    }
    if (!canonical) return Fail(canonical.error().message);
    if (a_rm->parsed()) {
      if (auto st = s.RemoveAlias(*canonical); !st) return Fail(st.error().message);
      std::cout << "removed alias " << *canonical << "\n";
      return 0;
    }
    auto account = CanonicalAddress(addr);
    if (!account) return Fail(account.error().message);
    if (auto st = s.AddAlias(*canonical, *account); !st) return Fail(st.error().message);
    std::cout << "added alias " << *canonical << " -> " << *account << "\n";
  } else if (a_list->parsed()) {
    std::string account;
    if (!addr.empty()) {
      auto c = CanonicalAddress(addr);
      if (!c) return Fail(c.error().message);
      account = *c;
    }
    auto list = s.ListAliases(account);
    if (!list) return Fail(list.error().message);
    for (const auto& a : *list) {
      std::cout << a.alias << "\t" << a.account;
      if (a.account_removed) std::cout << "\t(account removed: inactive)";
      std::cout << "\n";
    }
  } else if (t_add->parsed() || t_list->parsed() || t_revoke->parsed()) {
    auto canonical = CanonicalAddress(addr);
    if (!canonical) return Fail(canonical.error().message);
    auto account = s.FindAccount(*canonical);
    if (!account) return Fail(account.error().message);
    if (t_add->parsed()) {
      auto t = http::CreateToken(s, account->id, "api", token_label, token_days * 86400);
      if (!t) return Fail(t.error().message);
      std::cout << t->token << "\n";
      std::cerr << "token " << t->id << " for " << *canonical
                << " (shown once; use it as Authorization: Bearer TOKEN)\n";
    } else if (t_list->parsed()) {
      auto list = s.ListTokens(account->id, std::time(nullptr));
      if (!list) return Fail(list.error().message);
      for (const auto& t : *list) {
        std::cout << t.id << "\t" << t.kind << "\t" << (t.label.empty() ? "-" : t.label)
                  << "\tcreated " << t.created_at << "\texpires "
                  << (t.expires_at ? std::to_string(t.expires_at) : "never") << "\n";
      }
    } else {
      if (auto st = s.RevokeToken(account->id, token_id); !st) return Fail(st.error().message);
      std::cout << "revoked token " << token_id << "\n";
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
    auto n = s.IndexMissingText(search::ExtractIndexText);
    if (!n) return Fail(n.error().message);
    std::cout << *n << " bodies indexed\n";
  } else if (u_restore->parsed()) {
    auto canonical = CanonicalAddress(addr);
    if (!canonical) return Fail(canonical.error().message);
    if (auto st = s.RestoreAccount(*canonical); !st) return Fail(st.error().message);
    std::cout << "restored " << *canonical << "\n";
  } else if (bk_create->parsed()) {
    if (auto st = backup::CheckDestination(dest, bk_create_dest); !st) {
      return Fail(st.error().message);
    }
    auto m = backup::CreateBackup(s, data, dest);
    if (!m) return Fail("backup to " + dest + " failed: " + m.error().message);
    auto c = m->counts;
    double secs = std::max(c["seconds_x1000"] / 1000.0, 1e-3);
    std::cout << "backup " << m->id << ": " << c["accounts"] << " accounts, " << c["messages"]
              << " messages, " << c["bodies"] << " bodies (" << c["copied_bodies"] << " new, "
              << c["copied_bytes"] << " bytes copied) in " << secs << " s ("
              << static_cast<uint64_t>(c["messages"] / secs) << " messages/s, "
              << c["body_bytes"] / 1e6 / secs << " MB/s)\n";
  } else if (restore->parsed()) {
    backup::RestoreOptions ro{backup_id, {}, accounts_only};
    for (const auto& a : restore_accounts) {
      auto c = CanonicalAddress(a);
      if (!c) return Fail(c.error().message);
      ro.accounts.push_back(*c);
    }
    return PrintRestore(backup::RestoreMerge(dest, s, ro), true);
  } else if (fsck->parsed()) {
    auto r = backup::Fsck(s, repair, dest);
    if (!r) return Fail(r.error().message);
    for (const auto& p : r->problems) std::cout << "PROBLEM " << p << "\n";
    for (const auto& p : r->unrepaired) std::cout << "UNREPAIRED " << p << "\n";
    std::cout << r->bodies << " bodies checked, " << r->problems.size() << " problems";
    if (repair) std::cout << ", " << r->repaired << " repaired";
    std::cout << "\n";
    if (repair) return r->unrepaired.empty() ? 0 : kExitError;
    return r->problems.empty() ? 0 : kExitError;
  } else if (undelete->parsed()) {
    auto canonical = CanonicalAddress(addr);
    if (!canonical) return Fail(canonical.error().message);
    int64_t since_t = 0;
    if (!since.empty()) {
      auto t = ParseDate(since);
      if (!t) return Fail(t.error().message);
      since_t = *t;
    }
    auto acct = s.FindAccount(*canonical);
    if (!acct) return Fail(acct.error().message);
    auto n = s.Undelete(acct->id, folder, since_t);
    if (!n) return Fail(*canonical + ": " + n.error().message);
    std::cout << "undeleted " << *n << " messages for " << *canonical << "\n";
  } else if (exp->parsed() || imp->parsed()) {
    auto canonical = CanonicalAddress(addr);
    if (!canonical) return Fail(canonical.error().message);
    auto acct = s.FindAccount(*canonical);
    if (!acct) return Fail(acct.error().message);
    auto r = exp->parsed() ? transfer::Export(s, acct->id,
                                              format == "maildir" ? transfer::Format::kMaildir
                                                                  : transfer::Format::kMbox,
                                              out_path)
                           : transfer::Import(s, acct->id, out_path, folder);
    const char* what = exp->parsed() ? "export" : "import";
    if (!r)
      return Fail(std::string(what) + " " + *canonical + " " + out_path + ": " + r.error().message);
    for (const auto& p : r->problems) std::cerr << "hato: " << what << ": " << p << "\n";
    double secs = std::max(r->seconds, 1e-3);
    std::cout << what << " " << *canonical << ": " << r->messages << " messages";
    if (imp->parsed())
      std::cout << " (" << r->added << " added, " << r->skipped << " already present)";
    std::cout << ", " << r->problems.size() << " failed, " << r->bytes << " bytes in " << secs
              << " s (" << static_cast<uint64_t>(r->messages / secs) << " messages/s)\n";
    return r->problems.empty() ? 0 : kExitError;
  } else if (migrate->parsed()) {
    auto canonical = CanonicalAddress(addr);
    if (!canonical) return Fail(canonical.error().message);
    auto acct = s.FindAccount(*canonical);
    if (!acct) return Fail(acct.error().message);
    auto src = transfer::ParseMigrateUrl(from_url);
    if (!src) return Fail(src.error().message);
    src->verify_tls = !insecure;
    if (!password_file.empty()) {
      auto text = io::FileSystem::Default()->ReadFile(password_file);
      if (!text) return Fail(text.error().message);
      std::string pw = *text;
      while (!pw.empty() && (pw.back() == '\n' || pw.back() == '\r')) pw.pop_back();
      src->password = pw;
    } else {
      auto pw = ReadPassword("", password_stdin);
      if (!pw) return Fail("give --password-stdin or --password-file");
      src->password = *pw;
    }
    auto r = transfer::Migrate(s, acct->id, *canonical, *src, data + "/migrate");
    if (!r) return Fail("migrate " + *canonical + " from " + from_url + ": " + r.error().message);
    for (const auto& p : r->problems) std::cerr << "hato: migrate: " << p << "\n";
    double secs = std::max(r->seconds, 1e-3);
    std::cout << "migrate " << *canonical << ": " << r->folders << " folders, " << r->fetched
              << " messages fetched (" << r->added << " added, " << r->skipped
              << " already present), " << r->problems.size() << " failed, " << r->bytes
              << " bytes in " << secs << " s (" << static_cast<uint64_t>(r->fetched / secs)
              << " messages/s)\n";
    return r->problems.empty() ? 0 : kExitError;
  } else if (store_copy->parsed()) {
    return CmdStoreCopy(s, data, copy_to);
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
