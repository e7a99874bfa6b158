#include "smtp/server.h"

#include <spdlog/spdlog.h>

#include <ctime>
#include <random>
#include <set>

#include "auth/scram.h"
#include "base/strings.h"
#include "dns/resolver.h"
#include "imap/server/url_fetch.h"
#include "imap/server/urlauth.h"
#include "io/await.h"
#include "io/net.h"
#include "mime/header.h"
#include "mime/message.h"
#include "outbound/srs.h"
#include "scan/client.h"
#include "server/login.h"
#include "server/message_hygiene.h"
#include "sieve/deliver.h"
#include "smtp/command.h"
#include "smtp/data_reader.h"
#include "store/cached_lookups.h"
#include "store/wait.h"

namespace hato::smtp {
namespace {

using std::chrono::seconds;

// The longest wait before a 5xx RCPT reply (smtp.bad_rcpt_delay_ms grows to it).
constexpr std::chrono::milliseconds kMaxBadRcptDelay{30000};

// RFC 4954 section 4: a SASL response line may be long; 12288 octets is the
// limit of many servers.
constexpr size_t kMaxAuthLine = 12288;

std::string NewTransactionId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

// RFC 5322 section 3.3 date-time, in UTC.
std::string Rfc5322Date(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

class Session final : public server::SessionRegistry::Member,
                      public server::AccountSessions::Member {
 public:
  Session(server::Services& services, tcp::socket socket, Mode mode)
      : svc_(services),
        conn_(std::move(socket), services.tls),
        cfg_(services.config->Get()),
        submission_(mode != Mode::kMx),
        implicit_tls_(mode == Mode::kSubmissionImplicitTls),
        charge_(services.memory ? services.memory->Open(conn_.peer_ip())
                                : server::MemoryBudget::Charge()) {
    // A client that stops reading our replies is cut off like an idle one.
    conn_.set_write_timeout(std::chrono::seconds(cfg_->smtp.idle_timeout_seconds));
  }

  awaitable<void> Run();

  void RequestStop() override {
    stopping_ = true;
    if (idle_) conn_.CancelReads();  // a transaction in progress finishes first
  }
  // The account's password changed or it was removed: close now, even in the
  // middle of DATA (nothing of that transaction is stored).
  void EndSession() override {
    ended_ = true;
    stopping_ = true;
    conn_.CancelReads();
  }
  std::string StopReply() const {
    return ended_ ? "421 4.7.0 " + cfg_->hostname +
                        " Session ended: the password was changed or the account removed"
                  : "421 4.3.2 " + cfg_->hostname + " Service shutting down, try again later";
  }

 private:
  struct Transaction {
    bool active = false;
    std::string from;  // "" = null reverse-path
    bool smtputf8 = false;
    BodyType body = BodyType::k7Bit;
    std::vector<int64_t> accounts;                 // unique local recipients
    std::vector<std::string> account_rcpts;        // the RCPT address of each of accounts
    std::vector<std::string> account_details;      // RFC 5233 detail ("tag") of each, or ""
    scan::Verdict verdict;                         // the scanners' (src/scan), before the 250
    std::vector<std::string> rcpts;                // as given, for logging and Received
    std::vector<store::OutboundRecipient> remote;  // submission: queued for delivery
    std::vector<std::string> lists;                // list addresses (src/lists)
    std::string envid;                             // RFC 3461 ENVID
    bool ret_hdrs = false;                         // RFC 3461 RET=HDRS
    std::string bdat;                              // content received so far by BDAT
    LineEndingNormalizer bdat_norm;
    bool bdat_failed = false;
    bool bdat_started = false;   // a BDAT chunk was taken: DATA is refused (RFC 3030 section 2)
    uint64_t declared_size = 0;  // MAIL FROM SIZE= (RFC 1870), 0 when not given
  };

  // Replies are buffered and flushed before the session waits for input, so a
  // PIPELINING client gets one write per group of commands (RFC 2920).
  void Reply(std::string_view line) { conn_.QueueLine(line); }
  // A refused MAIL or RCPT (or message): the reply, and one log line with the
  // client address, the sender, the recipient and the reason (operations.md, Logs).
  void Refuse(std::string_view line, std::string_view rcpt = {}) {
    Reply(line);
    spdlog::info("{}: ip={} from=<{}>{}{}{} refused: {}", mode_name(), conn_.peer_ip(),
                 LogSafe(tx_.active ? tx_.from : pending_from_), rcpt.empty() ? "" : " to=<",
                 LogSafe(rcpt), rcpt.empty() ? "" : ">", line);
  }
  const char* mode_name() const { return submission_ ? "submission" : "smtp"; }
  // smtp.data_timeout_seconds: all of DATA (or of one BDAT chunk) must arrive
  // by then, so a client trickling bytes cannot hold the session for ever.
  std::chrono::steady_clock::time_point DataDeadline() const {
    return std::chrono::steady_clock::now() + seconds(cfg_->smtp.data_timeout_seconds);
  }
  // The next read's timeout: the idle timeout, cut short by the deadline (0: passed).
  static seconds ReadTimeout(seconds idle, std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::ceil<seconds>(deadline - std::chrono::steady_clock::now());
    return std::max(seconds(0), std::min(idle, left));
  }
  // Counts a transaction's outcome (the reply to MAIL or to the end of data).
  std::string pending_from_;  // MAIL FROM being considered (for refusal logs)
  void CountMessage(int code) {
    if (svc_.counters) svc_.counters->CountSmtp(code);
  }
  awaitable<bool> Flush() { return conn_.Flush(); }

  awaitable<bool> HandleEhlo(const Command& c, bool extended);
  awaitable<bool> HandleMail(const Command& c);
  awaitable<bool> HandleRcpt(const Command& c);
  awaitable<bool> HandleData();
  awaitable<bool> HandleBdat(const Command& c);
  awaitable<bool> HandleBurl(const Command& c);  // RFC 4468
  awaitable<bool> EndChunk(bool last, std::string ok, uint64_t limit);
  awaitable<bool> HandleStartTls();
  awaitable<bool> HandleAuth(const Command& c);
  awaitable<bool> HandleAuthScram(std::optional<std::string> initial);
  awaitable<bool> CheckSendingLimits();
  awaitable<bool> Deliver(std::string content);
  bool NeedsNoFiltering(const store::DeliveryRequest& req, const sieve::FilterInput& in) const;
  // The largest message NeedsNoFiltering lets the loop parse (about 0.1 ms).
  static constexpr size_t kInlineParseMaxBytes = 16 * 1024;
  // The spam and virus scanners (src/scan) on an MX message: false when the
  // message was refused (the reply is sent); else `trace` gets the scan
  // fields and `verdict` what they said.
  awaitable<bool> ScanInbound(const std::string& id, std::string& content, std::string& trace,
                              scan::Verdict& verdict);
  // Reads one SASL response line after a 334 challenge; nullopt when the
  // session must close, "*" when the client cancelled.
  awaitable<std::optional<std::string>> ReadSaslLine(const std::string& challenge);
  bool PlaintextAllowed() const {
    return conn_.is_tls() || (conn_.peer_is_loopback() && cfg_->auth.allow_plaintext_on_loopback);
  }
  bool has_recipients() const {
    return !tx_.accounts.empty() || !tx_.remote.empty() || !tx_.lists.empty();
  }
  bool CountError();  // false when the error limit closed the session
  // A 5xx RCPT: a growing delay, the reply, and a counted error; false: closed.
  awaitable<bool> BadRecipient(std::string reply, std::string rcpt);

  std::string ReceivedHeader(const std::string& id) const;

  server::Services& svc_;
  io::Connection conn_;
  std::shared_ptr<const config::Config> cfg_;
  std::string helo_;
  bool extended_ = false;
  int errors_ = 0;
  int bad_rcpts_ = 0;  // 5xx RCPT replies in this session
  bool closing_ = false;
  bool stopping_ = false;  // graceful stop requested
  bool ended_ = false;     // EndSession
  bool idle_ = false;      // waiting for a command between transactions
  const bool submission_;  // RFC 6409 submission rather than MX
  const bool implicit_tls_;
  int64_t account_id_ = 0;  // the authenticated account (submission), 0 before AUTH
  std::string account_address_;
  Transaction tx_;
  // Message data held in memory before it is committed (server/budget.h).
  server::MemoryBudget::Charge charge_;
  // Charges `bytes` of message data; past the budget queues the refusal
  // (421 4.3.2, RFC 5321 section 3.8: the session then closes) and returns false.
  bool ChargeData(uint64_t bytes) {
    if (charge_.Set(bytes)) return true;
    spdlog::warn("smtp: memory budget exhausted; closing the session from {}", conn_.peer_ip());
    Reply("421 4.3.2 " + cfg_->hostname + " Server busy (memory budget), try again later");
    return false;
  }
  server::AccountSessions::Registration account_session_;  // after AUTH
};

awaitable<void> Session::Run() {
  const auto& c = *cfg_;
  if (implicit_tls_) {
    // RFC 8314 section 3.3: TLS starts at once; no plaintext byte is exchanged.
    seconds timeout(c.tls_handshake_timeout_seconds);  // a handshake that never starts
    bool secured = co_await conn_.StartTls(timeout);
    if (!secured) {
      conn_.Close();
      co_return;
    }
  }
  Reply("220 " + c.hostname + " ESMTP Hato");
  while (!closing_) {
    if (conn_.buffer().find('\n') == std::string::npos) {
      bool flushed = co_await Flush();
      if (!flushed) co_return;
    }
    cfg_ = svc_.config->Get();     // a reload applies from the next command
    charge_.Set(tx_.bdat.size());  // BDAT chunks held between commands (RSET drops them)
    size_t max_line = cfg_->smtp.max_line_length;
    seconds idle(cfg_->smtp.idle_timeout_seconds);
    if (stopping_) {
      Reply(StopReply());
      break;
    }
    idle_ = !tx_.active;
    io::LineResult line = co_await conn_.ReadLine(max_line, idle);
    idle_ = false;
    if (stopping_ && line.status == io::ReadStatus::kError) {
      Reply(StopReply());
      break;
    }
    if (line.status == io::ReadStatus::kTimeout) {
      // RFC 5321 section 4.5.3.2: the server may close an idle connection.
      Reply("421 4.4.2 " + cfg_->hostname + " Error: timeout exceeded");
      break;
    }
    if (line.status == io::ReadStatus::kTooLong) {
      Reply("500 5.5.2 Line too long");
      if (!CountError()) break;
      continue;
    }
    if (line.status != io::ReadStatus::kOk) co_return;

    auto cmd = ParseCommand(line.line);
    if (!cmd) {
      const Error& e = cmd.error();
      if (e.kind == ErrorKind::kNotFound) {
        Reply("500 5.5.1 Error: command unrecognized");
      } else if (e.message.rfind(kUnsupportedParameter, 0) == 0) {
        Reply("555 5.5.4 " + e.message);
      } else {
        Reply("501 5.5.4 " + e.message);
      }
      if (!CountError()) break;
      continue;
    }
    bool ok = true;
    switch (cmd->verb) {
      case Verb::kEhlo:
        ok = co_await HandleEhlo(*cmd, true);
        break;
      case Verb::kHelo:
        ok = co_await HandleEhlo(*cmd, false);
        break;
      case Verb::kMail:
        ok = co_await HandleMail(*cmd);
        break;
      case Verb::kRcpt:
        ok = co_await HandleRcpt(*cmd);
        break;
      case Verb::kData:
        ok = co_await HandleData();
        break;
      case Verb::kBdat:
        ok = co_await HandleBdat(*cmd);
        break;
      case Verb::kRset:
        tx_ = Transaction{};
        Reply("250 2.0.0 Ok");
        break;
      case Verb::kNoop:
        Reply("250 2.0.0 Ok");
        break;
      case Verb::kQuit:
        Reply("221 2.0.0 Bye");
        closing_ = true;
        break;
      case Verb::kVrfy:
        // Do not confirm or deny accounts (RFC 5321 section 3.5.3).
        Reply("252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
        break;
      case Verb::kExpn:
        Reply("502 5.5.1 EXPN not available");
        break;
      case Verb::kHelp:
        Reply("214 2.0.0 Hato SMTP server; commands per RFC 5321");
        break;
      case Verb::kStartTls:
        ok = co_await HandleStartTls();
        break;
      case Verb::kAuth:
        if (submission_) {
          ok = co_await HandleAuth(*cmd);
        } else {
          Reply("503 5.5.1 Error: authentication not enabled on this port");
          ok = CountError();
        }
        break;
      case Verb::kBurl:
        if (submission_) {
          ok = co_await HandleBurl(*cmd);
        } else {
          Reply("502 5.5.1 Error: BURL is for submission");
          ok = CountError();
        }
        break;
    }
    if (!ok) break;
  }
  co_await Flush();
  conn_.Close();
}

// Recipient harvesting (issue 11): every 5xx RCPT counts toward
// smtp.max_errors and is answered after a delay that grows with each one
// (smtp.bad_rcpt_delay_ms times their number, at most kMaxBadRcptDelay).
awaitable<bool> Session::BadRecipient(std::string reply, std::string rcpt) {
  ++bad_rcpts_;
  auto delay = std::min<std::chrono::milliseconds>(
      std::chrono::milliseconds(int64_t{cfg_->smtp.bad_rcpt_delay_ms} * bad_rcpts_),
      kMaxBadRcptDelay);
  co_await server::Sleep(delay);
  Refuse(reply, rcpt);
  co_return CountError();
}

bool Session::CountError() {
  if (++errors_ < cfg_->smtp.max_errors) return true;
  Reply("421 4.7.0 " + cfg_->hostname + " Error: too many errors");
  return false;
}

awaitable<bool> Session::HandleEhlo(const Command& c, bool extended) {
  helo_ = c.arg;
  extended_ = extended;
  tx_ = Transaction{};  // RFC 5321 section 4.1.4: EHLO resets the transaction
  const auto& cfg = *cfg_;
  if (!extended) {
    Reply("250 " + cfg.hostname);
    co_return true;
  }
  Reply("250-" + cfg.hostname);
  Reply("250-PIPELINING");
  Reply("250-SIZE " + std::to_string(cfg.smtp.max_message_size));
  if (conn_.tls_available() && !conn_.is_tls()) Reply("250-STARTTLS");
  // RFC 4954 section 4: no plaintext mechanism is offered before TLS.
  if (submission_ && PlaintextAllowed()) Reply("250-AUTH SCRAM-SHA-256 PLAIN LOGIN");
  if (submission_) Reply("250-DSN");  // RFC 3461
  // RFC 4468 section 3: URLAUTH URLs of this server only (read from the store).
  if (submission_) Reply("250-BURL imap://" + cfg.hostname);
  Reply("250-ENHANCEDSTATUSCODES");
  Reply("250-8BITMIME");
  Reply("250-SMTPUTF8");
  Reply("250 CHUNKING");
  co_return true;
}

awaitable<bool> Session::HandleMail(const Command& c) {
  pending_from_ = c.path ? c.path->ToString() : "";
  if (helo_.empty()) {
    Refuse("503 5.5.1 Error: send HELO/EHLO first");
    co_return CountError();
  }
  if (tx_.active) {
    Refuse("503 5.5.1 Error: nested MAIL command");
    co_return CountError();
  }
  if (c.dsn && !submission_) {
    Refuse("555 5.5.4 DSN parameters not supported here");
    co_return CountError();
  }
  if (c.size && *c.size > cfg_->smtp.max_message_size) {
    Refuse("552 5.3.4 Message size exceeds fixed limit");
    CountMessage(552);
    co_return true;
  }
  if (submission_) {
    if (account_id_ == 0) {
      Refuse("530 5.7.0 Authentication required");  // RFC 4954 section 6
      co_return CountError();
    }
    // RFC 6409 section 8.1: the submitter may send only as an address it owns
    // (its account's address or one of its aliases).
    std::string from = c.path ? AccountKey(*c.path) : "";
    bool owned = from == account_address_;
    if (!owned && !from.empty()) {
      store::Store* store = svc_.store;
      // Named, not a temporary in the co_await expression: see io/await.h.
      auto resolve = [store, from] { return store->ResolveRecipient(from); };
      Result<store::Account> owner = co_await io::Offload(*svc_.blocking, std::move(resolve));
      if (!owner && owner.error().kind != ErrorKind::kNotFound) {
        spdlog::error("smtp: alias lookup failed: {}", owner.error().message);
        Refuse("451 4.3.0 Temporary lookup failure, try again later");
        co_return true;
      }
      owned = owner && owner->id == account_id_;
    }
    if (!owned) {
      Refuse("550 5.7.1 <" + (c.path ? c.path->ToString() : std::string()) +
             ">: Sender address not owned by user " + account_address_);
      co_return true;
    }
    bool within = co_await CheckSendingLimits();
    if (!within) co_return true;
  }
  store::StoreHealth health = svc_.store->Health();
  if (std::max(health.commit_in_flight_ms, health.last_commit_ms) > cfg_->store_slow_commit_ms) {
    // Storage is slow: a quick "try later" instead of a wait that piles up.
    Refuse("451 4.3.0 Storage is busy, try again later");
    CountMessage(451);
    co_return true;
  }
  if (svc_.disk && svc_.disk->low()) {
    // RFC 3463 4.3.1: the sender keeps the message and retries later.
    Refuse("452 4.3.1 Insufficient system storage, try again later");
    CountMessage(452);
    co_return true;
  }
  tx_ = Transaction{};
  tx_.active = true;
  tx_.from = c.path ? c.path->ToString() : "";
  tx_.smtputf8 = c.smtputf8;
  tx_.body = c.body;
  tx_.declared_size = c.size.value_or(0);
  tx_.envid = c.envid;
  tx_.ret_hdrs = c.ret == "HDRS";
  Reply("250 2.1.0 Ok");
  co_return true;
}

awaitable<bool> Session::HandleRcpt(const Command& c) {
  if (!tx_.active) {
    Refuse("503 5.5.1 Error: need MAIL command");
    co_return CountError();
  }
  if (c.dsn && !submission_) {
    Refuse("555 5.5.4 DSN parameters not supported here");
    co_return CountError();
  }
  const Mailbox& to = *c.path;
  bool non_ascii = false;
  for (unsigned char ch : to.ToString()) non_ascii = non_ascii || ch >= 0x80;
  if (non_ascii && !tx_.smtputf8) {
    Refuse("553 5.6.7 Non-ASCII address requires SMTPUTF8", to.ToString());
    co_return true;
  }
  // RFC 5321 section 4.5.3.1.8: at least 100 recipients must be buffered.
  if (tx_.rcpts.size() + tx_.remote.size() >= cfg_->smtp.max_recipients) {
    Refuse("452 4.5.3 Error: too many recipients", to.ToString());
    co_return true;
  }
  store::Store* store = svc_.store;
  std::string domain = to.domain;
  std::string key = AccountKey(to);
  // Local domains are stored as A-labels (RFC 5890): a U-label recipient
  // (SMTPUTF8) is looked up in that form.
  if (!domain.empty() && domain.front() != '[') {
    auto ascii = dns::ToAsciiDomain(domain);
    if (!ascii) {
      Refuse("553 5.1.2 <" + to.ToString() + ">: " + ascii.error().message, to.ToString());
      co_return true;
    }
    if (*ascii != domain) {
      key = key.substr(0, key.rfind('@') + 1) + *ascii;
      domain = *ascii;
    }
  }
  // A bounce (or reply) to an address our SRS gave a forwarded message
  // (outbound/srs.h) goes on to the original sender, once its hash and age
  // check out; anything else at an SRS address is refused.
  if (svc_.srs && !submission_ && outbound::IsSrsLocalPart(to.local) &&
      EqualsIgnoreCase(domain, svc_.srs->domain)) {
    auto original = outbound::SrsReverse(to.local, svc_.srs->secret, std::time(nullptr));
    if (!original) {
      bool go_on = co_await BadRecipient(
          "550 5.1.1 <" + to.ToString() + ">: " + original.error().message, to.ToString());
      co_return go_on;
    }
    spdlog::info("smtp: SRS <{}> -> <{}>", LogSafe(to.ToString()), LogSafe(*original));
    tx_.remote.push_back(store::OutboundRecipient{*original, c.notify, c.orcpt});
    Reply("250 2.1.5 Ok");
    co_return true;
  }
  // RFC 5321 4.5.1 and RFC 2142: "<postmaster>" (no domain), and postmaster@
  // and abuse@ every local domain that no account or alias claims, reach
  // server.postmaster (default: the first account).
  bool bare_postmaster = domain.empty();
  std::string local_part = AsciiLower(to.local);
  bool role = bare_postmaster || local_part == "postmaster" || local_part == "abuse";
  std::string role_target = cfg_->postmaster;
  struct Lookup {
    Result<bool> local = false;
    std::optional<Result<store::Account>> account;
    std::optional<Result<store::QuotaUsage>> quota;
    bool subaddress = false;  // reached as user+detail@domain (RFC 5233)
  };
  // Named, not a temporary in the co_await expression: see io/await.h.
  auto lookup = [store, domain, key, bare_postmaster, role, role_target] {
    Lookup l;
    l.local = bare_postmaster ? Result<bool>(true) : store->IsLocalDomain(domain);
    auto not_found = [&l] {
      return !l.account || (!l.account->ok() && l.account->error().kind == ErrorKind::kNotFound);
    };
    if (l.local.ok() && *l.local && !bare_postmaster) {
      l.account = store->ResolveRecipient(key);  // aliases too
      // Subaddressing (RFC 5233): user+tag@domain reaches user@domain when
      // no account or alias has the whole address.
      size_t at = key.rfind('@');
      size_t plus = key.find('+');
      if (not_found() && plus != std::string::npos && plus > 0 && plus < at) {
        l.account = store->ResolveRecipient(key.substr(0, plus) + key.substr(at));
        l.subaddress = l.account->ok();
      }
    }
    if (l.local.ok() && *l.local && role && not_found()) {
      l.account =
          role_target.empty() ? store->FirstAccount() : store->ResolveRecipient(role_target);
    }
    // A catch-all alias "@domain" (hato alias add @DOMAIN ACCOUNT) takes
    // what nothing else claims.
    if (l.local.ok() && *l.local && !bare_postmaster && not_found()) {
      auto catch_all = store->ResolveRecipient("@" + domain);
      if (catch_all || catch_all.error().kind != ErrorKind::kNotFound) l.account = catch_all;
    }
    // The usage is read (exactly) only for an account with a limit: the
    // limit comes with the recipient (a cached look-up, store/directory_cache.h).
    if (l.account && l.account->ok() && (*l.account)->quota_bytes) {
      l.quota = store->GetQuota((*l.account)->id);
    }
    return l;
  };
  // A recipient the directory cache holds (store/cached_lookups.h), without a
  // quota limit to read the usage against, is answered here on the loop: no
  // hop to the blocking pool and back. Everything else goes there.
  std::optional<Lookup> cached;
  if (auto* fast = dynamic_cast<store::CachedLookups*>(store); fast && !bare_postmaster) {
    std::optional<bool> local = fast->CachedLocalDomain(domain);
    if (local && !*local) {
      cached.emplace();
      cached->local = false;
    } else if (local) {
      std::optional<store::Account> account = fast->CachedRecipient(key);
      if (account && !account->quota_bytes) {
        cached.emplace();
        cached->local = true;
        cached->account = Result<store::Account>(std::move(*account));
      }
    }
  }
  Lookup r;
  if (cached) {
    r = std::move(*cached);
  } else {
    Lookup fetched = co_await io::Offload(*svc_.blocking, std::move(lookup));
    r = std::move(fetched);
  }
  if (!r.local) {
    spdlog::error("smtp: domain lookup failed: {}", r.local.error().message);
    Refuse("451 4.3.0 Temporary lookup failure, try again later", to.ToString());
    co_return true;
  }
  if (!*r.local) {
    if (submission_) {
      // Authenticated submission relays to other domains through the queue.
      tx_.remote.push_back(store::OutboundRecipient{to.ToString(), c.notify, c.orcpt});
      Reply("250 2.1.5 Ok");
      co_return true;
    }
    // No open relay: only authenticated submission may send elsewhere.
    bool go_on = co_await BadRecipient("554 5.7.1 <" + to.ToString() + ">: Relay access denied",
                                       to.ToString());
    co_return go_on;
  }
  if (!r.account->ok() && r.account->error().kind == ErrorKind::kNotFound && svc_.hooks &&
      svc_.hooks->is_list) {
    // A mailing list's address (LIST@, LIST+join@, LIST-bounces+...@: src/lists).
    const server::MessageHooks* hooks = svc_.hooks;
    auto check = [hooks, key] { return hooks->is_list(key); };
    Result<bool> is_list = co_await io::Offload(*svc_.blocking, std::move(check));
    if (!is_list) {
      spdlog::error("smtp: list lookup failed: {}", is_list.error().message);
      Reply("451 4.3.0 Temporary lookup failure, try again later");
      co_return true;
    }
    if (*is_list) {
      if (std::find(tx_.lists.begin(), tx_.lists.end(), key) == tx_.lists.end()) {
        tx_.lists.push_back(key);
      }
      tx_.rcpts.push_back(to.ToString());
      Reply("250 2.1.5 Ok");
      co_return true;
    }
  }
  if (!r.account->ok()) {
    if (r.account->error().kind == ErrorKind::kNotFound) {
      bool go_on = co_await BadRecipient(
          "550 5.1.1 <" + to.ToString() + ">: Recipient address rejected: user unknown",
          to.ToString());
      co_return go_on;
    } else {
      spdlog::error("smtp: account lookup failed: {}", r.account->error().message);
      Refuse("451 4.3.0 Temporary lookup failure, try again later", to.ToString());
    }
    co_return true;
  }
  if (r.quota && !r.quota->ok()) {
    spdlog::error("smtp: quota lookup failed: {}", r.quota->error().message);
    Refuse("451 4.3.0 Temporary lookup failure, try again later", to.ToString());
    co_return true;
  }
  // Quota (RFC 9208 section 5.1): a full mailbox is a temporary condition
  // (RFC 3463 4.2.2); the sender retries and the owner may make room. A
  // message that fits when its recipient is accepted is delivered even if it
  // takes the account past its limit.
  const store::QuotaUsage quota = r.quota ? **r.quota : store::QuotaUsage{};
  if (quota.limit_bytes && (quota.used_bytes >= *quota.limit_bytes ||
                            quota.used_bytes + tx_.declared_size > *quota.limit_bytes)) {
    Refuse("452 4.2.2 <" + to.ToString() + ">: Mailbox full, try again later", to.ToString());
    co_return true;
  }
  int64_t id = (*r.account)->id;
  if (std::find(tx_.accounts.begin(), tx_.accounts.end(), id) == tx_.accounts.end()) {
    tx_.accounts.push_back(id);
    tx_.account_rcpts.push_back(AsciiLower(to.ToString()));
    // The detail as given (its case kept): the folder it names
    // ([delivery] subaddress_folders, sieve/deliver.h).
    std::string detail;
    if (r.subaddress) {
      size_t plus = to.local.find('+');
      if (plus != std::string::npos) detail = to.local.substr(plus + 1);
    }
    tx_.account_details.push_back(std::move(detail));
  }
  tx_.rcpts.push_back(bare_postmaster ? to.local : to.ToString());
  Reply("250 2.1.5 Ok");
  co_return true;
}

std::string Session::ReceivedHeader(const std::string& id) const {
  // RFC 5321 section 4.4; the "with" keywords are from RFC 3848.
  std::string with = tx_.smtputf8 ? "UTF8SMTP" : (extended_ ? "ESMTP" : "SMTP");
  if (conn_.is_tls()) with += "S";
  if (account_id_ != 0) with += "A";
  std::string h = "Received: from " + helo_ + " ([" + conn_.peer_ip() + "])\r\n\tby " +
                  cfg_->hostname + " (Hato) with " + with + " id " + id + "\r\n\t";
  // Only name the recipient when there is one: the stored content is shared by
  // every recipient of the transaction.
  if (tx_.rcpts.size() + tx_.remote.size() == 1) {
    h += "for <" + (tx_.rcpts.empty() ? tx_.remote[0].address : tx_.rcpts[0]) + ">; ";
  }
  h += Rfc5322Date(std::time(nullptr)) + "\r\n";
  return h;
}

// Whether a delivery can skip sieve::Filter and its hop to the blocking pool
// (issue 17): a message of at most kInlineParseMaxBytes (its MIME parse then
// runs on the loop) whose local recipients, as the directory cache knows them
// (store/cached_lookups.h), have no delivery scripts (no Sieve script active,
// no forwarding, no vacation), with no spam verdict or DMARC quarantine and
// no subaddress folder to file by. Filter would file each copy into INBOX
// unchanged, which is what the delivery without filings does. Anything not
// cached takes the hop (and Filter's read caches it for the next message).
bool Session::NeedsNoFiltering(const store::DeliveryRequest& req,
                               const sieve::FilterInput& in) const {
  if (req.content.size() > kInlineParseMaxBytes || req.junk || in.junk ||
      in.verdict.spam_action != scan::SpamAction::kNone) {
    return false;
  }
  for (const std::string& detail : in.details) {
    if (!detail.empty()) return false;
  }
  if (in.accounts.empty()) return true;
  auto* fast = dynamic_cast<store::CachedLookups*>(svc_.store);
  if (!fast) return false;
  for (int64_t account : in.accounts) {
    std::optional<bool> scripts = fast->CachedHasDeliveryScripts(account, sieve::kReservedPrefix);
    if (!scripts || *scripts) return false;
  }
  return true;
}

awaitable<bool> Session::Deliver(std::string content) {
  std::string id = NewTransactionId();
  // An empty message (BDAT 0 LAST and nothing before, or DATA with only the
  // final dot) has not even a header: refused rather than stored.
  if (content.empty()) {
    Reply("554 5.6.0 Message is empty");
    CountMessage(554);
    tx_ = Transaction{};
    co_return true;
  }
  // RFC 5321 section 4.5.2 and RFC 6152: NUL is not allowed in a message sent
  // with DATA or BDAT without BINARYMIME (not offered): refused, not stored
  // or relayed.
  if (content.find('\0') != std::string::npos) {
    Reply("554 5.6.0 Message contains NUL characters");
    CountMessage(554);
    tx_ = Transaction{};
    co_return true;
  }
  store::DeliveryRequest req;
  req.return_path = tx_.from;
  req.account_ids = tx_.accounts;
  req.received_at = std::time(nullptr);
  std::string trace = ReceivedHeader(id);
  if (submission_) {
    // RFC 6409 section 8.1: the author fields (every From: address, Sender:)
    // must name the account or one of its aliases, or anyone could send (and
    // have DKIM-signed) mail as any hosted address.
    server::Authors authors = server::AuthorAddresses(content);
    if (authors.unusable) {
      Reply("550 5.7.1 Message refused: " + *authors.unusable);
      tx_ = Transaction{};
      co_return true;
    }
    store::Store* owner_store = svc_.store;
    auto check = [owner_store, account = account_id_, address = account_address_, &authors] {
      return server::FirstUnownedAuthor(*owner_store, account, address, authors);
    };
    Result<std::optional<std::string>> unowned =
        co_await io::Offload(*svc_.blocking, std::move(check));
    if (!unowned) {
      spdlog::error("smtp: id={} author lookup failed: {}", id, unowned.error().message);
      Reply("451 4.3.0 Temporary lookup failure, try again later");
      tx_ = Transaction{};
      co_return true;
    }
    if (*unowned) {
      spdlog::info("submission: id={} {} refused: author <{}> not owned", id,
                   LogSafe(account_address_), LogSafe(**unowned));
      Reply("550 5.7.1 <" + LogSafe(**unowned) + ">: From/Sender address not owned by user " +
            account_address_);
      CountMessage(550);
      tx_ = Transaction{};
      co_return true;
    }
    // RFC 8601 section 5: a forged Authentication-Results naming our host
    // would be trusted by our own users' readers.
    content = server::RemoveForgedAuthResults(content, cfg_->hostname);
    // RFC 6409 section 8.2/8.3: the submission server may add a missing
    // Message-ID and Date.
    auto scan = mime::internal::ScanHeader(content);
    std::string added;
    if (!mime::internal::FindField(scan.fields, "Message-ID")) {
      added += "Message-ID: <" + NewTransactionId() + NewTransactionId() + "@" + cfg_->hostname +
               ">\r\n";
    }
    if (!mime::internal::FindField(scan.fields, "Date")) {
      added += "Date: " + Rfc5322Date(req.received_at) + "\r\n";
    }
    content = trace + added + content;
    trace.clear();
    // DKIM signing hook (RFC 6376): msgauth signs here, before the message is
    // stored or queued, so every copy carries the same signature.
    const server::MessageHooks* hooks = svc_.hooks;
    if (hooks && hooks->sign_outbound && !authors.from_domain.empty()) {
      // Only the From domain just proved to be the account's (its address or
      // an alias) is ever signed for.
      std::string domain = authors.from_domain;
      auto sign = [hooks, domain, msg = std::string_view(content)] {
        return hooks->sign_outbound(domain, msg);
      };
      Result<std::string> signature = co_await io::Offload(*svc_.blocking, std::move(sign));
      if (!signature) {
        spdlog::error("smtp: id={} signing failed: {}", id, signature.error().message);
        Reply("451 4.7.0 Error: message signing failed, try again later");
        tx_ = Transaction{};
        co_return true;
      }
      content = *signature + content;
    }
    req.submitted_by = account_id_;
    if (!tx_.remote.empty()) {
      store::OutboundRequest out;
      out.content = content;
      out.sender = tx_.from;
      out.envid = tx_.envid;
      out.ret_hdrs = tx_.ret_hdrs;
      out.smtputf8 = tx_.smtputf8;
      out.eight_bit = tx_.body != BodyType::k7Bit;
      out.recipients = tx_.remote;
      req.outbound = std::move(out);
    }
  } else {
    // Message authentication (RFC 8601): msgauth checks SPF, DKIM and DMARC
    // and returns the Authentication-Results field to prepend, and what the
    // DMARC policy asks for (RFC 7489 section 6.7).
    const server::MessageHooks* hooks = svc_.hooks;
    if (hooks && hooks->authenticate_inbound) {
      server::InboundInfo info{conn_.peer_ip(), helo_, tx_.from};
      auto check = [hooks, info, msg = std::string_view(content)] {
        return hooks->authenticate_inbound(info, msg);
      };
      asio::thread_pool& pool = svc_.checks ? *svc_.checks : *svc_.blocking;
      server::InboundVerdict verdict = co_await io::Offload(pool, std::move(check));
      if (verdict.action == server::InboundVerdict::Action::kReject) {
        spdlog::info("smtp: id={} ip={} from=<{}> refused: rejected: {}", id, conn_.peer_ip(),
                     LogSafe(tx_.from), verdict.reason);
        Reply("550 5.7.1 Message rejected: " + verdict.reason);
        CountMessage(550);
        tx_ = Transaction{};
        co_return true;
      }
      if (verdict.action == server::InboundVerdict::Action::kJunk) {
        spdlog::info("smtp: id={} from=<{}> to Junk: {}", id, LogSafe(tx_.from), verdict.reason);
        req.junk = true;
      }
      if (verdict.cleaned) content = std::move(*verdict.cleaned);
      // Above our own Received field: the newest trace first (RFC 8601 section 5).
      trace = verdict.header + trace;
    }
    // Spam and virus scanners (issue 19), before the 250. Submission is not
    // scanned: its sender is authenticated and rate-limited, and the
    // receiving MX scans it (docs/operations.md, "Spam and virus checks").
    if (cfg_->scan.enabled()) {
      bool go_on = co_await ScanInbound(id, content, trace, tx_.verdict);
      if (!go_on) co_return true;
      // The filing decision below (sieve::Filter) files a Junk verdict
      // into \Junk and gives a "mark" verdict the $Junk keyword.
      if (tx_.verdict.spam_action == scan::SpamAction::kJunk) req.junk = true;
    }
    if (!tx_.remote.empty()) {
      // Recipients that were SRS addresses (RCPT above): the message goes on
      // to the original senders through the queue, with our trace fields.
      store::OutboundRequest out;
      out.content = trace + content;
      out.sender = tx_.from;
      out.smtputf8 = tx_.smtputf8;
      out.eight_bit = tx_.body != BodyType::k7Bit;
      out.recipients = tx_.remote;
      req.outbound = std::move(out);
    }
  }
  if (!tx_.lists.empty()) {
    // Mailing lists (src/lists): each list address gets the message, with
    // its trace fields; the list's reply stands for the transaction when it
    // had no other recipients.
    bool others = !tx_.accounts.empty() || !tx_.remote.empty();
    server::ListReply last;
    for (const std::string& rcpt : tx_.lists) {
      server::ListDelivery d{rcpt,
                             tx_.from,
                             submission_ ? account_address_ : std::string(),
                             conn_.peer_ip(),
                             trace + content,
                             tx_.smtputf8,
                             tx_.body != BodyType::k7Bit};
      const server::MessageHooks* hooks = svc_.hooks;
      auto deliver = [hooks, d = std::move(d)] { return hooks->deliver_to_list(d); };
      server::ListReply reply = co_await io::Offload(*svc_.blocking, std::move(deliver));
      spdlog::info("smtp: id={} from=<{}> list=<{}>: {} {}", id, LogSafe(tx_.from), LogSafe(rcpt),
                   reply.code, LogSafe(reply.text));
      if (reply.code >= 400 && reply.code < 500) {
        Reply(std::to_string(reply.code) + " " + reply.text);
        CountMessage(reply.code);
        tx_ = Transaction{};
        co_return true;
      }
      if (reply.code >= 500 && !others && tx_.lists.size() == 1) {
        Reply(std::to_string(reply.code) + " " + reply.text);
        CountMessage(reply.code);
        tx_ = Transaction{};
        co_return true;
      }
      last = std::move(reply);
    }
    if (!others) {
      Reply("250 " + (last.code < 300 ? last.text : std::string("2.0.0 Ok")));
      CountMessage(250);
      tx_ = Transaction{};
      co_return true;
    }
  }
  // The trace fields go in front of the body in its own buffer: one move of
  // the body within it (none reallocated when DataReader left room), not a
  // second buffer of the whole message.
  content.insert(0, "Return-Path: <" + tx_.from + ">\r\n" + trace);
  req.content = std::move(content);
  size_t size = req.content.size();
  // Parse the MIME structure once, off the event loop; IMAP FETCH reads the
  // stored tree and never parses the message again. (The full-text index
  // extracts the text later, off the delivery path: search/text_index.h.)
  // Filtering (src/sieve/deliver.h): each local recipient's Sieve script, or
  // the spam policy, decides the copies; they are committed below in the
  // same transaction as ever. Both run in one hop to the blocking pool (the
  // filter reads the store): a hop costs two thread wake-ups, more than a
  // small message's parse.
  store::Store* store = svc_.store;
  sieve::FilterInput filter_in;
  std::optional<sieve::FilterResult> filtered;
  std::optional<store::OutboundRequest> late_redirects;
  std::string filtered_header;
  if (!tx_.accounts.empty()) {
    filter_in.content = req.content;
    filter_in.return_path = tx_.from;
    filter_in.accounts = tx_.accounts;
    filter_in.rcpts = tx_.account_rcpts;
    if (cfg_->delivery.subaddress_folders != "off") {
      filter_in.details = tx_.account_details;
      filter_in.create_detail_folders = cfg_->delivery.subaddress_folders == "create";
    }
    filter_in.verdict = tx_.verdict;
    filter_in.junk = req.junk;
    filter_in.now = req.received_at;
  }
  sieve::DeliveryLimits sieve_limits = sieve::LimitsFrom(cfg_->sieve);
  auto parse_mime = [&req, store] {
    auto tree = mime::Parse(req.content);
    req.mime = tree ? mime::Serialize(*tree) : std::string();
    // The store's hashing and compression of the body, here rather than on
    // its single writer thread (Store::PrepareDelivery): the content is final.
    store->PrepareDelivery(req);
  };
  auto parse_and_filter = [store, &filter_in, &filtered, &sieve_limits, &parse_mime] {
    parse_mime();
    if (!filter_in.accounts.empty()) filtered = sieve::Filter(*store, filter_in, sieve_limits);
    return true;
  };
  if (NeedsNoFiltering(req, filter_in)) {
    // Parsed here, on the loop: no hop to the blocking pool and back.
    parse_mime();
  } else {
    co_await io::Offload(*svc_.blocking, std::move(parse_and_filter));
  }
  if (filtered) {
    // The content moves into the store below; what Finish reads of it (the
    // header, for the vacation reply's In-Reply-To) is kept.
    filtered_header = req.content.substr(0, mime::internal::ScanHeader(req.content).end);
    filter_in.content = filtered_header;
    // RFC 5429 section 2.1: refused at SMTP time when every recipient rejects.
    if (filtered->all_rejected && tx_.remote.empty() && tx_.lists.empty()) {
      std::string reason = filtered->reject_reason;
      for (char& c : reason) {
        if (c == '\r' || c == '\n') c = ' ';
      }
      spdlog::info("{}: id={} from=<{}> refused by the recipient's Sieve script: {}", mode_name(),
                   id, LogSafe(tx_.from), LogSafe(reason));
      Reply("550 5.7.1 " + (reason.empty() ? std::string("Message rejected") : reason));
      CountMessage(550);
      tx_ = Transaction{};
      co_return true;
    }
    if (filtered->filtered || filtered->rejected > 0 || !filtered->redirects.empty()) {
      req.filings = filtered->filings;
      if (filtered->none_kept) req.account_ids.clear();
      // Keywords a script sets (RFC 5232) within the IMAP keyword limits; the
      // store drops what is past one (store/keyword_limits.h FitKeywords).
      req.keyword_limits = {cfg_->imap.max_keyword_length, cfg_->imap.max_keywords_per_message,
                            cfg_->imap.max_keywords_per_mailbox};
    }
    // SRS (outbound/srs.h): the forwarded copy's envelope sender is ours.
    std::string forwarder = tx_.from;
    if (svc_.srs && !filtered->redirects.empty()) {
      forwarder =
          outbound::SrsForward(tx_.from, svc_.srs->domain, svc_.srs->secret, req.received_at);
    }
    if (auto redirect = sieve::RedirectRequest(*filtered, req.content, forwarder)) {
      if (!req.outbound) {
        req.outbound = std::move(redirect);
      } else {
        late_redirects = std::move(redirect);
      }
    }
  }
  auto deliver = [store, req = std::move(req)](store::Done<store::DeliveryReceipt> done) mutable {
    store->Deliver(std::move(req), std::move(done));
  };
  std::chrono::milliseconds timeout = seconds(cfg_->smtp.commit_timeout_seconds);
  Result<store::DeliveryReceipt> receipt =
      co_await io::AwaitCallback<store::DeliveryReceipt>(std::move(deliver), timeout);
  if (!receipt) {
    spdlog::warn("smtp: id={} delivery failed: {}", id, receipt.error().message);
    Reply("451 4.3.0 Error: queue file write error, try again later");
    CountMessage(451);
  } else {
    // One line per accepted transaction: client, sender, every recipient.
    std::string to;
    for (const auto& r : tx_.rcpts) to += (to.empty() ? "<" : ",<") + LogSafe(r) + ">";
    for (const auto& r : tx_.remote) to += (to.empty() ? "<" : ",<") + LogSafe(r.address) + ">";
    spdlog::info(
        "{}: id={} ip={} from=<{}> to={} rcpts={} remote={} queue={} size={} content={} stored",
        mode_name(), id, conn_.peer_ip(), LogSafe(tx_.from), to, tx_.rcpts.size(),
        tx_.remote.size(), receipt->queue_id, size, receipt->content_id.substr(0, 16));
    bool queued = receipt->queue_id != 0;
    if (filtered && (sieve::HasAfterCommitWork(*filtered, *receipt) || late_redirects)) {
      // After the commit: vacation replies, duplicate tracking, fell-back filings.
      auto finish = [store, &filter_in, &filtered, &receipt, &late_redirects,
                     host = cfg_->hostname]() -> size_t {
        size_t n = sieve::Finish(*store, filter_in, *filtered, *receipt, host);
        if (late_redirects) {
          store::DeliveryRequest more;
          more.received_at = filter_in.now;
          more.outbound = std::move(late_redirects);
          auto r = store::Wait<store::DeliveryReceipt>([&](store::Done<store::DeliveryReceipt> cb) {
            store->Deliver(std::move(more), std::move(cb));
          });
          if (r) ++n;
        }
        return n;
      };
      if (co_await io::Offload(*svc_.blocking, std::move(finish)) > 0) queued = true;
    }
    if (queued && svc_.outbound_queued) svc_.outbound_queued();
    // The SMTP id; `hato queue` accepts it as well as its own queue id.
    Reply("250 2.0.0 Ok: queued as " + id +
          (receipt->queue_id != 0 ? " (queue " + std::to_string(receipt->queue_id) + ")" : ""));
    CountMessage(250);
  }
  tx_ = Transaction{};
  co_return true;
}

awaitable<bool> Session::ScanInbound(const std::string& id, std::string& content,
                                     std::string& trace, scan::Verdict& verdict) {
  // Our own fields are ours to write: a sender's copies are removed whatever
  // the scan gives (a forged "X-Spam-Flag: NO" must not reach a reader).
  content = scan::RemoveScanHeaderFields(content);
  scan::Envelope env{conn_.peer_ip(), helo_, tx_.from, tx_.rcpts, id, std::string()};
  config::ScanConfig cfg = cfg_->scan;
  auto check = [cfg, env = std::move(env), msg = trace + content] {
    return scan::ScanMessage(cfg, env, msg);
  };
  asio::thread_pool& pool = svc_.checks ? *svc_.checks : *svc_.blocking;
  scan::ScanOutcome out = co_await io::Offload(pool, std::move(check));
  verdict = out.verdict;
  server::Counters* counters = svc_.counters;
  auto count = [counters](std::atomic<uint64_t> server::Counters::*c) {
    if (counters) (counters->*c).fetch_add(1, std::memory_order_relaxed);
  };
  if (!cfg.clamd.empty() && !verdict.virus_scanned && !verdict.virus_found) {
    spdlog::warn("smtp: id={} virus scan skipped: {}", id, out.notes.virus);
    count(&server::Counters::scan_virus_unscanned);
  }
  if (verdict.virus_found) {
    spdlog::info("smtp: id={} ip={} from=<{}> refused: virus {}", id, conn_.peer_ip(),
                 LogSafe(tx_.from), verdict.virus_name);
    Reply("554 5.7.1 Message refused: virus found (" + verdict.virus_name + ")");
    CountMessage(554);
    count(&server::Counters::scan_virus_refused);
    tx_ = Transaction{};
    co_return false;
  }
  if (!cfg.rspamd_url.empty() && !verdict.spam_scanned) {
    spdlog::warn("smtp: id={} spam scan skipped: {}", id, out.notes.spam);
    count(&server::Counters::scan_spam_unscanned);
  }
  if (verdict.spam_scanned) {
    spdlog::info("smtp: id={} rspamd score={:.2f} required={:.2f} time={:.3f}s", id,
                 verdict.spam_score, verdict.spam_required, out.rspamd_seconds);
  }
  switch (verdict.spam_action) {
    case scan::SpamAction::kReject:
      spdlog::info("smtp: id={} ip={} from=<{}> refused: spam (score {:.2f})", id, conn_.peer_ip(),
                   LogSafe(tx_.from), verdict.spam_score);
      Reply("550 5.7.1 Message rejected as spam");
      CountMessage(550);
      count(&server::Counters::scan_spam_rejected);
      tx_ = Transaction{};
      co_return false;
    case scan::SpamAction::kJunk:
      count(&server::Counters::scan_spam_junked);
      break;
    case scan::SpamAction::kMark:
      count(&server::Counters::scan_spam_marked);
      break;
    case scan::SpamAction::kNone:
      break;
  }
  trace = out.fields + trace;
  co_return true;
}

awaitable<bool> Session::HandleData() {
  if (!tx_.active) {
    Reply("503 5.5.1 Error: need MAIL command");
    co_return CountError();
  }
  if (tx_.bdat_started) {
    // RFC 3030 section 2: DATA and BDAT may not be mixed in one transaction.
    Reply("503 5.5.1 Error: DATA not allowed after BDAT");
    co_return CountError();
  }
  if (!has_recipients()) {
    Reply("554 5.5.1 Error: no valid recipients");
    co_return CountError();
  }
  Reply("354 End data with <CR><LF>.<CR><LF>");
  bool flushed = co_await Flush();
  if (!flushed) co_return false;
  seconds idle(cfg_->smtp.idle_timeout_seconds);
  auto deadline = DataDeadline();
  DataReader reader(cfg_->smtp.max_message_size);
  while (true) {
    std::string& buf = conn_.buffer();
    size_t used = reader.Feed(buf);
    buf.erase(0, used);
    if (!ChargeData(reader.content().size())) co_return false;
    if (reader.done()) break;
    seconds wait = ReadTimeout(idle, deadline);
    io::ReadStatus st = io::ReadStatus::kTimeout;
    if (wait.count() > 0) st = co_await conn_.ReadMore(wait);
    if (st == io::ReadStatus::kTimeout) {
      Reply("421 4.4.2 " + cfg_->hostname + " Error: timeout exceeded");
      co_return false;
    }
    if (st != io::ReadStatus::kOk) co_return false;  // the client went away: nothing stored
  }
  if (reader.too_large()) {
    Reply("552 5.3.4 Message size exceeds fixed limit");
    tx_ = Transaction{};
    co_return true;
  }
  bool delivered = co_await Deliver(std::move(reader.content()));
  charge_.Set(0);
  co_return delivered;
}

awaitable<bool> Session::HandleBdat(const Command& c) {
  // RFC 3030 section 2: the chunk follows the command whatever the reply, so
  // read (or discard) exactly chunk_size bytes first.
  bool usable = tx_.active && has_recipients() && !tx_.bdat_failed;
  uint64_t limit = cfg_->smtp.max_message_size;
  uint64_t left = c.chunk_size;
  seconds idle(cfg_->smtp.idle_timeout_seconds);
  auto deadline = DataDeadline();
  while (left > 0) {
    std::string& buf = conn_.buffer();
    if (!buf.empty()) {
      size_t take = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
      if (usable) {
        tx_.bdat_norm.Feed(std::string_view(buf).substr(0, take), tx_.bdat, limit);
        tx_.bdat_started = true;
      }
      buf.erase(0, take);
      left -= take;
      if (!ChargeData(tx_.bdat.size())) co_return false;
      continue;
    }
    bool flushed = co_await Flush();
    if (!flushed) co_return false;
    seconds wait = ReadTimeout(idle, deadline);
    io::ReadStatus st = io::ReadStatus::kTimeout;
    if (wait.count() > 0) st = co_await conn_.ReadMore(wait);
    if (st == io::ReadStatus::kTimeout) {
      Reply("421 4.4.2 " + cfg_->hostname + " Error: timeout exceeded");
      co_return false;
    }
    if (st != io::ReadStatus::kOk) co_return false;
  }
  if (!tx_.active) {
    Reply("503 5.5.1 Error: need MAIL command");
    co_return CountError();
  }
  if (!has_recipients()) {
    Reply("554 5.5.1 Error: no valid recipients");
    co_return CountError();
  }
  tx_.bdat_started = true;
  if (tx_.bdat_norm.overflowed()) tx_.bdat_failed = true;
  co_return co_await EndChunk(
      c.last_chunk, "250 2.0.0 " + std::to_string(c.chunk_size) + " octets received", limit);
}

// The end of a BDAT or BURL chunk (RFC 3030 section 2, RFC 4468 section 3):
// `ok` for a chunk that is not the last, else the message is delivered
// (or refused whole when it outgrew the limit).
awaitable<bool> Session::EndChunk(bool last, std::string ok, uint64_t limit) {
  if (!last) {
    Reply(tx_.bdat_failed ? "552 5.3.4 Message size exceeds fixed limit" : ok);
    co_return true;
  }
  if (tx_.bdat_failed) {
    Reply("552 5.3.4 Message size exceeds fixed limit");
    tx_ = Transaction{};
    co_return true;
  }
  tx_.bdat_norm.Finish(tx_.bdat, limit);
  std::string content = std::move(tx_.bdat);
  bool delivered = co_await Deliver(std::move(content));
  charge_.Set(0);
  co_return delivered;
}

// BURL (RFC 4468): the URLAUTH URL's content is the next chunk of the
// message, as if sent with BDAT (sections 3 and 4); the submission server
// presents itself as acting for the authenticated user ("submit+user"
// access, RFC 4467 section 3). URLs of this server are read from the store
// (imap/server/urlauth.h); others are refused.
awaitable<bool> Session::HandleBurl(const Command& c) {
  if (account_id_ == 0) {
    Reply("530 5.7.0 Authentication required");
    co_return CountError();
  }
  if (!tx_.active) {
    Reply("503 5.5.1 Error: need MAIL command");
    co_return CountError();
  }
  if (!has_recipients()) {
    Reply("554 5.5.1 Error: no valid recipients");
    co_return CountError();
  }
  store::Store* store = svc_.store;
  std::vector<std::string> servers = imap::ThisServerNames(cfg_->hostname);
  auto fetch = [store, url = c.arg, user = account_address_, servers]() {
    return imap::FetchAuthorizedUrl(*store, url, {user, /*submit=*/true}, servers,
                                    std::time(nullptr));
  };
  auto data = co_await io::Offload(*svc_.blocking, std::move(fetch));
  if (!data) {
    if (data.error().kind == ErrorKind::kNotFound) {
      // RFC 4468 section 6: the URL cannot be resolved (5.6.6).
      Reply("554 5.6.6 IMAP URL resolution failed");
      co_return CountError();
    }
    spdlog::error("smtp: BURL for {}: {}", account_address_, data.error().message);
    Reply("451 4.4.0 IMAP URL could not be read, try again later");
    co_return true;
  }
  uint64_t limit = cfg_->smtp.max_message_size;
  if (!tx_.bdat_failed) {
    tx_.bdat_norm.Feed(*data, tx_.bdat, limit);
    if (tx_.bdat_norm.overflowed()) tx_.bdat_failed = true;
  }
  tx_.bdat_started = true;
  if (!ChargeData(tx_.bdat.size())) co_return false;
  co_return co_await EndChunk(c.last_chunk,
                              "250 2.5.0 " + std::to_string(data->size()) + " octets added", limit);
}

awaitable<bool> Session::HandleStartTls() {
  if (conn_.is_tls()) {
    Reply("503 5.5.1 Error: TLS already active");
    co_return CountError();
  }
  if (!conn_.tls_available()) {
    Reply("454 4.7.0 TLS not available");
    co_return true;
  }
  Reply("220 2.0.0 Ready to start TLS");
  bool flushed = co_await Flush();
  if (!flushed) co_return false;
  // StartTls discards anything pipelined after STARTTLS (RFC 3207 section 4.2
  // and the command-injection attack): the client starts over with EHLO.
  seconds timeout(cfg_->tls_handshake_timeout_seconds);
  bool secured = co_await conn_.StartTls(timeout);
  if (!secured) co_return false;
  helo_.clear();
  extended_ = false;
  tx_ = Transaction{};
  co_return true;
}

awaitable<std::optional<std::string>> Session::ReadSaslLine(const std::string& challenge) {
  Reply("334 " + challenge);
  bool flushed = co_await Flush();
  if (!flushed) co_return std::nullopt;
  seconds idle(cfg_->smtp.idle_timeout_seconds);
  io::LineResult line = co_await conn_.ReadLine(kMaxAuthLine, idle);
  if (line.status == io::ReadStatus::kTooLong) co_return std::string("*");
  if (line.status != io::ReadStatus::kOk) co_return std::nullopt;
  co_return std::move(line.line);
}

// RFC 4954 AUTH with the PLAIN (RFC 4616) and LOGIN mechanisms. Passwords
// are checked by server::CheckLogin, shared with POP3 and IMAP (penalties,
// constant cost for unknown accounts).
awaitable<bool> Session::HandleAuth(const Command& c) {
  if (account_id_ != 0) {
    Reply("503 5.5.1 Error: already authenticated");
    co_return CountError();
  }
  if (tx_.active) {
    Reply("503 5.5.1 Error: AUTH not permitted during a mail transaction");
    co_return CountError();
  }
  if (helo_.empty()) {
    Reply("503 5.5.1 Error: send EHLO first");
    co_return CountError();
  }
  if (!PlaintextAllowed()) {
    Reply("538 5.7.11 Encryption required for requested authentication mechanism");
    co_return CountError();
  }
  auto words = SplitWords(c.arg);
  if (words.empty() || words.size() > 2) {
    Reply("501 5.5.4 Syntax: AUTH mechanism [initial-response]");
    co_return CountError();
  }
  std::string mech = AsciiUpper(words[0]);
  std::string initial = words.size() == 2 ? std::string(words[1]) : std::string();
  if (mech == auth::kScramSha256) {
    std::optional<std::string> first;
    if (words.size() == 2) first = initial;
    bool ok = co_await HandleAuthScram(std::move(first));
    co_return ok;
  }
  std::string user, password;
  bool malformed = false;
  if (mech == "PLAIN") {
    std::string response = initial;
    if (words.size() == 1) {
      std::string empty;
      std::optional<std::string> line = co_await ReadSaslLine(empty);
      if (!line) co_return false;
      response = std::move(*line);
    } else if (response == "=") {
      response.clear();  // a zero-length initial response
    }
    if (response == "*") {
      Reply("501 5.0.0 Authentication cancelled");
      co_return CountError();
    }
    // RFC 4616 section 2: [authzid] NUL authcid NUL passwd.
    auto decoded = Base64Decode(response);
    size_t nul1 = decoded ? decoded->find('\0') : std::string::npos;
    size_t nul2 = nul1 == std::string::npos ? nul1 : decoded->find('\0', nul1 + 1);
    if (nul2 == std::string::npos || decoded->find('\0', nul2 + 1) != std::string::npos) {
      malformed = true;
    } else {
      std::string authzid = decoded->substr(0, nul1);
      user = decoded->substr(nul1 + 1, nul2 - nul1 - 1);
      password = decoded->substr(nul2 + 1);
      // Acting as another user is not supported.
      if (!authzid.empty() && !EqualsIgnoreCase(authzid, user)) {
        Reply("535 5.7.8 Authorization identity not permitted");
        co_return CountError();
      }
    }
  } else if (mech == "LOGIN") {
    // draft-murchison-sasl-login: "Username:" and "Password:" challenges.
    std::string user64 = initial;
    if (user64.empty()) {
      std::string ask_user = Base64Encode("Username:");
      std::optional<std::string> line = co_await ReadSaslLine(ask_user);
      if (!line) co_return false;
      user64 = std::move(*line);
    }
    std::string pass64;
    if (user64 != "*") {
      std::string ask_pass = Base64Encode("Password:");
      std::optional<std::string> line = co_await ReadSaslLine(ask_pass);
      if (!line) co_return false;
      pass64 = std::move(*line);
    }
    if (user64 == "*" || pass64 == "*") {
      Reply("501 5.0.0 Authentication cancelled");
      co_return CountError();
    }
    auto u = Base64Decode(user64);
    auto p = Base64Decode(pass64);
    if (!u || !p) {
      malformed = true;
    } else {
      user = std::move(*u);
      password = std::move(*p);
    }
  } else {
    Reply("504 5.5.4 Unrecognized authentication mechanism");
    co_return CountError();
  }
  if (malformed || user.empty()) {
    Reply("501 5.5.2 Malformed authentication response");
    co_return CountError();
  }
  std::string ip = conn_.peer_ip();
  std::string protocol = "submission";
  server::LoginResult login = co_await server::CheckLogin(svc_, std::move(ip), std::move(user),
                                                          std::move(password), std::move(protocol));
  if (login.outcome == server::LoginOutcome::kTemporary) {
    Reply("454 4.7.0 Temporary authentication failure");
    co_return true;
  }
  if (login.outcome != server::LoginOutcome::kOk) {
    Reply("535 5.7.8 Authentication credentials invalid");
    co_return CountError();
  }
  account_id_ = login.account_id;
  account_address_ = login.address;
  account_session_ = server::AccountSessions::Registration(svc_.account_sessions, account_id_,
                                                           login.session_epoch, this);
  spdlog::info("submission: {} authenticated from {}", account_address_, conn_.peer_ip());
  Reply("235 2.7.0 Authentication successful");
  co_return true;
}

// SCRAM-SHA-256 (RFC 5802, RFC 7677) over RFC 4954: the client-first
// message is the initial response or the answer to an empty challenge; the
// server-first and then the server-final message ("v=", RFC 4954 section 4:
// additional data with success is sent as a challenge) are 334 challenges,
// the last answered with an empty line. The account check and its penalty
// are server::BeginScramLogin / FinishScramLogin, shared with IMAP and POP3.
awaitable<bool> Session::HandleAuthScram(std::optional<std::string> initial) {
  std::string response;
  if (!initial) {
    std::string empty;
    std::optional<std::string> line = co_await ReadSaslLine(empty);
    if (!line) co_return false;
    response = std::move(*line);
  } else if (*initial != "=") {
    response = std::move(*initial);
  }
  if (response == "*") {
    Reply("501 5.0.0 Authentication cancelled");
    co_return CountError();
  }
  auth::ScramServer scram;
  auto decoded = Base64Decode(response);
  if (!decoded) {
    Reply("501 5.5.2 Malformed authentication response");
    co_return CountError();
  }
  auto first = scram.ReceiveClientFirst(*decoded);
  if (!first) {
    Reply("501 5.5.2 Malformed authentication response: " + first.error().message);
    co_return CountError();
  }
  if (!first->authzid.empty() && !EqualsIgnoreCase(first->authzid, first->user)) {
    Reply("535 5.7.8 Authorization identity not permitted");
    co_return CountError();
  }
  std::string ip = conn_.peer_ip();
  std::string user = first->user;
  std::string protocol = "submission";
  server::ScramAccount account = co_await server::BeginScramLogin(svc_, ip, user, protocol);
  if (account.outcome == server::LoginOutcome::kTemporary) {
    Reply("454 4.7.0 Temporary authentication failure");
    co_return true;
  }
  std::string nonce = auth::RandomScramNonce();
  std::string server_first = Base64Encode(scram.ServerFirst(account.verifier, nonce));
  std::optional<std::string> line = co_await ReadSaslLine(server_first);
  if (!line) {
    server::AbandonScramLogin(svc_, ip, account, protocol);
    co_return false;
  }
  if (*line == "*") {
    server::AbandonScramLogin(svc_, ip, account, protocol);
    Reply("501 5.0.0 Authentication cancelled");
    co_return CountError();
  }
  auto final_msg = Base64Decode(*line);
  Result<std::string> server_final = final_msg ? scram.ReceiveClientFinal(*final_msg)
                                               : Result<std::string>(Err(ErrorKind::kInvalid, ""));
  if (!server_final && server_final.error().kind == ErrorKind::kInvalid) {
    server::AbandonScramLogin(svc_, ip, account, protocol);
    Reply("501 5.5.2 Malformed authentication response");
    co_return CountError();
  }
  bool proof_ok = server_final.ok();
  server::LoginResult login =
      co_await server::FinishScramLogin(svc_, ip, std::move(account), proof_ok, protocol);
  if (login.outcome != server::LoginOutcome::kOk) {
    Reply("535 5.7.8 Authentication credentials invalid");
    co_return CountError();
  }
  std::string verifier = Base64Encode(*server_final);
  std::optional<std::string> ack = co_await ReadSaslLine(verifier);
  if (!ack) co_return false;
  if (!ack->empty()) {
    Reply(*ack == "*" ? "501 5.0.0 Authentication cancelled"
                      : "501 5.5.2 Malformed authentication response");
    co_return CountError();
  }
  account_id_ = login.account_id;
  account_address_ = login.address;
  account_session_ = server::AccountSessions::Registration(svc_.account_sessions, account_id_,
                                                           login.session_epoch, this);
  spdlog::info("submission: {} authenticated with SCRAM-SHA-256 from {}", account_address_,
               conn_.peer_ip());
  Reply("235 2.7.0 Authentication successful");
  co_return true;
}

// Per-account sending limits (submission.max_messages_per_hour/day), counted
// from the store's submission log so they hold across restarts.
awaitable<bool> Session::CheckSendingLimits() {
  const auto& lim = cfg_->submission;
  if (lim.max_messages_per_hour == 0 && lim.max_messages_per_day == 0) co_return true;
  store::Store* store = svc_.store;
  int64_t account = account_id_;
  int64_t now = std::time(nullptr);
  struct Counts {
    Result<uint64_t> hour = uint64_t{0};
    Result<uint64_t> day = uint64_t{0};
  };
  auto count = [store, account, now] {
    Counts c;
    c.hour = store->CountSubmissions(account, now - 3600);
    if (c.hour.ok()) c.day = store->CountSubmissions(account, now - 86400);
    return c;
  };
  Counts n = co_await io::Offload(*svc_.blocking, std::move(count));
  if (!n.hour || !n.day) {
    Reply("451 4.3.0 Temporary lookup failure, try again later");
    co_return false;
  }
  if (lim.max_messages_per_hour != 0 && *n.hour >= lim.max_messages_per_hour) {
    Reply("451 4.7.1 Sending limit exceeded: " + std::to_string(lim.max_messages_per_hour) +
          " messages per hour");
    co_return false;
  }
  if (lim.max_messages_per_day != 0 && *n.day >= lim.max_messages_per_day) {
    Reply("451 4.7.1 Sending limit exceeded: " + std::to_string(lim.max_messages_per_day) +
          " messages per day");
    co_return false;
  }
  co_return true;
}

}  // namespace

awaitable<void> Server::Serve(tcp::socket socket) {
  auto cfg = services_.config->Get();
  std::string refusal_total =
      "421 4.3.2 " + cfg->hostname + " Too many connections, try again later";
  std::string refusal_ip =
      "421 4.7.0 " + cfg->hostname + " Too many connections from your address, try again later";
  std::optional<server::Admission::Ticket> ticket = co_await server::Admit(
      admission_, socket, cfg->smtp.max_connections, cfg->smtp.max_connections_per_ip,
      cfg->per_ip_limits_on_loopback, refusal_total, refusal_ip);
  if (!ticket) co_return;
  Session session(services_, std::move(socket), mode_);
  server::SessionRegistry::Scope registered(registry_, &session);
  co_await session.Run();
}

}  // namespace hato::smtp
