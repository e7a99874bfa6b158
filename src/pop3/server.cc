#include "pop3/server.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/password.h"
#include "auth/scram.h"
#include "base/strings.h"
#include "io/await.h"
#include "io/net.h"
#include "pop3/command.h"
#include "server/login.h"

namespace hato::pop3 {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Bad commands tolerated in one session; past it "-ERR too many errors" and close.
constexpr int kMaxErrors = 20;
// QUIT never waits longer than this for the expunge to commit; past it
// "-ERR [SYS/TEMP] some deleted messages not removed".
constexpr seconds kExpungeTimeout{60};
// Replies to pipelined commands (say RETR 1..n) are written out once they reach
// this size instead of piling up in memory.
constexpr size_t kFlushThreshold = size_t{256} * 1024;

constexpr std::string_view kNeedTls =
    "-ERR [AUTH] plaintext authentication requires TLS (use STLS)";

// RFC 1939 section 3: the session states. UPDATE is entered and left within QUIT.
enum class State { kAuthorization, kTransaction };

// Which commands each state allows (RFC 1939 sections 4 to 7; CAPA in both,
// RFC 2449 section 5; STLS and AUTH only before login, RFC 2595 section 4 and
// RFC 5034 section 4).
bool Allowed(Verb verb, State state) {
  switch (verb) {
    case Verb::kCapa:
    case Verb::kQuit:
      return true;
    case Verb::kUser:
    case Verb::kPass:
    case Verb::kApop:
    case Verb::kAuth:
    case Verb::kStls:
      return state == State::kAuthorization;
    case Verb::kStat:
    case Verb::kList:
    case Verb::kRetr:
    case Verb::kDele:
    case Verb::kNoop:
    case Verb::kRset:
    case Verb::kTop:
    case Verb::kUidl:
      return state == State::kTransaction;
  }
  return false;
}

// Holds the lock on one maildrop and releases it when destroyed, so that a
// session ending in any way (QUIT, disconnect, timeout, error) unlocks.
class MaildropLock {
 public:
  MaildropLock() = default;
  MaildropLock(MaildropLocks* locks, int64_t account_id) : locks_(locks), id_(account_id) {}
  MaildropLock(const MaildropLock&) = delete;
  MaildropLock& operator=(const MaildropLock&) = delete;
  MaildropLock& operator=(MaildropLock&& o) noexcept {
    if (this != &o) {
      Release();
      locks_ = std::exchange(o.locks_, nullptr);
      id_ = o.id_;
    }
    return *this;
  }
  ~MaildropLock() { Release(); }

  void Release() {
    if (locks_) locks_->Unlock(id_);
    locks_ = nullptr;
  }

 private:
  MaildropLocks* locks_ = nullptr;
  int64_t id_ = 0;
};

// Appends `content` as the body of a multi-line response (RFC 1939 section 3):
// lines end in CRLF, a line starting with "." gets one more "." (byte-stuffing),
// and the response ends with a "." line. Content whose last line has no line
// ending gets a CRLF before the terminating ".". Built in one pass into one
// buffer so that a large message goes out in a single write.
void AppendMultiline(std::string_view content, std::string& out) {
  out.reserve(out.size() + content.size() + content.size() / 256 + 8);
  size_t pos = 0;
  while (pos < content.size()) {
    size_t lf = content.find('\n', pos);
    size_t end = lf == std::string_view::npos ? content.size() : lf;
    size_t text_end = (end > pos && content[end - 1] == '\r') ? end - 1 : end;
    if (content[pos] == '.') out.push_back('.');
    out.append(content.substr(pos, text_end - pos));
    out.append("\r\n");
    pos = end + 1;
  }
  out.append(".\r\n");
}

// RFC 1939 section 7 (TOP): the header, the blank line separating it from the
// body, then the first `lines` lines of the body.
std::string_view TopOf(std::string_view content, uint64_t lines) {
  size_t pos = 0;
  while (true) {  // up to and including the first empty line
    size_t lf = content.find('\n', pos);
    if (lf == std::string_view::npos) return content;  // no body at all
    bool empty = lf == pos || (lf == pos + 1 && content[pos] == '\r');
    pos = lf + 1;
    if (empty) break;
  }
  for (uint64_t i = 0; i < lines && pos < content.size(); ++i) {
    size_t lf = content.find('\n', pos);
    if (lf == std::string_view::npos) return content;
    pos = lf + 1;
  }
  return content.substr(0, pos);
}

// A hash to verify against when the account does not exist, so that a failed
// login costs the same time whether or not the address is known.

class Session final : public server::SessionRegistry::Member,
                      public server::AccountSessions::Member {
 public:
  Session(server::Services& services, MaildropLocks& locks, tcp::socket socket, bool implicit_tls)
      : svc_(services),
        locks_(locks),
        conn_(std::move(socket), services.tls),
        cfg_(services.config->Get()),
        implicit_tls_(implicit_tls) {
    // A client that stops reading (a RETR it never takes) is cut off like an idle one.
    conn_.set_write_timeout(std::chrono::seconds(cfg_->pop3.idle_timeout_seconds));
  }

  awaitable<void> Run();

  void RequestStop() override {
    stopping_ = true;
    if (idle_) conn_.CancelReads();
  }
  // The account's password changed or it was removed: close without UPDATE
  // (messages marked for deletion stay).
  void EndSession() override {
    ended_ = true;
    stopping_ = true;
    conn_.CancelReads();
  }
  std::string StopReply() const {
    return ended_ ? "-ERR [AUTH] session ended: the password was changed or the account removed"
                  : "-ERR [SYS/TEMP] server shutting down, try again later";
  }

 private:
  struct Message {
    store::MessageMeta meta;
    bool deleted = false;
  };

  // Replies are buffered and flushed before the session waits for input, so a
  // pipelining client gets one write per group of commands (RFC 2449 section 6.6).
  void Reply(std::string_view line) { conn_.QueueLine(line); }
  awaitable<bool> Flush() { return conn_.Flush(); }
  bool CountError();  // false when the error limit closed the session
  seconds idle_timeout() const { return seconds(cfg_->pop3.idle_timeout_seconds); }
  // RFC 2595 section 3.1 / RFC 5034 section 6: passwords only over TLS, or on
  // loopback when the configuration allows it.
  bool PlaintextAllowed() const {
    return conn_.is_tls() || (conn_.peer_is_loopback() && cfg_->auth.allow_plaintext_on_loopback);
  }

  // AUTHORIZATION state.
  void HandleCapa();
  bool HandleUser(const Command& c);
  awaitable<bool> HandlePass(const Command& c, const std::optional<std::string>& user);
  awaitable<bool> HandleAuth(const Command& c);
  awaitable<bool> HandleAuthScram(const Command& c);
  // Sends the challenge "+ <challenge>" and reads the response line; nullopt
  // when answered (line too long) or when the session must close (`closed`).
  awaitable<std::optional<std::string>> ReadSaslLine(const std::string& challenge, bool& closed);
  awaitable<bool> HandleStls();
  // The arguments must outlive the call (callers pass their own locals).
  awaitable<bool> Login(const std::string& user, const std::string& password);
  // After a checked login: the reply, and on success the maildrop lock and snapshot.
  awaitable<bool> LoginChecked(const server::LoginResult& check);

  // TRANSACTION state.
  const Message* Find(uint64_t number) const;  // null when absent or marked deleted
  void HandleStat();
  void HandleList(const Command& c, bool uidl);
  awaitable<bool> HandleRetr(const Command& c, bool top);
  void HandleDele(const Command& c);
  void HandleRset();
  awaitable<bool> HandleQuit();  // the UPDATE state

  server::Services& svc_;
  MaildropLocks& locks_;
  io::Connection conn_;
  std::shared_ptr<const config::Config> cfg_;
  bool implicit_tls_ = false;  // POP3S
  int errors_ = 0;
  bool stopping_ = false;  // graceful stop requested
  bool ended_ = false;     // EndSession
  bool idle_ = false;      // waiting for a command
  State state_ = State::kAuthorization;
  std::optional<std::string> user_;  // name given by USER, for the PASS right after it

  // After login.
  MaildropLock lock_;
  int64_t account_id_ = 0;
  std::string address_;
  uint32_t uidvalidity_ = 0;
  std::vector<Message> messages_;                          // message number n is messages_[n - 1]
  server::AccountSessions::Registration account_session_;  // after login
};

awaitable<void> Session::Run() {
  if (implicit_tls_) {
    // POP3S (RFC 8314 section 3.3, port 995): TLS from the first byte; a
    // failed handshake closes.
    bool secured = co_await conn_.StartTls(idle_timeout());
    if (!secured) {
      conn_.Close();
      co_return;
    }
  }
  Reply("+OK " + cfg_->hostname + " POP3 Hato ready");
  while (true) {
    if (conn_.buffer().find('\n') == std::string::npos ||
        conn_.output().size() >= kFlushThreshold) {
      bool sent = co_await Flush();
      if (!sent) co_return;
    }
    cfg_ = svc_.config->Get();  // a reload applies from the next command
    seconds timeout = idle_timeout();
    if (stopping_) {
      Reply(StopReply());
      break;
    }
    idle_ = true;
    auto line = co_await conn_.ReadLine(kMaxCommandLine, timeout);
    idle_ = false;
    if (stopping_ && line.status == io::ReadStatus::kError) {
      Reply(StopReply());
      break;
    }
    // RFC 1939 section 3: when the autologout timer expires the server closes
    // the connection without a response and without entering UPDATE.
    if (line.status == io::ReadStatus::kTimeout) break;
    // PASS must come right after USER (RFC 1939 section 7).
    std::optional<std::string> user = std::exchange(user_, std::nullopt);
    if (line.status == io::ReadStatus::kTooLong) {
      Reply("-ERR line too long");
      if (!CountError()) break;
      continue;
    }
    if (line.status != io::ReadStatus::kOk) co_return;

    auto cmd = ParseCommand(line.line);
    if (!cmd) {
      if (cmd.error().kind == ErrorKind::kNotFound) {
        Reply("-ERR unknown command");
      } else {
        Reply("-ERR " + cmd.error().message);
      }
      if (!CountError()) break;
      continue;
    }
    if (!Allowed(cmd->verb, state_)) {
      Reply("-ERR command not valid in this state");
      if (!CountError()) break;
      continue;
    }
    bool ok = true;
    switch (cmd->verb) {
      case Verb::kCapa:
        HandleCapa();
        break;
      case Verb::kUser:
        ok = HandleUser(*cmd);
        break;
      case Verb::kPass:
        ok = co_await HandlePass(*cmd, user);
        break;
      case Verb::kAuth:
        ok = co_await HandleAuth(*cmd);
        break;
      case Verb::kApop:
        Reply("-ERR APOP not supported");
        break;
      case Verb::kStls:
        ok = co_await HandleStls();
        break;
      case Verb::kStat:
        HandleStat();
        break;
      case Verb::kList:
        HandleList(*cmd, false);
        break;
      case Verb::kUidl:
        HandleList(*cmd, true);
        break;
      case Verb::kRetr:
        ok = co_await HandleRetr(*cmd, false);
        break;
      case Verb::kTop:
        ok = co_await HandleRetr(*cmd, true);
        break;
      case Verb::kDele:
        HandleDele(*cmd);
        break;
      case Verb::kRset:
        HandleRset();
        break;
      case Verb::kNoop:
        Reply("+OK");
        break;
      case Verb::kQuit:
        ok = co_await HandleQuit();
        break;
    }
    if (!ok) break;
  }
  co_await Flush();
  conn_.Close();
}

bool Session::CountError() {
  if (++errors_ < kMaxErrors) return true;
  Reply("-ERR too many errors");
  return false;
}

// RFC 2449 section 5; the capabilities are those of the current state.
void Session::HandleCapa() {
  bool auth = state_ == State::kAuthorization;
  Reply("+OK capability list follows");
  Reply("TOP");
  Reply("UIDL");
  if (auth && PlaintextAllowed()) Reply("USER");
  Reply("RESP-CODES");
  Reply("AUTH-RESP-CODE");  // RFC 3206 section 3
  Reply("PIPELINING");
  if (auth && PlaintextAllowed()) Reply("SASL SCRAM-SHA-256 PLAIN");    // RFC 5034 section 3
  if (auth && conn_.tls_available() && !conn_.is_tls()) Reply("STLS");  // RFC 2595 section 4
  Reply("IMPLEMENTATION Hato");
  Reply(".");
}

// RFC 1939 section 7: the reply does not say whether the mailbox exists.
bool Session::HandleUser(const Command& c) {
  if (!PlaintextAllowed()) {
    Reply(kNeedTls);
    return CountError();
  }
  user_ = c.arg;
  Reply("+OK send PASS");
  return true;
}

awaitable<bool> Session::HandlePass(const Command& c, const std::optional<std::string>& user) {
  if (!user) {
    Reply("-ERR send USER first");
    co_return CountError();
  }
  if (!PlaintextAllowed()) {
    Reply(kNeedTls);
    co_return CountError();
  }
  bool ok = co_await Login(*user, c.arg);
  co_return ok;
}

// RFC 5034 section 4 with the PLAIN mechanism of RFC 4616.
awaitable<bool> Session::HandleAuth(const Command& c) {
  if (c.arg.empty()) {
    // Without a mechanism: list them (the RFC 1734 form many clients still send).
    Reply("+OK");
    if (PlaintextAllowed()) {
      Reply("SCRAM-SHA-256");
      Reply("PLAIN");
    }
    Reply(".");
    co_return true;
  }
  if (c.arg != "PLAIN" && c.arg != auth::kScramSha256) {
    Reply("-ERR unsupported authentication mechanism");
    co_return CountError();
  }
  if (!PlaintextAllowed()) {
    Reply(kNeedTls);
    co_return CountError();
  }
  if (c.arg == auth::kScramSha256) {
    bool ok = co_await HandleAuthScram(c);
    co_return ok;
  }
  std::string response;
  if (!c.arg2.empty()) {
    // A zero-length initial response is sent as "=".
    if (c.arg2 != "=") response = c.arg2;
  } else {
    // No initial response: an empty challenge is "+ " and the client answers
    // with one base64 line, or "*" to cancel.
    bool closed = false;
    std::string empty;
    std::optional<std::string> line = co_await ReadSaslLine(empty, closed);
    if (!line) co_return closed ? false : CountError();
    if (*line == "*") {
      Reply("-ERR authentication cancelled");
      co_return true;
    }
    response = std::move(*line);
  }
  // RFC 4616 section 2: message = [authzid] NUL authcid NUL passwd.
  auto decoded = Base64Decode(response);
  size_t nul1 = decoded ? decoded->find('\0') : std::string::npos;
  size_t nul2 = nul1 == std::string::npos ? nul1 : decoded->find('\0', nul1 + 1);
  if (nul2 == std::string::npos || decoded->find('\0', nul2 + 1) != std::string::npos ||
      nul2 == nul1 + 1 || nul2 + 1 == decoded->size()) {
    Reply("-ERR malformed authentication response");
    co_return CountError();
  }
  std::string authzid = decoded->substr(0, nul1);
  std::string authcid = decoded->substr(nul1 + 1, nul2 - nul1 - 1);
  std::string password = decoded->substr(nul2 + 1);
  // Acting as another user is not supported: the authorization identity, when
  // given, must be the authentication identity.
  if (!authzid.empty() && !EqualsIgnoreCase(authzid, authcid)) {
    Reply("-ERR [AUTH] authorization identity not permitted");
    co_return CountError();
  }
  bool ok = co_await Login(authcid, password);
  co_return ok;
}

awaitable<std::optional<std::string>> Session::ReadSaslLine(const std::string& challenge,
                                                            bool& closed) {
  closed = false;
  Reply("+ " + challenge);
  bool sent = co_await Flush();
  if (!sent) {
    closed = true;
    co_return std::nullopt;
  }
  seconds timeout = idle_timeout();
  auto line = co_await conn_.ReadLine(kMaxAuthLine, timeout);
  if (line.status == io::ReadStatus::kTooLong) {
    Reply("-ERR line too long");
    co_return std::nullopt;
  }
  if (line.status != io::ReadStatus::kOk) {
    closed = true;
    co_return std::nullopt;
  }
  co_return std::move(line.line);
}

// SCRAM-SHA-256 (RFC 5802, RFC 7677) over RFC 5034 section 4: the
// client-first message is the initial response or the answer to an empty
// challenge; the server-first and server-final ("v=") messages are "+ "
// challenges, the last answered with an empty line before "+OK". Shared
// account check: server::BeginScramLogin / FinishScramLogin.
awaitable<bool> Session::HandleAuthScram(const Command& c) {
  std::string response;
  bool closed = false;
  if (!c.arg2.empty()) {
    if (c.arg2 != "=") response = c.arg2;
  } else {
    std::string empty;
    std::optional<std::string> line = co_await ReadSaslLine(empty, closed);
    if (!line) co_return closed ? false : CountError();
    response = std::move(*line);
  }
  if (response == "*") {
    Reply("-ERR authentication cancelled");
    co_return true;
  }
  auth::ScramServer scram;
  auto decoded = Base64Decode(response);
  Result<auth::ScramClientFirst> first =
      decoded ? scram.ReceiveClientFirst(*decoded)
              : Result<auth::ScramClientFirst>(Err(ErrorKind::kInvalid, "bad base64"));
  if (!first) {
    Reply("-ERR malformed authentication response");
    co_return CountError();
  }
  if (!first->authzid.empty() && !EqualsIgnoreCase(first->authzid, first->user)) {
    Reply("-ERR [AUTH] authorization identity not permitted");
    co_return CountError();
  }
  std::string ip = conn_.peer_ip();
  std::string user = first->user;
  std::string protocol = "pop3";
  server::ScramAccount account = co_await server::BeginScramLogin(svc_, ip, user, protocol);
  if (account.outcome == server::LoginOutcome::kTemporary) {
    Reply("-ERR [SYS/TEMP] authentication temporarily unavailable, try again later");
    co_return true;
  }
  std::string nonce = auth::RandomScramNonce();
  std::string server_first = Base64Encode(scram.ServerFirst(account.verifier, nonce));
  std::optional<std::string> line = co_await ReadSaslLine(server_first, closed);
  if (!line || *line == "*") {
    server::AbandonScramLogin(svc_, ip, account, protocol);  // counts as a failure
    if (!line) co_return closed ? false : CountError();
    Reply("-ERR authentication cancelled");
    co_return true;
  }
  auto final_msg = Base64Decode(*line);
  Result<std::string> server_final =
      final_msg ? scram.ReceiveClientFinal(*final_msg)
                : Result<std::string>(Err(ErrorKind::kInvalid, "bad base64"));
  if (!server_final && server_final.error().kind == ErrorKind::kInvalid) {
    server::AbandonScramLogin(svc_, ip, account, protocol);
    Reply("-ERR malformed authentication response");
    co_return CountError();
  }
  bool proof_ok = server_final.ok();
  server::LoginResult check =
      co_await server::FinishScramLogin(svc_, ip, std::move(account), proof_ok, protocol);
  if (check.outcome == server::LoginOutcome::kOk) {
    std::string verifier = Base64Encode(*server_final);
    std::optional<std::string> ack = co_await ReadSaslLine(verifier, closed);
    if (!ack) co_return closed ? false : CountError();
    if (!ack->empty()) {
      Reply(*ack == "*" ? "-ERR authentication cancelled"
                        : "-ERR malformed authentication response");
      co_return CountError();
    }
  }
  bool ok = co_await LoginChecked(check);
  co_return ok;
}

awaitable<bool> Session::HandleStls() {
  if (conn_.is_tls()) {
    Reply("-ERR TLS already active");
    co_return CountError();
  }
  if (!conn_.tls_available()) {
    Reply("-ERR STLS not available");
    co_return CountError();
  }
  Reply("+OK begin TLS negotiation");
  bool sent = co_await Flush();
  if (!sent) co_return false;
  // StartTls discards anything pipelined after STLS (RFC 2595 section 4, and
  // the command-injection attack): the client starts AUTHORIZATION over.
  seconds timeout(cfg_->tls_handshake_timeout_seconds);  // issue 11 item 15
  bool secured = co_await conn_.StartTls(timeout);
  if (!secured) co_return false;
  user_.reset();
  co_return true;
}

// Checks the credentials, locks the maildrop and takes its snapshot. RFC 1939
// section 4: on success the session enters TRANSACTION; on failure it stays in
// AUTHORIZATION. False only when the session must close.
awaitable<bool> Session::Login(const std::string& user, const std::string& password) {
  std::string ip = conn_.peer_ip();
  server::LoginResult check = co_await server::CheckLogin(svc_, ip, user, password, "pop3");
  bool ok = co_await LoginChecked(check);
  co_return ok;
}

awaitable<bool> Session::LoginChecked(const server::LoginResult& check) {
  std::string ip = conn_.peer_ip();
  if (check.outcome == server::LoginOutcome::kTemporary) {
    Reply("-ERR [SYS/TEMP] authentication temporarily unavailable, try again later");
    co_return true;
  }
  if (check.outcome == server::LoginOutcome::kBad) {
    // RFC 3206 section 4: [AUTH] for bad credentials; the same reply whether or
    // not the account exists, after the penalty delay CheckLogin waited.
    Reply("-ERR [AUTH] invalid credentials");
    co_return CountError();
  }
  std::string address = check.address;
  store::Store* store = svc_.store;

  // RFC 1939 section 8 / RFC 2449 section 8.1.1: one session per maildrop;
  // [IN-USE] is only reported once the credentials were verified.
  if (!locks_.TryLock(check.account_id)) {
    Reply("-ERR [IN-USE] maildrop already locked");
    co_return true;
  }
  MaildropLock lock(&locks_, check.account_id);

  int64_t account_id = check.account_id;
  auto list = [store, account_id] {
    return std::optional<Result<store::MailboxSnapshot>>(
        store->ListMessages(account_id, store::kInbox));
  };
  auto snapshot = co_await io::Offload(*svc_.blocking, std::move(list));
  if (!snapshot->ok()) {
    spdlog::error("pop3: cannot list the maildrop of {}: {}", address, snapshot->error().message);
    Reply("-ERR [SYS/TEMP] cannot open the maildrop, try again later");
    co_return true;  // `lock` releases
  }
  lock_ = std::move(lock);
  account_id_ = account_id;
  address_ = address;
  uidvalidity_ = (*snapshot)->uidvalidity;
  messages_.clear();
  messages_.reserve((*snapshot)->messages.size());
  for (const auto& m : (*snapshot)->messages) messages_.push_back(Message{m, false});
  state_ = State::kTransaction;
  account_session_ = server::AccountSessions::Registration(svc_.account_sessions, account_id_,
                                                           check.session_epoch, this);
  spdlog::info("pop3: {} logged in from {}{} ({} messages)", address_, ip,
               conn_.is_tls() ? " with TLS" : "", messages_.size());
  Reply("+OK maildrop locked and ready");
  co_return true;
}

const Session::Message* Session::Find(uint64_t number) const {
  if (number == 0 || number > messages_.size()) return nullptr;
  const Message& m = messages_[number - 1];
  return m.deleted ? nullptr : &m;
}

// RFC 1939 section 5 (STAT): messages marked deleted are not counted.
void Session::HandleStat() {
  uint64_t count = 0;
  uint64_t size = 0;
  for (const auto& m : messages_) {
    if (m.deleted) continue;
    ++count;
    size += m.meta.size;
  }
  Reply("+OK " + std::to_string(count) + " " + std::to_string(size));
}

// RFC 1939 sections 5 (LIST) and 7 (UIDL). The unique-id is
// "<uidvalidity>.<uid>": stable across sessions and restarts, and never reused
// for another message in the same mailbox.
void Session::HandleList(const Command& c, bool uidl) {
  auto value = [&](const Message& m) {
    return uidl ? std::to_string(uidvalidity_) + "." + std::to_string(m.meta.uid)
                : std::to_string(m.meta.size);
  };
  if (c.msg) {
    const Message* m = Find(*c.msg);
    if (!m) {
      Reply("-ERR no such message");
      return;
    }
    Reply("+OK " + std::to_string(*c.msg) + " " + value(*m));
    return;
  }
  if (uidl) {
    Reply("+OK unique-id listing follows");
  } else {
    uint64_t count = 0;
    uint64_t size = 0;
    for (const auto& m : messages_) {
      if (m.deleted) continue;
      ++count;
      size += m.meta.size;
    }
    Reply("+OK " + std::to_string(count) + " messages (" + std::to_string(size) + " octets)");
  }
  for (size_t i = 0; i < messages_.size(); ++i) {
    if (!messages_[i].deleted) Reply(std::to_string(i + 1) + " " + value(messages_[i]));
  }
  Reply(".");
}

// RFC 1939 sections 5 (RETR) and 7 (TOP).
awaitable<bool> Session::HandleRetr(const Command& c, bool top) {
  const Message* m = Find(*c.msg);
  if (!m) {
    Reply("-ERR no such message");
    co_return true;
  }
  store::Store* store = svc_.store;
  int64_t account_id = account_id_;
  int64_t message_id = m->meta.id;
  auto read = [store, account_id, message_id] {
    return std::optional<Result<std::string>>(store->ReadMessage(account_id, message_id));
  };
  auto content = co_await io::Offload(*svc_.blocking, std::move(read));
  if (!content->ok()) {
    const Error& e = content->error();
    if (e.kind == ErrorKind::kCorrupt) {
      spdlog::error("pop3: account {} ({}) message {} failed its integrity check: {}", account_id,
                    address_, message_id, e.message);
      Reply("-ERR [SYS/PERM] message failed its integrity check");
    } else if (e.kind == ErrorKind::kNotFound) {
      // Removed since the snapshot (by an IMAP session).
      Reply("-ERR no such message (removed by another session)");
    } else {
      spdlog::error("pop3: account {} message {} read failed: {}", account_id, message_id,
                    e.message);
      Reply("-ERR [SYS/TEMP] cannot read the message, try again later");
    }
    co_return true;
  }
  std::string_view data = **content;
  if (top) {
    Reply("+OK top of message follows");
    data = TopOf(data, c.lines);
  } else {
    Reply("+OK " + std::to_string(data.size()) + " octets");
  }
  AppendMultiline(data, conn_.output());
  co_return true;
}

// RFC 1939 section 5 (DELE): only marks; the UPDATE state removes.
void Session::HandleDele(const Command& c) {
  const Message* m = Find(*c.msg);
  if (!m) {
    Reply("-ERR no such message");
    return;
  }
  messages_[*c.msg - 1].deleted = true;
  Reply("+OK message " + std::to_string(*c.msg) + " deleted");
}

// RFC 1939 section 5 (RSET).
void Session::HandleRset() {
  uint64_t size = 0;
  for (auto& m : messages_) {
    m.deleted = false;
    size += m.meta.size;
  }
  Reply("+OK maildrop has " + std::to_string(messages_.size()) + " messages (" +
        std::to_string(size) + " octets)");
}

// RFC 1939 sections 4 and 6 (QUIT). From TRANSACTION this is the UPDATE state:
// the marked messages are expunged and "+OK" is sent only once the store
// committed that. A session that ends any other way deletes nothing.
awaitable<bool> Session::HandleQuit() {
  if (state_ == State::kAuthorization) {
    Reply("+OK " + cfg_->hostname + " POP3 server signing off");
    co_return false;
  }
  std::vector<int64_t> ids;
  for (const auto& m : messages_) {
    if (m.deleted) ids.push_back(m.meta.id);
  }
  size_t n = ids.size();
  if (!ids.empty()) {
    store::Store* store = svc_.store;
    int64_t account_id = account_id_;
    auto expunge = [store, account_id, ids = std::move(ids)](store::Done<void> done) mutable {
      store->Expunge(account_id, std::move(ids), std::move(done));
    };
    auto r = co_await io::AwaitCallback<void>(std::move(expunge), kExpungeTimeout);
    if (!r) {
      spdlog::error("pop3: expunge of {} messages for {} failed: {}", n, address_,
                    r.error().message);
      Reply("-ERR [SYS/TEMP] some deleted messages not removed");
      co_return false;
    }
  }
  spdlog::info("pop3: {} logged out, {} messages deleted", address_, n);
  // The UPDATE state releases the maildrop before the reply (RFC 1939
  // section 6): a client that logs in again as soon as it read "+OK" must
  // not find the old session's lock still held while its reply drains.
  lock_.Release();
  Reply("+OK " + cfg_->hostname + " POP3 server signing off (" + std::to_string(n) +
        " messages deleted)");
  co_return false;
}

}  // namespace

awaitable<void> Server::Serve(tcp::socket socket, bool implicit_tls) {
  auto cfg = services_.config->Get();
  std::string refusal_total = "-ERR [SYS/TEMP] too many connections, try again later";
  std::string refusal_ip =
      "-ERR [SYS/TEMP] too many connections from your address, try again later";
  std::optional<server::Admission::Ticket> ticket = co_await server::Admit(
      admission_, socket, cfg->pop3.max_connections, cfg->pop3.max_connections_per_ip,
      cfg->per_ip_limits_on_loopback, refusal_total, refusal_ip);
  if (!ticket) co_return;
  Session session(services_, locks_, std::move(socket), implicit_tls);
  server::SessionRegistry::Scope registered(registry_, &session);
  co_await session.Run();
}

}  // namespace hato::pop3
