#include "imap/server/session.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <chrono>
#include <cstdlib>
#include <map>
#include <set>
#include <thread>

#include "auth/scram.h"
#include "base/strings.h"
#include "imap/proto/list_pattern.h"
#include "imap/proto/object_ids.h"
#include "imap/proto/response.h"
#include "imap/proto/strings.h"
#include "imap/proto/utf7.h"
#include "imap/server/archives.h"
#include "imap/server/render.h"
#include "io/await.h"
#include "server/login.h"

namespace hato::imap {

// g++ 12 (see io/await.h, io/net.cc): in these coroutines, callables and
// arguments of co_await expressions are named locals and awaited results are
// stored before they are tested.

namespace {
using std::chrono::seconds;
using namespace asio::experimental::awaitable_operators;  // NOLINT: operator|| for NOTIFY waits

constexpr int kMaxBadCommands = 50;  // "* BYE" past it

// Reader limits by state (issue 11, item 2): before login only small literals
// (a LOGIN password, an AUTHENTICATE initial response) and small commands;
// once authenticated, message-sized literals for APPEND only.
Limits ReaderLimits(const config::Config& c, bool authenticated) {
  Limits l;
  if (!authenticated) {
    l.max_literal = c.imap.max_preauth_literal;
    l.max_other_literal = c.imap.max_preauth_literal;
    l.max_command = l.max_line + 4 * c.imap.max_preauth_literal;
    return l;
  }
  l.max_literal = c.imap.max_message_size;
  l.max_other_literal = std::min(c.imap.max_command_literal, c.imap.max_message_size);
  l.max_command = c.imap.max_message_size + (1u << 20);
  return l;
}

// RFC 9208 section 5.1: STORAGE is counted in units of 1024 octets (rounded up).
uint64_t KiB(uint64_t bytes) { return (bytes + 1023) / 1024; }

std::string StatusItems(const store::MailboxInfo& m, const std::vector<StatusItem>& items,
                        uint64_t append_limit) {
  std::string out;
  for (StatusItem i : items) {
    if (!out.empty()) out += ' ';
    out += StatusItemName(i);
    out += ' ';
    switch (i) {
      case StatusItem::kMessages:
        out += std::to_string(m.messages);
        break;
      case StatusItem::kRecent:
        out += std::to_string(m.recent);
        break;
      case StatusItem::kUidNext:
        out += std::to_string(m.uidnext);
        break;
      case StatusItem::kUidValidity:
        out += std::to_string(m.uidvalidity);
        break;
      case StatusItem::kUnseen:
        out += std::to_string(m.unseen);
        break;
      case StatusItem::kHighestModSeq:
        out += std::to_string(m.highest_modseq);
        break;
      case StatusItem::kSize:
        out += std::to_string(m.size);
        break;
      case StatusItem::kAppendLimit:
        out += std::to_string(append_limit);
        break;
      case StatusItem::kDeleted:
        out += std::to_string(m.deleted);
        break;
      case StatusItem::kDeletedStorage:
        out += std::to_string(KiB(m.deleted_size));
        break;
      case StatusItem::kMailboxId:
        // RFC 8474 section 4.2: "MAILBOXID" SP "(" objectid ")".
        out += "(" + MailboxObjectId(m.id) + ")";
        break;
    }
  }
  return out;
}

}  // namespace

Session::Session(server::Services& services, Hub& hub, TreeCache& trees, SortKeyCache& sort_keys,
                 tcp::socket socket, bool implicit_tls)
    : svc_(services),
      hub_(hub),
      trees_(trees),
      sort_keys_(sort_keys),
      conn_(std::move(socket), services.tls),
      cfg_(services.config->Get()),
      reader_(ReaderLimits(*cfg_, false)),
      charge_(services.memory ? services.memory->Open(conn_.peer_ip())
                              : server::MemoryBudget::Charge()),
      implicit_tls_(implicit_tls),
      wake_(conn_.executor()) {
  // A client that stops reading (a FETCH it never takes) is cut off like an idle one.
  conn_.set_write_timeout(std::chrono::seconds(cfg_->imap.idle_timeout_seconds));
}

Session::~Session() {
  if (selected_) hub_.Unwatch(selected_->id, this);
  if (notify_) hub_.UnwatchNotify(this);
}

void Session::RequestStop() {
  stopping_ = true;
  if (idle_) {
    conn_.CancelReads();
    wake_.cancel();
  }
}

void Session::EndSession() {
  ended_ = true;
  stopping_ = true;
  // Even in the middle of a command (an APPEND literal): nothing more is
  // done with the old credentials.
  conn_.CancelReads();
  wake_.cancel();
}

std::string Session::StopReason() const {
  return ended_ ? "* BYE Session ended: the account's password was changed or it was removed"
                : "* BYE [UNAVAILABLE] server shutting down, try again later";
}

void Session::MailboxChanged() {
  changed_ = true;
  wake_.cancel();
}

bool Session::ChargeBuffered(uint64_t reserve) {
  if (charge_.Set(std::max({reader_.buffered(), literal_reserve_, reserve}))) return true;
  over_budget_ = true;
  return false;
}

awaitable<io::ReadStatus> Session::ReadMore(seconds timeout) {
  io::ReadStatus st = co_await conn_.ReadMore(timeout);
  if (st == io::ReadStatus::kOk) {
    reader_.Feed(conn_.buffer());
    conn_.buffer().clear();
    if (!ChargeBuffered()) co_return io::ReadStatus::kError;
  }
  co_return st;
}

bool Session::PlaintextAllowed() const {
  return conn_.is_tls() || (conn_.peer_is_loopback() && cfg_->auth.allow_plaintext_on_loopback);
}

std::string Session::Capabilities() const {
  std::string caps =
      "IMAP4rev1 IMAP4rev2 SEARCHRES LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS "
      "MOVE CHILDREN SPECIAL-USE LIST-EXTENDED LIST-STATUS ESEARCH CONDSTORE QRESYNC BINARY "
      "QUOTA QUOTA=RES-STORAGE STATUS=SIZE PREVIEW SORT SORT=DISPLAY ESORT "
      "THREAD=ORDEREDSUBJECT THREAD=REFERENCES MULTIAPPEND CATENATE URLAUTH COMPRESS=DEFLATE "
      "OBJECTID SAVEDATE PARTIAL METADATA CONTEXT=SEARCH CONTEXT=SORT NOTIFY APPENDLIMIT=" +
      std::to_string(cfg_->imap.max_message_size);
  if (state_ == State::kNotAuthenticated) {
    if (conn_.tls_available() && !conn_.is_tls()) caps += " STARTTLS";
    if (PlaintextAllowed()) {
      caps += " AUTH=SCRAM-SHA-256 AUTH=PLAIN";
    } else {
      caps += " LOGINDISABLED";  // RFC 3501 section 6.2.3
    }
  }
  return caps;
}

Result<std::string> Session::FromWire(const std::string& name) const {
  // IMAP4rev2 names are UTF-8 (RFC 9051 section 5.1); the parser checked it.
  if (rev2_) return store::CanonicalMailboxName(name);
  auto utf8 = DecodeMailboxUtf7(name);
  if (!utf8) return utf8.error();
  return store::CanonicalMailboxName(*utf8);
}

std::string Session::ToWire(const std::string& name) const {
  if (rev2_) return name;
  auto mutf7 = EncodeMailboxUtf7(name);
  return mutf7 ? *mutf7 : name;
}

// RFC 3501 section 3 and 6: which state allows which command.
bool Session::Allowed(Verb v, State s) {
  switch (v) {
    case Verb::kCapability:
    case Verb::kNoop:
    case Verb::kLogout:
    case Verb::kId:
      return true;
    case Verb::kStartTls:
    case Verb::kAuthenticate:
    case Verb::kLogin:
      return s == State::kNotAuthenticated;
    case Verb::kSelect:
    case Verb::kExamine:
    case Verb::kCreate:
    case Verb::kDelete:
    case Verb::kRename:
    case Verb::kSubscribe:
    case Verb::kUnsubscribe:
    case Verb::kList:
    case Verb::kLsub:
    case Verb::kStatus:
    case Verb::kAppend:
    case Verb::kIdle:
    case Verb::kNamespace:
    case Verb::kEnable:
    case Verb::kGetQuota:
    case Verb::kGetQuotaRoot:
    case Verb::kSetQuota:
    case Verb::kCompress:
    case Verb::kGetMetadata:
    case Verb::kSetMetadata:
    case Verb::kResetKey:
    case Verb::kGenUrlAuth:
    case Verb::kUrlFetch:
    case Verb::kNotify:
      return s == State::kAuthenticated || s == State::kSelected;
    case Verb::kCheck:
    case Verb::kClose:
    case Verb::kUnselect:
    case Verb::kCancelUpdate:
    case Verb::kExpunge:
    case Verb::kSearch:
    case Verb::kSort:
    case Verb::kThread:
    case Verb::kFetch:
    case Verb::kStore:
    case Verb::kCopy:
    case Verb::kMove:
      return s == State::kSelected;
  }
  return false;
}

awaitable<void> Session::Run() {
  if (implicit_tls_) {
    // RFC 8314 section 3.3: TLS from the first byte; a failed handshake closes.
    seconds timeout(cfg_->tls_handshake_timeout_seconds);  // a handshake that never starts
    bool secured = co_await conn_.StartTls(timeout);
    if (!secured) {
      conn_.Close();
      co_return;
    }
  }
  Reply("* OK [CAPABILITY " + Capabilities() + "] " + cfg_->hostname + " Hato IMAP ready");
  while (state_ != State::kLogout) {
    if (stopping_) {
      Reply(StopReason());
      break;
    }
    ReadResult next = reader_.Next();
    if (std::holds_alternative<NeedMore>(next)) {
      // NOTIFY (RFC 5465 section 3): notifications go out whenever no
      // command is in progress, not only at command boundaries.
      if (notify_ && !reader_.in_command()) {
        bool sent = co_await SendNotifications();
        if (!sent) co_return;
      }
      bool flushed = co_await Flush();
      if (!flushed) co_return;
      cfg_ = svc_.config->Get();
      seconds timeout(cfg_->imap.idle_timeout_seconds);
      idle_ = !reader_.in_command();
      if (idle_) {
        command_deadline_.reset();
      } else {
        // A command begun must be complete in time, however slowly it trickles in.
        auto now = std::chrono::steady_clock::now();
        if (!command_deadline_) {
          command_deadline_ = now + seconds(cfg_->imap.command_timeout_seconds);
        }
        timeout = std::min(timeout, std::chrono::ceil<seconds>(*command_deadline_ - now));
      }
      io::ReadStatus st = io::ReadStatus::kTimeout;
      if (timeout.count() > 0 && notify_ && idle_) {
        // Wait for input or a change (NotifyChanged, MailboxChanged), as IDLE does.
        wake_.expires_at(asio::steady_timer::time_point::max());
        boost::system::error_code wake_ec;
        auto input = ReadMore(timeout);
        auto woken = wake_.async_wait(asio::redirect_error(asio::use_awaitable, wake_ec));
        std::variant<io::ReadStatus, std::monostate> r =
            co_await (std::move(input) || std::move(woken));
        if (r.index() == 1) {
          idle_ = false;
          continue;
        }
        st = std::get<0>(r);
      } else if (timeout.count() > 0) {
        st = co_await ReadMore(timeout);
      }
      idle_ = false;
      if (st == io::ReadStatus::kTimeout) {
        if (command_deadline_) {
          Reply("* BYE Command not received in time");
        } else {
          Reply("* BYE Autologout; idle for too long");  // RFC 3501 section 5.4
        }
        break;
      }
      if (over_budget_) {
        // server/budget.h: the input this client (or everyone) holds in
        // memory is at its cap; a prompt temporary refusal frees it.
        spdlog::warn("imap: memory budget exhausted; closing the session from {}", conn_.peer_ip());
        Reply("* BYE [UNAVAILABLE] server busy (memory budget), try again later");
        break;
      }
      if (st != io::ReadStatus::kOk) {
        if (stopping_) continue;  // reports BYE
        co_return;
      }
      continue;
    }
    if (auto* more = std::get_if<NeedContinuation>(&next)) {
      // Reserve the announced literal before inviting it.
      literal_reserve_ = 0;
      if (!ChargeBuffered(reader_.buffered() + more->size)) {
        spdlog::warn("imap: memory budget exhausted; refusing a {}-byte literal from {}",
                     more->size, conn_.peer_ip());
        Reply("* BYE [UNAVAILABLE] server busy (memory budget), try again later");
        break;
      }
      literal_reserve_ = reader_.buffered() + more->size;  // held until the command is read
      Reply("+ Ready for literal data");
      continue;
    }
    literal_reserve_ = 0;
    charge_.Set(reader_.buffered());  // the command left the buffer
    if (auto* e = std::get_if<ReadError>(&next)) {
      conn_.output() += FormatReadError(*e);  // a whole response line, CRLF included
      if (e->close || ++bad_commands_ > kMaxBadCommands) {
        if (!e->close) Reply("* BYE Too many invalid commands");
        break;
      }
      continue;
    }
    command_deadline_.reset();
    Command& c = std::get<Command>(next);
    bool ok = co_await Handle(c);
    if (!ok) break;
    if (notify_ && notify_->backlog > 0) {
      // Between pipelined commands too (RFC 3501 section 7: untagged
      // responses may follow any tagged one), so the backlog stays short.
      bool sent = co_await SendNotifications();
      if (!sent) break;
    }
  }
  co_await Flush();
  conn_.Close();
}

awaitable<bool> Session::Handle(Command& c) {
  if (!Allowed(c.verb, state_)) {
    Tagged(c, "BAD", std::string(VerbName(c.verb)) + " not allowed now");
    co_return ++bad_commands_ <= kMaxBadCommands;
  }
  if (selected_ && !selected_->view.awake() && c.verb != Verb::kLogout && c.verb != Verb::kIdle) {
    bool woken = co_await WakeView();
    if (!woken) {
      Tagged(c, "NO", "[UNAVAILABLE] mailbox temporarily unavailable, try again later");
      co_return true;
    }
  }
  bool ok = true;
  // Commands whose handlers send their tagged reply themselves and carry no
  // sequence numbers get the mailbox's updates first: nothing may follow a
  // tagged reply (RFC 3501 section 7.4.1: no EXPUNGE when no command is in
  // progress; found by tests/integration/test_imap_model.py). APPEND, NOOP
  // and the commands on messages send theirs before their tagged reply.
  switch (c.verb) {
    case Verb::kCapability:
    case Verb::kId:
    case Verb::kCreate:
    case Verb::kDelete:
    case Verb::kRename:
    case Verb::kSubscribe:
    case Verb::kUnsubscribe:
    case Verb::kList:
    case Verb::kLsub:
    case Verb::kStatus:
    case Verb::kNamespace:
    case Verb::kEnable:
    case Verb::kGetQuota:
    case Verb::kGetQuotaRoot:
    case Verb::kSetQuota:
    case Verb::kCancelUpdate:
      if (state_ == State::kSelected) co_await SendUpdates(true);
      break;
    default:
      break;
  }
  switch (c.verb) {
    case Verb::kCapability:
      Reply("* CAPABILITY " + Capabilities());
      Tagged(c, "OK", "CAPABILITY completed");
      break;
    case Verb::kNoop:
    case Verb::kCheck:
      co_await SendUpdates(true);
      Tagged(c, "OK", std::string(VerbName(c.verb)) + " completed");
      co_return true;
    case Verb::kLogout:
      Reply("* BYE " + cfg_->hostname + " logging out");
      Tagged(c, "OK", "LOGOUT completed");
      state_ = State::kLogout;
      co_return true;
    case Verb::kId:
      HandleId(c);
      break;
    case Verb::kStartTls:
      ok = co_await HandleStartTls(c);
      co_return ok;
    case Verb::kLogin:
      ok = co_await HandleLogin(c);
      co_return ok;
    case Verb::kAuthenticate:
      ok = co_await HandleAuthenticate(c);
      co_return ok;
    case Verb::kSelect:
    case Verb::kExamine:
      ok = co_await HandleSelect(c);
      co_return ok;
    case Verb::kCreate:
    case Verb::kDelete:
    case Verb::kRename:
    case Verb::kSubscribe:
    case Verb::kUnsubscribe:
      ok = co_await HandleMailboxWrite(c);
      break;
    case Verb::kList:
    case Verb::kLsub:
      ok = co_await HandleList(c);
      break;
    case Verb::kStatus:
      ok = co_await HandleStatus(c);
      break;
    case Verb::kAppend:
      ok = co_await HandleAppend(c);
      break;
    case Verb::kIdle:
      ok = co_await HandleIdle(c);
      co_return ok;
    case Verb::kNamespace:
      // RFC 2342: the personal namespace, no other users', and the shared
      // namespace of list archives (imap/server/archives.h).
      Reply("* NAMESPACE ((\"\" \"/\")) NIL ((\"" + std::string(store::kListArchivePrefix) +
            "\" \"/\"))");
      Tagged(c, "OK", "NAMESPACE completed");
      break;
    case Verb::kEnable:
      HandleEnable(c);
      break;
    case Verb::kGetQuota:
    case Verb::kGetQuotaRoot:
    case Verb::kSetQuota:
      ok = co_await HandleQuota(c);
      break;
    case Verb::kGetMetadata:
    case Verb::kSetMetadata:
      ok = co_await HandleMetadata(c);
      break;
    case Verb::kResetKey:
    case Verb::kGenUrlAuth:
    case Verb::kUrlFetch:
      ok = co_await HandleUrlAuth(c);
      break;
    case Verb::kCompress:
      ok = co_await HandleCompress(c);
      co_return ok;
    case Verb::kNotify:
      ok = co_await HandleNotify(c);
      co_return ok;
    case Verb::kClose:
    case Verb::kUnselect: {
      if (c.verb == Verb::kClose && !selected_->read_only && !selected_->archive) {
        // RFC 3501 section 6.4.2: CLOSE expunges silently.
        ok = co_await HandleExpunge(c, /*silent=*/true);
        if (!ok) co_return false;
      }
      Deselect();
      if (qresync_) Reply("* OK [CLOSED] mailbox closed");  // RFC 7162 section 3.2.11
      Tagged(c, "OK", std::string(VerbName(c.verb)) + " completed");
      co_return true;
    }
    case Verb::kCancelUpdate:
      HandleCancelUpdate(c);
      co_return true;
    case Verb::kExpunge:
      ok = co_await HandleExpunge(c, false);
      co_return ok;
    case Verb::kSearch:
      ok = co_await HandleSearch(c);
      co_return ok;
    case Verb::kSort:
      ok = co_await HandleSort(c);
      co_return ok;
    case Verb::kThread:
      ok = co_await HandleThread(c);
      co_return ok;
    case Verb::kFetch:
      ok = co_await HandleFetch(c);
      co_return ok;
    case Verb::kStore:
      ok = co_await HandleStore(c);
      co_return ok;
    case Verb::kCopy:
    case Verb::kMove:
      ok = co_await HandleCopy(c);
      co_return ok;
  }
  co_return ok;
}

void Session::HandleId(const Command& c) {
  // Test hook (tests/integration/test_event_loops.py), only with
  // HATO_TEST_STALL_LOOP=1 in the server's environment: ID ("x-hato-stall-ms"
  // "N") blocks this session's event loop for N ms (at most 10 s), as a bug
  // or a runaway computation would, so that a test can show the other
  // loops' sessions are not held up.
  static const bool stall_hook = std::getenv("HATO_TEST_STALL_LOOP") != nullptr;
  if (stall_hook && c.As<IdArgs>().params) {
    for (const auto& [k, v] : *c.As<IdArgs>().params) {
      if (k != "x-hato-stall-ms" || !v) continue;
      long ms = std::min(std::strtol(v->c_str(), nullptr, 10), 10000L);
      if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    }
  }
  Reply("* ID (\"name\" \"Hato\" \"vendor\" \"Hato\")");  // RFC 2971 section 3.2
  Tagged(c, "OK", "ID completed");
}

void Session::EnableCondstore() {
  if (condstore_) return;
  condstore_ = true;
  // RFC 7162 section 3.1: the first CONDSTORE-enabling command in the
  // selected state gets the mailbox's HIGHESTMODSEQ before its tagged reply.
  if (selected_) {
    Reply("* OK [HIGHESTMODSEQ " + std::to_string(selected_->highest_modseq) + "] highest");
  }
}

void Session::HandleEnable(const Command& c) {
  std::string enabled;
  for (const auto& cap : c.As<EnableArgs>().capabilities) {
    if (cap == "CONDSTORE" || cap == "QRESYNC") {
      EnableCondstore();
      if (cap == "QRESYNC") qresync_ = true;  // RFC 7162 section 3.2.3: implies CONDSTORE
      enabled += " " + cap;
    } else if (cap == "IMAP4REV2" && !rev2_) {
      rev2_ = true;  // RFC 9051 section 6.3.1
      enabled += " IMAP4rev2";
    }
  }
  Reply("* ENABLED" + enabled);
  Tagged(c, "OK", "ENABLE completed");
}

awaitable<bool> Session::HandleStartTls(const Command& c) {
  if (!conn_.tls_available() || conn_.is_tls()) {
    Tagged(c, "BAD", "TLS not available");
    co_return true;
  }
  Tagged(c, "OK", "Begin TLS negotiation now");
  bool flushed = co_await Flush();
  if (!flushed) co_return false;
  seconds timeout(cfg_->tls_handshake_timeout_seconds);
  // Discard anything pipelined after STARTTLS (RFC 3501 section 6.2.1).
  reader_ = CommandReader(ReaderLimits(*cfg_, false));
  bool secured = co_await conn_.StartTls(timeout);
  co_return secured;
}

// RFC 4978: compression starts for both directions right after the tagged
// OK; anything the client pipelined after COMPRESS is discarded, as after
// STARTTLS (the client must wait for the OK, section 3).
awaitable<bool> Session::HandleCompress(const Command& c) {
  if (c.As<CompressArgs>().mechanism != "DEFLATE") {
    Tagged(c, "NO", "unknown compression algorithm");  // as Dovecot
    co_return true;
  }
  if (conn_.compressed()) {
    Tagged(c, "NO", "[COMPRESSIONACTIVE] DEFLATE active");
    co_return true;
  }
  if (state_ == State::kSelected) co_await SendUpdates(true);
  Tagged(c, "OK", "DEFLATE active");
  bool flushed = co_await Flush();
  if (!flushed) co_return false;
  reader_ = CommandReader(ReaderLimits(*cfg_, true));
  if (!conn_.StartCompression()) {
    spdlog::error("imap: COMPRESS for {}: zlib did not start", address_);
    co_return false;
  }
  co_return true;
}

awaitable<bool> Session::HandleLogin(const Command& c) {
  if (!PlaintextAllowed()) {
    Tagged(c, "NO", "[PRIVACYREQUIRED] LOGIN needs TLS (use STARTTLS)");
    co_return true;
  }
  const auto& a = c.As<LoginArgs>();
  std::string user = a.user, password = a.password;
  bool ok = co_await Authenticated(c, user, password);
  co_return ok;
}

awaitable<std::optional<std::string>> Session::ReadSaslResponse(const Command& c,
                                                                const std::string& challenge,
                                                                bool& closed) {
  closed = false;
  Reply("+ " + challenge);
  while (true) {
    LineResult line = reader_.NextLine();
    if (auto* l = std::get_if<Line>(&line)) co_return std::move(l->text);
    if (std::holds_alternative<LineTooLong>(line)) {
      Tagged(c, "BAD", "authentication response too long");
      co_return std::nullopt;
    }
    bool flushed = co_await Flush();
    if (!flushed) break;
    seconds timeout(cfg_->imap.idle_timeout_seconds);
    io::ReadStatus st = co_await ReadMore(timeout);
    if (st != io::ReadStatus::kOk) break;
  }
  closed = true;
  co_return std::nullopt;
}

awaitable<bool> Session::HandleAuthenticate(const Command& c) {
  const auto& a = c.As<AuthenticateArgs>();
  if (a.mechanism != "PLAIN" && a.mechanism != auth::kScramSha256) {
    Tagged(c, "NO", "unsupported authentication mechanism");
    co_return true;
  }
  if (!PlaintextAllowed()) {
    Tagged(c, "NO", "[PRIVACYREQUIRED] authentication needs TLS (use STARTTLS)");
    co_return true;
  }
  if (a.mechanism == auth::kScramSha256) {
    bool ok = co_await HandleAuthenticateScram(c);
    co_return ok;
  }
  std::string response;
  if (a.initial_response) {
    response = *a.initial_response == "=" ? "" : *a.initial_response;  // RFC 4959
  } else {
    bool closed = false;
    std::string empty;
    std::optional<std::string> line = co_await ReadSaslResponse(c, empty, closed);
    if (!line) co_return !closed;
    response = std::move(*line);
    if (response == "*") {
      Tagged(c, "BAD", "authentication cancelled");  // RFC 3501 section 6.2.2
      co_return true;
    }
  }
  // RFC 4616: [authzid] NUL authcid NUL passwd
  auto decoded = Base64Decode(response);
  size_t first = decoded ? decoded->find('\0') : std::string::npos;
  size_t second = first == std::string::npos ? first : decoded->find('\0', first + 1);
  if (second == std::string::npos) {
    Tagged(c, "BAD", "malformed PLAIN response");
    co_return true;
  }
  std::string authzid = decoded->substr(0, first);
  std::string user = decoded->substr(first + 1, second - first - 1);
  std::string password = decoded->substr(second + 1);
  if (!authzid.empty() && !EqualsIgnoreCase(authzid, user)) {
    Tagged(c, "NO", "[AUTHORIZATIONFAILED] cannot act as another user");
    co_return true;
  }
  bool ok = co_await Authenticated(c, user, password);
  co_return ok;
}

// SCRAM-SHA-256 (RFC 5802, RFC 7677) with RFC 9051 section 6.2.2 / RFC 4959:
// the client-first message is the SASL-IR initial response or the answer to
// an empty continuation; the server-first and the server-final ("v=")
// messages are continuations, the last answered with an empty line before
// the tagged OK. Shared account check: server::BeginScramLogin.
awaitable<bool> Session::HandleAuthenticateScram(const Command& c) {
  const auto& a = c.As<AuthenticateArgs>();
  std::string response;
  bool closed = false;
  if (a.initial_response) {
    response = *a.initial_response == "=" ? "" : *a.initial_response;
  } else {
    std::string empty;
    std::optional<std::string> line = co_await ReadSaslResponse(c, empty, closed);
    if (!line) co_return !closed;
    response = std::move(*line);
  }
  if (response == "*") {
    Tagged(c, "BAD", "authentication cancelled");
    co_return true;
  }
  auth::ScramServer scram;
  auto decoded = Base64Decode(response);
  Result<auth::ScramClientFirst> first =
      decoded ? scram.ReceiveClientFirst(*decoded)
              : Result<auth::ScramClientFirst>(Err(ErrorKind::kInvalid, "bad base64"));
  if (!first) {
    Tagged(c, "BAD", "malformed SCRAM-SHA-256 response");
    co_return ++bad_commands_ <= kMaxBadCommands;
  }
  if (!first->authzid.empty() && !EqualsIgnoreCase(first->authzid, first->user)) {
    Tagged(c, "NO", "[AUTHORIZATIONFAILED] cannot act as another user");
    co_return true;
  }
  std::string ip = conn_.peer_ip();
  std::string user = first->user;
  std::string protocol = "imap";
  server::ScramAccount account = co_await server::BeginScramLogin(svc_, ip, user, protocol);
  if (account.outcome == server::LoginOutcome::kTemporary) {
    Tagged(c, "NO", "[UNAVAILABLE] authentication temporarily unavailable, try again later");
    co_return true;
  }
  std::string nonce = auth::RandomScramNonce();
  std::string server_first = Base64Encode(scram.ServerFirst(account.verifier, nonce));
  std::optional<std::string> line = co_await ReadSaslResponse(c, server_first, closed);
  if (!line || *line == "*") {
    server::AbandonScramLogin(svc_, ip, account, protocol);  // counts as a failure
    if (!line) co_return !closed;
    Tagged(c, "BAD", "authentication cancelled");
    co_return true;
  }
  auto final_msg = Base64Decode(*line);
  Result<std::string> server_final =
      final_msg ? scram.ReceiveClientFinal(*final_msg)
                : Result<std::string>(Err(ErrorKind::kInvalid, "bad base64"));
  if (!server_final && server_final.error().kind == ErrorKind::kInvalid) {
    server::AbandonScramLogin(svc_, ip, account, protocol);
    Tagged(c, "BAD", "malformed SCRAM-SHA-256 response");
    co_return ++bad_commands_ <= kMaxBadCommands;
  }
  bool proof_ok = server_final.ok();
  server::LoginResult r =
      co_await server::FinishScramLogin(svc_, ip, std::move(account), proof_ok, protocol);
  if (r.outcome == server::LoginOutcome::kOk) {
    std::string verifier = Base64Encode(*server_final);
    std::optional<std::string> ack = co_await ReadSaslResponse(c, verifier, closed);
    if (!ack) co_return !closed;
    if (!ack->empty()) {
      Tagged(c, "BAD", *ack == "*" ? "authentication cancelled" : "expected an empty response");
      co_return true;
    }
  }
  co_return LoginDone(c, r, "SCRAM-SHA-256");
}

awaitable<bool> Session::Authenticated(const Command& c, const std::string& user,
                                       const std::string& password) {
  std::string ip = conn_.peer_ip();
  server::LoginResult r = co_await server::CheckLogin(svc_, ip, user, password, "imap");
  co_return LoginDone(c, r, "");
}

bool Session::LoginDone(const Command& c, const server::LoginResult& r,
                        const std::string& mechanism) {
  if (r.outcome == server::LoginOutcome::kTemporary) {
    Tagged(c, "NO", "[UNAVAILABLE] authentication temporarily unavailable, try again later");
    return true;
  }
  if (r.outcome == server::LoginOutcome::kBad) {
    Tagged(c, "NO", "[AUTHENTICATIONFAILED] invalid credentials");  // RFC 5530
    return ++bad_commands_ <= kMaxBadCommands;
  }
  account_slot_ = hub_.account_sessions.TryTake(r.account_id, cfg_->imap.max_sessions_per_account);
  if (!account_slot_) {
    spdlog::warn("imap: {} refused from {}: {} sessions already", r.address, conn_.peer_ip(),
                 cfg_->imap.max_sessions_per_account);
    Tagged(c, "NO", "[UNAVAILABLE] too many sessions for this account, try again later");
    return true;
  }
  account_id_ = r.account_id;
  address_ = r.address;
  state_ = State::kAuthenticated;
  reader_.set_limits(ReaderLimits(*cfg_, true));
  account_session_ = server::AccountSessions::Registration(svc_.account_sessions, account_id_,
                                                           r.session_epoch, this);
  spdlog::info("imap: {} logged in from {}{}{}", address_, conn_.peer_ip(),
               conn_.is_tls() ? " with TLS" : "", mechanism.empty() ? "" : " with " + mechanism);
  Tagged(c, "OK", "[CAPABILITY " + Capabilities() + "] logged in");
  return true;
}

void Session::Deselect() {
  if (selected_) hub_.Unwatch(selected_->id, this);
  saved_uids_.clear();  // RFC 5182 section 2.1
  selected_.reset();
  changed_ = false;
  state_ = State::kAuthenticated;
}

namespace {

// A list archive's messages as the member sees them: \Seen is the member's
// own (Store::ArchiveSeen), whatever the archive's shared flags say. Blocks.
Status OverlayArchiveSeen(store::Store& store, int64_t member, int64_t mailbox_id,
                          std::vector<store::MessageMeta>& messages) {
  auto seen = store.ArchiveSeen(member, mailbox_id);
  if (!seen) return seen.error();
  for (auto& m : messages) {
    bool mine = std::binary_search(seen->begin(), seen->end(), m.uid);
    m.flags = (m.flags & ~uint32_t{store::kSeen}) | (mine ? uint32_t{store::kSeen} : 0u);
  }
  return Ok();
}

}  // namespace

awaitable<bool> Session::HandleSelect(const Command& c) {
  const auto& a = c.As<SelectArgs>();
  bool had = selected_.has_value();
  Deselect();
  if (had && qresync_) Reply("* OK [CLOSED] previous mailbox closed");
  if (a.condstore || a.qresync) condstore_ = true;
  if (a.qresync && !qresync_) {
    Tagged(c, "BAD", "QRESYNC not enabled");  // RFC 7162 section 3.2.5
    co_return true;
  }
  auto name = FromWire(a.mailbox);
  if (!name) {
    Tagged(c, "NO", "[NONEXISTENT] " + name.error().message);
    co_return true;
  }
  store::Store* store = svc_.store;
  int64_t account = account_id_;
  std::string mailbox = *name;
  bool archive = IsArchiveName(mailbox);
  if (archive) {
    // A list archive (RFC 2342 shared namespace): read with the archive
    // account's id once membership is checked; never writable.
    auto find = [store, user = address_, mailbox] {
      return std::optional<Result<Archive>>(FindArchive(*store, user, mailbox));
    };
    auto found = co_await io::Offload(*svc_.blocking, std::move(find));
    if (!found->ok()) {
      if ((*found).error().kind == ErrorKind::kNotFound) {
        Tagged(c, "NO", "[NONEXISTENT] no such mailbox");
      } else {
        spdlog::error("imap: SELECT {} for {}: {}", mailbox, address_, (*found).error().message);
        Tagged(c, "NO", "[UNAVAILABLE] mailbox temporarily unavailable, try again later");
      }
      co_return true;
    }
    account = (*found)->account_id;
  }
  // In an archive, \Seen is the member's own (Store::ArchiveSeen).
  int64_t member = account_id_;
  auto list = [store, account, archive, member,
               mailbox = archive ? std::string(store::kInbox) : mailbox] {
    auto snap = store->ListMessages(account, mailbox);
    if (snap && archive) {
      if (auto st = OverlayArchiveSeen(*store, member, snap->mailbox_id, snap->messages); !st) {
        return std::optional<Result<store::MailboxSnapshot>>(st.error());
      }
    }
    return std::optional<Result<store::MailboxSnapshot>>(std::move(snap));
  };
  auto snap = co_await io::Offload(*svc_.blocking, std::move(list));
  if (!snap->ok()) {
    if ((*snap).error().kind == ErrorKind::kNotFound) {
      Tagged(c, "NO", "[NONEXISTENT] no such mailbox");
    } else {
      spdlog::error("imap: SELECT {} for {}: {}", mailbox, address_, (*snap).error().message);
      Tagged(c, "NO", "[UNAVAILABLE] mailbox temporarily unavailable, try again later");
    }
    co_return true;
  }
  store::MailboxSnapshot& s = **snap;
  Selected sel;
  sel.id = s.mailbox_id;
  sel.name = mailbox;
  sel.account = account;
  sel.archive = archive;
  // A list archive is read-only but for the member's own \Seen (SELECT).
  sel.read_only = c.verb == Verb::kExamine;
  sel.uidvalidity = s.uidvalidity;
  sel.uidnext = s.uidnext;
  sel.highest_modseq = s.highest_modseq;
  sel.view.Assign(std::move(s.messages));
  // \Recent (RFC 3501 section 2.3.2): the messages no session has seen yet
  // are recent in this one; SELECT claims them, EXAMINE only looks.
  // A list archive is shared and never claimed: no \Recent there.
  uint32_t recent_uid = archive ? sel.view.MaxUid() : s.recent_uid;
  if (!sel.read_only && !archive && !sel.view.empty()) {
    recent_uid = ClaimRecent(sel.id, s.recent_uid, sel.view.MaxUid());
  }
  // IMAP4rev2 has no \Recent (RFC 9051 appendix E): claimed, never shown.
  if (!rev2_) sel.view.SetSessionFlag(recent_uid, sel.view.MaxUid(), kRecentFlag);
  size_t recent = sel.view.CountFlag(kRecentFlag);
  // RFC 3501 section 6.3.1 responses; FLAGS lists the keywords in use (7.2.6).
  for (size_t i = 0; i < sel.view.size(); ++i) {
    for (auto k : SplitWords(sel.view[i].keywords)) sel.keywords.emplace(k);
  }
  SendFlags(sel);
  Reply("* " + std::to_string(sel.view.size()) + " EXISTS");
  if (!rev2_) Reply("* " + std::to_string(recent) + " RECENT");
  for (size_t i = 0; i < sel.view.size() && !rev2_; ++i) {  // no UNSEEN code in IMAP4rev2
    if (!(sel.view[i].flags & store::kSeen)) {
      Reply("* OK [UNSEEN " + std::to_string(i + 1) + "] first unseen");
      break;
    }
  }
  Reply("* OK [UIDVALIDITY " + std::to_string(sel.uidvalidity) + "] UIDs valid");
  Reply("* OK [UIDNEXT " + std::to_string(sel.uidnext) + "] predicted next UID");
  Reply("* OK [HIGHESTMODSEQ " + std::to_string(sel.highest_modseq) + "] highest");
  // RFC 8474 section 4.1: the mailbox's object id.
  Reply("* OK [MAILBOXID (" + MailboxObjectId(sel.id) + ")] mailbox id");
  if (a.qresync && a.qresync->uidvalidity == sel.uidvalidity) {
    // RFC 7162 section 3.2.5.2: what vanished and what changed since the client's modseq.
    uint64_t since = a.qresync->modseq;
    int64_t mailbox_id = sel.id;
    auto vanished_fn = [store, mailbox_id, since] {
      return std::optional<Result<std::vector<uint32_t>>>(store->ListVanished(mailbox_id, since));
    };
    auto vanished = co_await io::Offload(*svc_.blocking, std::move(vanished_fn));
    if (vanished->ok() && !(*vanished)->empty()) {
      IdSet set = IdSet::FromIds(**vanished);
      Reply("* VANISHED (EARLIER) " + set.ToString());
    }
    for (size_t i = 0; i < sel.view.size(); ++i) {
      const auto& m = sel.view[i];
      if (m.modseq > since) {
        Reply("* " + std::to_string(i + 1) + " FETCH (UID " + std::to_string(m.uid) + " FLAGS " +
              FlagList(m) + " MODSEQ (" + std::to_string(m.modseq) + "))");
      }
    }
  }
  hub_.Watch(sel.id, this);
  selected_ = std::move(sel);
  state_ = State::kSelected;
  Tagged(c, "OK",
         std::string(selected_->read_only ? "[READ-ONLY]" : "[READ-WRITE]") + " " +
             VerbName(c.verb) + " completed");
  co_return true;
}

awaitable<bool> Session::HandleMailboxWrite(const Command& c) {
  store::Store* store = svc_.store;
  int64_t account = account_id_;
  if (c.verb == Verb::kCreate || c.verb == Verb::kDelete || c.verb == Verb::kRename) {
    // List archives are made by the lists, never by IMAP (RFC 5530 NOPERM).
    std::vector<std::string> names;
    if (c.verb == Verb::kRename) {
      names = {c.As<RenameArgs>().from, c.As<RenameArgs>().to};
    } else if (c.verb == Verb::kCreate) {
      names = {c.As<CreateArgs>().mailbox};
    } else {
      names = {c.As<MailboxArgs>().mailbox};
    }
    for (const auto& wire : names) {
      auto n = FromWire(wire);
      if (n && (IsArchiveName(*n) || n->starts_with(store::kListArchivePrefix))) {
        Tagged(c, "NO", "[NOPERM] the list archives (#lists/) are read-only");
        co_return true;
      }
    }
  }
  Result<void> result;
  std::string what = VerbName(c.verb);
  std::string created;                         // CREATE: the canonical name
  std::optional<std::string> normalized_from;  // CREATE: the name as sent, if it differs
  if (c.verb == Verb::kRename) {
    const auto& a = c.As<RenameArgs>();
    auto from = FromWire(a.from);
    auto to = FromWire(a.to);
    if (!from || !to) {
      Tagged(c, "NO", "invalid mailbox name");
      co_return true;
    }
    std::string f = *from, t = *to;
    // IMAP4rev2 (RFC 9051 section 6.3.6): the renamed mailboxes, the inferior
    // names too (but not INBOX's, which stay), are told with their OLDNAME.
    std::vector<std::string> before;
    if (rev2_) {
      auto names = [store, account, f]() -> std::optional<std::vector<std::string>> {
        auto boxes = store->ListMailboxes(account);
        if (!boxes) return std::nullopt;
        std::vector<std::string> out;
        for (const auto& b : *boxes) {
          if (b.name == f || (f != store::kInbox && b.name.starts_with(f + '/'))) {
            out.push_back(b.name);
          }
        }
        return out;
      };
      auto listed = co_await io::Offload(*svc_.blocking, std::move(names));
      if (listed) before = std::move(*listed);
    }
    auto op = [store, account, f, t](store::Done<void> done) {
      store->RenameMailbox(account, f, t, std::move(done));
    };
    result = co_await Write<void>(std::move(op));
    if (result && rev2_) {
      std::vector<std::pair<std::string, std::string>> renamed;
      for (const auto& old : before) renamed.emplace_back(t + old.substr(f.size()), old);
      co_await SendOldNames(std::move(renamed));
    }
  } else {
    std::string wire;
    std::string special_use;
    if (c.verb == Verb::kCreate) {
      const auto& a = c.As<CreateArgs>();
      wire = a.mailbox;
      if (!a.special_use.empty()) special_use = a.special_use.front();
      // A trailing separator only says the name will hold children (RFC 3501 6.3.3).
      if (!wire.empty() && wire.back() == store::kHierarchySeparator) wire.pop_back();
    } else {
      wire = c.As<MailboxArgs>().mailbox;
    }
    auto name = FromWire(wire);
    if (!name) {
      Tagged(c, "NO", "invalid mailbox name: " + name.error().message);
      co_return true;
    }
    std::string n = *name;
    if (c.verb == Verb::kCreate) created = n;
    // The name as the client sent it, when the server normalized it (an
    // "inbox/..." is "INBOX/..."): RFC 9051 section 6.3.4 OLDNAME.
    if (c.verb == Verb::kCreate && rev2_ && ToWire(n) != wire) normalized_from = wire;
    Verb verb = c.verb;
    auto op = [store, account, n, special_use, verb](store::Done<void> done) {
      switch (verb) {
        case Verb::kCreate:
          store->CreateMailbox(account, n, special_use, std::move(done));
          break;
        case Verb::kDelete:
          store->DeleteMailbox(account, n, std::move(done));
          break;
        default:
          store->SetSubscribed(account, n, verb == Verb::kSubscribe, std::move(done));
          break;
      }
    };
    if (c.verb == Verb::kDelete && selected_ && selected_->name == n) Deselect();
    result = co_await Write<void>(std::move(op));
  }
  if (result) AnnounceMailboxList();
  if (result && normalized_from) {
    // IMAP4rev2 only: the name as sent is UTF-8 already (RFC 9051 section 5.1).
    std::vector<std::pair<std::string, std::string>> renamed;
    renamed.emplace_back(created, *normalized_from);
    co_await SendOldNames(std::move(renamed));
  }
  if (result && c.verb == Verb::kCreate) {
    // RFC 8474 section 4.1: the new mailbox's object id in the tagged OK.
    auto find = [store, account, created]() -> std::optional<int64_t> {
      auto boxes = store->ListMailboxes(account);
      if (!boxes) return std::nullopt;
      for (const auto& b : *boxes) {
        if (b.name == created) return b.id;
      }
      return std::nullopt;
    };
    auto id = co_await io::Offload(*svc_.blocking, std::move(find));
    std::string code = id ? "[MAILBOXID (" + MailboxObjectId(*id) + ")] " : "";
    Tagged(c, "OK", code + what + " completed");
  } else if (result) {
    Tagged(c, "OK", what + " completed");
  } else {
    switch (result.error().kind) {
      case ErrorKind::kExists:
        Tagged(c, "NO", "[ALREADYEXISTS] " + result.error().message);
        break;
      case ErrorKind::kNotFound:
        Tagged(c, "NO", "[NONEXISTENT] " + result.error().message);
        break;
      case ErrorKind::kInvalid:
        Tagged(c, "NO", "[CANNOT] " + result.error().message);
        break;
      default:
        spdlog::error("imap: {} for {}: {}", what, address_, result.error().message);
        Tagged(c, "NO", "[UNAVAILABLE] try again later");
    }
  }
  co_return true;
}

awaitable<void> Session::SendOldNames(std::vector<std::pair<std::string, std::string>> renamed) {
  if (renamed.empty()) co_return;
  store::Store* store = svc_.store;
  int64_t account = account_id_;
  auto list = [store, account]() -> std::optional<std::vector<store::MailboxInfo>> {
    auto boxes = store->ListMailboxes(account);
    if (!boxes) return std::nullopt;
    return std::move(*boxes);
  };
  auto boxes = co_await io::Offload(*svc_.blocking, std::move(list));
  if (!boxes) co_return;  // the responses are optional: the tagged OK still follows
  std::map<std::string, const store::MailboxInfo*> by_name;
  std::set<std::string> parents;
  for (const auto& m : *boxes) {
    by_name[m.name] = &m;
    size_t slash = m.name.rfind(store::kHierarchySeparator);
    if (slash != std::string::npos) parents.insert(m.name.substr(0, slash));
  }
  for (const auto& [now, old] : renamed) {
    auto it = by_name.find(now);
    if (it == by_name.end()) continue;
    std::string line = "* LIST (";
    line += parents.count(now) ? "\\HasChildren" : "\\HasNoChildren";
    if (!it->second->special_use.empty()) line += " " + it->second->special_use;
    line += ") \"/\" ";
    AppendString(line, ToWire(now), rev2_);
    line += " (\"OLDNAME\" (";
    AppendString(line, ToWire(old), rev2_);
    line += "))";
    Reply(line);
  }
}

awaitable<bool> Session::HandleList(const Command& c) {
  const auto& a = c.As<ListArgs>();
  bool lsub = c.verb == Verb::kLsub;
  if (rev2_ && a.return_status &&
      std::find(a.return_status->begin(), a.return_status->end(), StatusItem::kRecent) !=
          a.return_status->end()) {
    Tagged(c, "BAD", "RECENT is not an IMAP4rev2 status item (RFC 9051 appendix E)");
    co_return true;
  }
  // RFC 3501 section 6.3.8: an empty pattern asks for the delimiter.
  if (a.patterns.size() == 1 && a.patterns[0].empty() && !lsub) {
    Reply("* LIST (\\Noselect) \"/\" \"\"");
    Tagged(c, "OK", "LIST completed");
    co_return true;
  }
  // Patterns are compiled into linear-time matchers (imap/proto/list_pattern.h),
  // bounded in length and number: RFC 5530 [LIMIT] past either.
  std::vector<ListPattern> patterns;
  if (a.patterns.size() > kMaxListPatterns) {
    Tagged(c, "NO", "[LIMIT] at most " + std::to_string(kMaxListPatterns) + " patterns");
    co_return true;
  }
  for (const auto& p : a.patterns) {
    std::string pattern = a.reference + p;
    if (EqualsIgnoreCase(pattern, "INBOX")) pattern = "INBOX";
    auto compiled = ListPattern::Compile(pattern, store::kHierarchySeparator);
    if (!compiled) {
      Tagged(c, "NO", "[LIMIT] " + compiled.error().message);
      co_return true;
    }
    patterns.push_back(std::move(*compiled));
  }
  // The mailboxes, their wire names and whether a pattern matches them: on
  // the blocking pool, as the cost depends on the client (the event loop only
  // dispatches). Subscriptions are names (RFC 3501 section 6.3.6): a
  // subscribed name may have no mailbox (deleted since), and LSUB and
  // RECURSIVEMATCH also speak of the parents of subscribed names, which may
  // not exist either. Each such name is an entry without `info`.
  bool only_subscribed = lsub || a.select_subscribed;
  bool want_parents = lsub || (a.select_recursive_match && a.select_subscribed);
  struct Entry {
    std::string name;                          // UTF-8
    std::string wire;                          // modified UTF-7
    const store::MailboxInfo* info = nullptr;  // null: no such mailbox
    bool subscribed = false;
    bool matched = false;
    bool root = false;  // "#lists", the shared namespace's \Noselect root
  };
  struct Listed {
    std::vector<store::MailboxInfo> all;
    std::vector<Entry> entries;  // sorted by name
  };
  auto mailboxes = co_await ListMailboxesWithClaims();
  if (!mailboxes->ok()) {
    Tagged(c, "NO", "[UNAVAILABLE] try again later");
    co_return true;
  }
  store::Store* store = svc_.store;
  int64_t account = account_id_;
  auto list = [rev2 = rev2_, boxes = std::move(**mailboxes), patterns = std::move(patterns),
               only_subscribed, want_parents, store, account,
               user = address_]() mutable -> std::optional<Result<Listed>> {
    Listed l;
    l.all = std::move(boxes);
    // The list archives the user may read (RFC 2342 shared namespace,
    // imap/server/archives.h), under their root "#lists".
    auto archives = ListArchives(*store, user);
    if (!archives) return Result<Listed>(archives.error());
    for (auto& a : *archives) l.all.push_back(std::move(a.mailbox));
    std::map<std::string, Entry> by_name;
    for (const auto& m : l.all) by_name[m.name] = Entry{m.name, {}, &m, m.subscribed, false};
    if (!archives->empty()) {
      std::string root(store::kListArchivePrefix.substr(0, store::kListArchivePrefix.size() - 1));
      by_name[root] = Entry{root, {}, nullptr, false, false, true};
    }
    if (only_subscribed) {
      auto orphans = store->ListOrphanSubscriptions(account);
      if (!orphans) return Result<Listed>(orphans.error());
      for (const auto& n : *orphans) {
        auto& e = by_name[n];
        e.name = n;
        e.subscribed = true;
      }
    }
    if (want_parents) {
      std::vector<std::string> parents;
      for (const auto& [n, e] : by_name) {
        if (!e.subscribed) continue;
        for (size_t slash = n.find(store::kHierarchySeparator); slash != std::string::npos;
             slash = n.find(store::kHierarchySeparator, slash + 1)) {
          parents.push_back(n.substr(0, slash));
        }
      }
      for (auto& p : parents) by_name[p].name = p;
    }
    for (auto& [n, e] : by_name) {
      // IMAP4rev2: UTF-8 names (RFC 9051 section 5.1); else modified UTF-7.
      auto mutf7 = rev2 ? Result<std::string>(n) : EncodeMailboxUtf7(n);
      e.wire = mutf7 ? *mutf7 : n;
      for (const auto& p : patterns) {
        if ((e.matched = p.Matches(e.wire))) break;
      }
      l.entries.push_back(std::move(e));
    }
    return Result<Listed>(std::move(l));
  };
  auto listed = co_await io::Offload(*svc_.blocking, std::move(list));
  if (!listed->ok()) {
    Tagged(c, "NO", "[UNAVAILABLE] try again later");
    co_return true;
  }
  const auto& entries = (*listed)->entries;
  std::map<std::string, bool> has_children;
  for (const auto& m : (*listed)->all) {
    size_t slash = m.name.rfind(store::kHierarchySeparator);
    if (slash != std::string::npos) has_children[m.name.substr(0, slash)] = true;
  }
  // RFC 5258 section 3.5 (RECURSIVEMATCH): names with a subscribed
  // descendant are listed with CHILDINFO ("SUBSCRIBED") even when they are
  // not subscribed themselves. LSUB needs them too (RFC 3501 section 6.3.9).
  std::map<std::string, bool> subscribed_below;
  if (want_parents) {
    for (const auto& e : entries) {
      if (!e.subscribed) continue;
      for (size_t slash = e.name.rfind(store::kHierarchySeparator); slash != std::string::npos;
           slash = slash == 0 ? std::string::npos
                              : e.name.rfind(store::kHierarchySeparator, slash - 1)) {
        subscribed_below[e.name.substr(0, slash)] = true;
      }
    }
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    if (!e.matched) continue;
    bool below = subscribed_below.count(e.name) > 0;
    bool childinfo = below && !lsub;
    // RFC 3501 section 6.3.9: when "foo/bar" is subscribed and "foo" is not,
    // LSUB "%" returns "foo" flagged \Noselect (the pattern does not reach
    // "foo/bar"); LSUB "*" returns "foo/bar" only.
    bool lsub_parent = false;
    if (lsub && below && !e.subscribed) {
      lsub_parent = true;
      std::string prefix = e.name + store::kHierarchySeparator;
      for (size_t j = i + 1; j < entries.size(); ++j) {
        int order = entries[j].name.compare(0, prefix.size(), prefix);
        if (order > 0) break;  // sorted: past the descendants
        if (order == 0 && entries[j].subscribed && entries[j].matched) {
          lsub_parent = false;  // the subscribed name itself is listed
          break;
        }
      }
    }
    if (only_subscribed) {
      if (!e.subscribed && !childinfo && !lsub_parent) continue;
    } else if (!e.info && !e.root) {
      continue;
    }
    if (a.select_special_use && (!e.info || e.info->special_use.empty())) continue;
    std::string attrs;
    auto add = [&attrs](std::string_view a) {
      if (!attrs.empty()) attrs += ' ';
      attrs += a;
    };
    if (lsub) {
      // As Dovecot answers: LSUB carries \Noselect for the parents only.
      if (lsub_parent) add("\\Noselect");
    } else {
      if (e.root) {
        add("\\Noselect");
      } else if (!e.info) {
        add("\\NonExistent");  // implies \Noselect (RFC 5258 section 3.4)
      }
      if (has_children.count(e.name)) {
        add("\\HasChildren");
      } else if (e.info) {
        add("\\HasNoChildren");
      }
      if ((a.return_subscribed || a.select_subscribed) && e.subscribed) add("\\Subscribed");
      if (e.info && !e.info->special_use.empty() &&
          (!a.extended || a.return_special_use || a.select_special_use)) {
        add(e.info->special_use);
      }
    }
    std::string line = std::string("* ") + (lsub ? "LSUB" : "LIST") + " (" + attrs + ") \"/\" ";
    AppendString(line, e.wire, rev2_);
    if (childinfo) line += " (\"CHILDINFO\" (\"SUBSCRIBED\"))";
    Reply(line);
    if (a.return_status && e.info) {  // RFC 5819
      std::string status = "* STATUS ";
      AppendString(status, e.wire, rev2_);
      status += " (" + StatusItems(*e.info, *a.return_status, cfg_->imap.max_message_size) + ")";
      Reply(status);
    }
  }
  Tagged(c, "OK", std::string(lsub ? "LSUB" : "LIST") + " completed");
  co_return true;
}

awaitable<bool> Session::HandleStatus(const Command& c) {
  const auto& a = c.As<StatusArgs>();
  // RFC 9051 appendix E: no RECENT status item in IMAP4rev2 (status-att in
  // section 9 has none).
  if (rev2_ && std::find(a.items.begin(), a.items.end(), StatusItem::kRecent) != a.items.end()) {
    Tagged(c, "BAD", "RECENT is not an IMAP4rev2 status item (RFC 9051 appendix E)");
    co_return true;
  }
  auto name = FromWire(a.mailbox);
  if (!name) {
    Tagged(c, "NO", "[NONEXISTENT] invalid mailbox name");
    co_return true;
  }
  if (IsArchiveName(*name)) {
    // A list archive (imap/server/archives.h).
    store::Store* store = svc_.store;
    auto find = [store, user = address_, member = account_id_, mailbox = *name] {
      auto a = FindArchive(*store, user, mailbox);
      if (a) {
        // UNSEEN counts the member's own \Seen (Store::ArchiveSeen).
        auto seen = store->ArchiveSeen(member, a->mailbox.id);
        if (!seen) return std::optional<Result<Archive>>(seen.error());
        a->mailbox.unseen =
            a->mailbox.messages - std::min<uint64_t>(a->mailbox.messages, seen->size());
      }
      return std::optional<Result<Archive>>(std::move(a));
    };
    auto found = co_await io::Offload(*svc_.blocking, std::move(find));
    if (!found->ok()) {
      bool missing = (*found).error().kind == ErrorKind::kNotFound;
      Tagged(c, "NO", missing ? "[NONEXISTENT] no such mailbox" : "[UNAVAILABLE] try again later");
      co_return true;
    }
    std::string line = "* STATUS ";
    AppendString(line, ToWire((*found)->mailbox.name), rev2_);
    line += " (" + StatusItems((*found)->mailbox, a.items, cfg_->imap.max_message_size) + ")";
    Reply(line);
    Tagged(c, "OK", "STATUS completed");
    co_return true;
  }
  auto mailboxes = co_await ListMailboxesWithClaims();
  if (!mailboxes->ok()) {
    Tagged(c, "NO", "[UNAVAILABLE] try again later");
    co_return true;
  }
  for (const auto& m : **mailboxes) {
    if (m.name != *name) continue;
    std::string line = "* STATUS ";
    AppendString(line, ToWire(m.name), rev2_);
    line += " (" + StatusItems(m, a.items, cfg_->imap.max_message_size) + ")";
    Reply(line);
    Tagged(c, "OK", "STATUS completed");
    co_return true;
  }
  Tagged(c, "NO", "[NONEXISTENT] no such mailbox");
  co_return true;
}

awaitable<std::optional<Result<std::vector<store::MailboxInfo>>>>
Session::ListMailboxesWithClaims() {
  store::Store* store = svc_.store;
  int64_t account = account_id_;
  // \Recent claims made by sessions of this process that the store may not
  // have written yet (Hub::ClaimRecent): STATUS RECENT must reflect them at
  // once (issue 16), so messages at or below a claim do not count.
  std::map<int64_t, uint32_t> claims;
  auto list = [store, account] {
    return std::optional<Result<std::vector<store::MailboxInfo>>>(store->ListMailboxes(account));
  };
  auto mailboxes = co_await io::Offload(*svc_.blocking, std::move(list));
  if (!mailboxes->ok()) co_return mailboxes;
  for (const auto& m : **mailboxes) {
    uint32_t claimed = hub_.Claimed(m.id);
    if (claimed > 0 && m.recent > 0) claims[m.id] = claimed;
  }
  if (claims.empty()) co_return mailboxes;
  auto count = [store, claims] {
    std::map<int64_t, uint64_t> recent;
    for (const auto& [id, claimed] : claims) {
      // The messages above the claim, less those expunged (ListMessagesByUid
      // returns them too; an expunge sets the message's modseq, so
      // ListVanished from the lowest modseq seen finds every one of them).
      auto above = store->ListMessagesByUid(id, {{claimed + 1, UINT32_MAX}});
      if (!above.ok()) continue;
      if (above->empty()) {
        recent[id] = 0;
        continue;
      }
      uint64_t lowest = UINT64_MAX;
      for (const auto& m : *above) lowest = std::min(lowest, m.modseq);
      auto vanished = store->ListVanished(id, lowest - 1);
      if (!vanished.ok()) continue;
      std::set<uint32_t> gone(vanished->begin(), vanished->end());
      recent[id] = static_cast<uint64_t>(
          std::count_if(above->begin(), above->end(),
                        [&gone](const store::MessageMeta& m) { return !gone.count(m.uid); }));
    }
    return recent;
  };
  auto recent = co_await io::Offload(*svc_.blocking, std::move(count));
  for (auto& m : **mailboxes) {
    auto it = recent.find(m.id);
    if (it != recent.end()) m.recent = std::min<uint64_t>(m.recent, it->second);
  }
  co_return mailboxes;
}

awaitable<bool> Session::WakeView() {
  Selected& sel = *selected_;
  store::Store* store = svc_.store;
  int64_t mailbox_id = sel.id;
  auto ranges = sel.view.UidRanges();
  bool archive = sel.archive;
  int64_t member = account_id_;
  auto load = [store, mailbox_id, ranges, archive, member] {
    auto metas = store->ListMessagesByUid(mailbox_id, ranges);
    if (metas && archive) {
      if (auto st = OverlayArchiveSeen(*store, member, mailbox_id, *metas); !st) {
        return std::optional<Result<std::vector<store::MessageMeta>>>(st.error());
      }
    }
    return std::optional<Result<std::vector<store::MessageMeta>>>(std::move(metas));
  };
  auto found = co_await io::Offload(*svc_.blocking, std::move(load));
  if (!selected_ || selected_->id != mailbox_id || selected_->view.awake()) co_return true;
  if (!found->ok()) {
    spdlog::error("imap: reloading {} for {}: {}", sel.name, address_, (*found).error().message);
    co_return false;
  }
  std::vector<store::MessageMeta>& metas = **found;
  // What changed after our modseq has not been announced yet: make sure the
  // next update sends it (SendUpdates compares modseqs).
  for (auto& m : metas) {
    if (m.modseq > sel.highest_modseq) {
      m.modseq = 0;
      changed_ = true;
    }
  }
  sel.view.Wake(metas);
  co_return true;
}

awaitable<void> Session::SendUpdates(bool expunge_ok, const std::vector<uint32_t>& quiet_uids) {
  if (!selected_) co_return;
  bool announce_expunges = expunge_ok && !selected_->pending_expunged.empty();
  // Nothing changed: nor did any updating search's result (every change to
  // the view, the session's own STORE included, comes through below).
  if (!changed_ && !announce_expunges) co_return;
  const int64_t mailbox_id = selected_->id;
  auto find = [this](uint32_t uid) { return selected_->view.Find(uid); };
  // New messages (UIDs above what the view had), announced last, in UID
  // order: a later page can hold a lower UID (a message whose flags changed
  // after a newer one arrived). While the view is asleep only the UID is kept.
  const uint32_t max_uid = selected_->view.MaxUid();
  std::map<uint32_t, store::MessageMeta> added;
  // Only what changed since our modseq (index on (mailbox, modseq)), not the
  // whole mailbox, read in pages of about kChangePageBytes (issue 11 item 2:
  // a STORE of 64 long keywords on 100,000 messages is a few GB of change
  // list; each session now holds one page at a time, and writes it out in
  // slices before it reads the next).
  bool more = changed_;
  changed_ = false;
  do {
    std::optional<Result<store::MailboxChanges>> changes;
    if (more) {
      store::Store* store = svc_.store;
      uint64_t since = selected_->highest_modseq;
      auto list = [store, mailbox_id, since] {
        return std::optional<Result<store::MailboxChanges>>(
            store->ListChangesPage(mailbox_id, since, kChangePageRows, kChangePageBytes));
      };
      changes = co_await io::Offload(*svc_.blocking, std::move(list));
      if (!selected_ || selected_->id != mailbox_id) co_return;
      more = false;
      if (!changes->ok()) {
        changed_ = true;  // try again at the next command
        changes.reset();
      }
    }
    Selected& sel = *selected_;
    // UIDs whose flags the client must hear, with their metadata.
    std::vector<std::pair<uint32_t, const store::MessageMeta*>> flag_changed;
    if (changes) {
      const store::MailboxChanges& ch = **changes;
      sel.highest_modseq = std::max(sel.highest_modseq, ch.highest_modseq);
      sel.uidnext = ch.uidnext;
      more = ch.more;
      for (uint32_t uid : ch.expunged) {
        if (find(uid)) sel.pending_expunged.insert(uid);
        added.erase(uid);  // arrived and went between two pages
      }
      bool new_keyword = false;
      for (const auto& m : ch.changed) {
        for (auto k : SplitWords(m.keywords)) new_keyword |= sel.keywords.emplace(k).second;
        if (m.uid > max_uid) {
          store::MessageMeta& a = added[m.uid];
          if (sel.view.awake()) {
            a = m;
          } else {
            a.uid = m.uid;
          }
          continue;
        }
        auto i = find(m.uid);
        if (!i) continue;
        // Asleep (IDLE), the view has no modseqs to compare: every change
        // since our modseq is news to the client.
        if (sel.view.awake() && sel.view[*i].modseq == m.modseq) continue;
        if (sel.view.awake()) {
          store::MessageMeta updated = m;
          updated.flags |= sel.view.SessionFlags(*i);  // \Recent stays
          sel.view[*i] = std::move(updated);
        }
        if (sel.pending_expunged.count(m.uid) ||
            std::find(quiet_uids.begin(), quiet_uids.end(), m.uid) != quiet_uids.end()) {
          continue;
        }
        flag_changed.emplace_back(m.uid, &m);
      }
      // RFC 3501 section 7.2.6: a keyword new to the mailbox is announced in
      // FLAGS (and PERMANENTFLAGS) before any FETCH that shows it.
      if (new_keyword) SendFlags(sel);
    }
    // Expunges first (so that a MOVE within the mailbox shows the EXPUNGE of
    // the source before the EXISTS of the copy: issue 16), only where RFC 3501
    // section 7.4.1 allows them, highest sequence number first so each number
    // is still valid when it is sent. They also wait while a command received
    // after this one uses sequence numbers (issue 20): a client that pipelines
    // "NOOP" and "FETCH 5" computed the 5 before it could see any EXPUNGE, so
    // the renumbering waits until no such command is pending (as Dovecot
    // does). Every path that announces expunges (command ends, MOVE, EXPUNGE,
    // IDLE) comes here; with several pages, each page's expunges come before
    // its flag changes (every number is valid when it is sent).
    if (expunge_ok && !sel.pending_expunged.empty() && !reader_.PendingUsesSequenceNumbers()) {
      SendContextExpunges(sel.pending_expunged);
      std::vector<uint32_t> vanished;
      for (auto it = sel.pending_expunged.rbegin(); it != sel.pending_expunged.rend(); ++it) {
        auto i = find(*it);
        if (!i) continue;
        if (qresync_) {
          vanished.push_back(*it);
        } else {
          Reply("* " + std::to_string(*i + 1) + " EXPUNGE");
        }
        sel.view.Erase(*i);
      }
      sel.pending_expunged.clear();
      if (!vanished.empty()) Reply("* VANISHED " + IdSet::FromIds(vanished).ToString());
    }
    // Flag changes of messages the client knows.
    for (const auto& [uid, changed] : flag_changed) {
      auto i = find(uid);
      if (!i) continue;
      store::MessageMeta m;
      if (sel.view.awake()) {
        m = sel.view[*i];
      } else {
        m = *changed;
        m.flags |= sel.view.SessionFlags(*i);
      }
      std::string line = "* " + std::to_string(*i + 1) + " FETCH (FLAGS " + FlagList(m);
      if (condstore_) {
        line += " UID " + std::to_string(m.uid) + " MODSEQ (" + std::to_string(m.modseq) + ")";
      }
      Reply(line + ")");
      if (!co_await FlushSlice()) co_return;  // the client is gone
      if (!selected_ || selected_->id != mailbox_id) co_return;
    }
  } while (more);
  // Then the new messages.
  Selected& sel = *selected_;
  if (!added.empty()) {
    for (const auto& [uid, m] : added) sel.view.Append(m);
    Reply("* " + std::to_string(sel.view.size()) + " EXISTS");
    if (!sel.read_only && !sel.archive) {
      // New messages: this session is the first to see those no other
      // session has claimed (RFC 3501 section 2.3.2, 7.3.2).
      uint32_t previous = ClaimRecent(sel.id, 0, sel.view.MaxUid());
      if (!rev2_) {
        sel.view.SetSessionFlag(previous, sel.view.MaxUid(), kRecentFlag);
        Reply("* " + std::to_string(sel.view.CountFlag(kRecentFlag)) + " RECENT");
      }
    }
  }
  co_await SendContextUpdates();
}

uint32_t Session::ContextNumber(const UpdateContext& ctx, uint32_t uid) const {
  if (ctx.uid) return uid;
  auto i = selected_->view.Find(uid);
  return i ? static_cast<uint32_t>(*i + 1) : 0;
}

void Session::SendContextLine(const UpdateContext& ctx, std::string_view kind,
                              const std::string& pairs) {
  std::string line = "* ESEARCH (TAG ";
  AppendString(line, ctx.tag);
  line += std::string(ctx.uid ? ") UID " : ") ") + std::string(kind) + " (" + pairs + ")";
  Reply(line);
}

void Session::SendContextExpunges(const std::set<uint32_t>& expunged) {
  for (auto& ctx : selected_->contexts) {
    std::vector<uint32_t> gone, kept;
    std::string pairs;  // SORT: one pair a message, at its position as the client removes it
    for (uint32_t uid : ctx.uids) {
      if (!expunged.count(uid)) {
        kept.push_back(uid);
        continue;
      }
      gone.push_back(uid);
      if (!ctx.sort.empty()) {
        if (!pairs.empty()) pairs += ' ';
        pairs += std::to_string(kept.size() + 1) + ' ' + std::to_string(ContextNumber(ctx, uid));
      }
    }
    if (gone.empty()) continue;
    if (ctx.sort.empty()) {
      std::vector<uint32_t> numbers;
      for (uint32_t uid : gone) numbers.push_back(ContextNumber(ctx, uid));
      pairs = "0 " + IdSet::FromIds(numbers).ToString();
    }
    SendContextLine(ctx, "REMOVEFROM", pairs);
    ctx.uids = std::move(kept);
  }
}

awaitable<void> Session::SendContextUpdates() {
  if (!selected_ || selected_->contexts.empty() || !selected_->view.awake()) co_return;
  const int64_t mailbox_id = selected_->id;
  for (size_t c = 0; c < selected_->contexts.size(); ++c) {
    const auto& metas = selected_->view.metas();
    uint32_t max_seq = static_cast<uint32_t>(metas.size());
    uint32_t max_uid = metas.empty() ? 0 : metas.back().uid;
    std::vector<uint32_t> now, now_seqs;  // ascending: the view is in UID order
    for (size_t i = 0; i < metas.size(); ++i) {
      if (selected_->pending_expunged.count(metas[i].uid)) continue;  // REMOVEFROM comes with it
      MessageData m{&metas[i], static_cast<uint32_t>(i + 1), {}, nullptr};
      if (!Matches(selected_->contexts[c].key, m, max_seq, max_uid)) continue;
      now.push_back(metas[i].uid);
      now_seqs.push_back(static_cast<uint32_t>(i + 1));
    }
    if (selected_->contexts[c].sort.empty()) {
      // SEARCH: position 0, the sets in mailbox order (section 4.3.3).
      UpdateContext& ctx = selected_->contexts[c];
      std::vector<uint32_t> removed, added;
      std::set_difference(ctx.uids.begin(), ctx.uids.end(), now.begin(), now.end(),
                          std::back_inserter(removed));
      std::set_difference(now.begin(), now.end(), ctx.uids.begin(), ctx.uids.end(),
                          std::back_inserter(added));
      for (auto* change : {&removed, &added}) {
        if (change->empty()) continue;
        std::vector<uint32_t> numbers;
        for (uint32_t uid : *change) {
          numbers.push_back(ContextNumber(ctx, uid));
        }
        SendContextLine(ctx, change == &removed ? "REMOVEFROM" : "ADDTO",
                        "0 " + IdSet::FromIds(numbers).ToString());
      }
      ctx.uids = std::move(now);
      continue;
    }
    // SORT (CONTEXT=SORT): sort keys never change, so the messages that stay
    // keep their order; those that go are removed at their positions and
    // those that come inserted at theirs in the new order, one pair each,
    // processed in turn by the client (section 4.3.2).
    std::set<uint32_t> now_set(now.begin(), now.end());
    std::set<uint32_t> had(selected_->contexts[c].uids.begin(), selected_->contexts[c].uids.end());
    if (now_set == had) continue;
    auto inputs = co_await LoadSortInputs(now_seqs, /*uid=*/true, /*references=*/false);
    if (!selected_ || selected_->id != mailbox_id || c >= selected_->contexts.size()) co_return;
    if (!inputs) continue;  // the store could not be read: the next update tries again
    UpdateContext& ctx = selected_->contexts[c];
    std::vector<uint32_t> sorted;
    for (size_t i : SortOrder(*inputs, ctx.sort)) sorted.push_back((*inputs)[i].number);
    std::string removes, adds;
    size_t kept = 0;
    for (uint32_t uid : ctx.uids) {
      if (now_set.count(uid)) {
        ++kept;
        continue;
      }
      if (!removes.empty()) removes += ' ';
      removes += std::to_string(kept + 1) + ' ' + std::to_string(ContextNumber(ctx, uid));
    }
    for (size_t j = 0; j < sorted.size(); ++j) {
      if (had.count(sorted[j])) continue;
      if (!adds.empty()) adds += ' ';
      adds += std::to_string(j + 1) + ' ' + std::to_string(ContextNumber(ctx, sorted[j]));
    }
    if (!removes.empty()) SendContextLine(ctx, "REMOVEFROM", removes);
    if (!adds.empty()) SendContextLine(ctx, "ADDTO", adds);
    ctx.uids = std::move(sorted);
  }
}

void Session::HandleCancelUpdate(const Command& c) {
  auto& contexts = selected_->contexts;
  for (const auto& tag : c.As<CancelUpdateArgs>().tags) {
    auto it = std::find_if(contexts.begin(), contexts.end(),
                           [&tag](const UpdateContext& u) { return u.tag == tag; });
    if (it == contexts.end()) {
      Tagged(c, "BAD", "no updating search has the tag " + tag);
      return;
    }
  }
  for (const auto& tag : c.As<CancelUpdateArgs>().tags) {
    std::erase_if(contexts, [&tag](const UpdateContext& u) { return u.tag == tag; });
  }
  Tagged(c, "OK", "CANCELUPDATE completed");
}

void Session::SendFlags(const Selected& sel) {
  std::string keywords;
  for (const auto& k : sel.keywords) keywords += " " + k;
  Reply("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft" + keywords + ")");
  if (sel.archive && !sel.read_only) {
    Reply("* OK [PERMANENTFLAGS (\\Seen)] only your own \\Seen in a list archive");
    return;
  }
  Reply(sel.read_only ? "* OK [PERMANENTFLAGS ()] read-only"
                      : "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft" +
                            keywords + " \\*)] flags permitted");
}

uint32_t Session::ClaimRecent(int64_t mailbox_id, uint32_t stored, uint32_t up_to) {
  uint32_t previous = hub_.ClaimRecent(mailbox_id, stored, up_to);
  if (up_to > previous) {
    // Persisted without waiting: a claim lost in a crash only shows a
    // message as recent once more, which RFC 3501 allows.
    svc_.store->ClaimRecent(mailbox_id, up_to, [](Result<uint32_t>) {});
  }
  return previous;
}

awaitable<bool> Session::HandleQuota(const Command& c) {
  // RFC 9208: one quota root, "", per account, with the STORAGE resource.
  // Limits are set by the administrator (`hato user quota`), not over IMAP.
  if (c.verb == Verb::kSetQuota) {
    Tagged(c, "NO", "[NOPERM] quotas are set by the administrator");
    co_return true;
  }
  std::string mailbox;
  if (c.verb == Verb::kGetQuotaRoot) {
    auto name = FromWire(c.As<MailboxArgs>().mailbox);
    if (!name) {
      Tagged(c, "NO", "[NONEXISTENT] invalid mailbox name");
      co_return true;
    }
    mailbox = *name;
  }
  store::Store* store = svc_.store;
  int64_t account = account_id_;
  struct Lookup {
    Result<store::QuotaUsage> quota = store::QuotaUsage{};
    bool mailbox_found = true;
  };
  auto lookup = [store, account, mailbox] {
    Lookup l;
    l.quota = store->GetQuota(account);
    if (!mailbox.empty()) {
      auto list = store->ListMailboxes(account);
      l.mailbox_found =
          list.ok() && std::any_of(list->begin(), list->end(),
                                   [&](const store::MailboxInfo& m) { return m.name == mailbox; });
    }
    return l;
  };
  Lookup l = co_await io::Offload(*svc_.blocking, std::move(lookup));
  if (!l.quota) {
    Tagged(c, "NO", "[UNAVAILABLE] try again later");
    co_return true;
  }
  const store::QuotaUsage& q = *l.quota;
  std::string quota_line;
  if (q.limit_bytes) {
    quota_line = "* QUOTA \"\" (STORAGE " + std::to_string(KiB(q.used_bytes)) + " " +
                 std::to_string(*q.limit_bytes / 1024) + ")";
  }
  if (c.verb == Verb::kGetQuotaRoot) {
    if (!l.mailbox_found) {
      Tagged(c, "NO", "[NONEXISTENT] no such mailbox");
      co_return true;
    }
    // RFC 9208 section 4.3: an unlimited account's mailboxes have no quota root.
    std::string line = "* QUOTAROOT ";
    AppendString(line, ToWire(mailbox), rev2_);
    if (q.limit_bytes) line += " \"\"";
    Reply(line);
    if (q.limit_bytes) Reply(quota_line);
    Tagged(c, "OK", "GETQUOTAROOT completed");
    co_return true;
  }
  if (!c.As<QuotaRootArgs>().root.empty() || !q.limit_bytes) {
    Tagged(c, "NO", "[NONEXISTENT] no such quota root");  // RFC 9208 section 4.2
    co_return true;
  }
  Reply(quota_line);
  Tagged(c, "OK", "GETQUOTA completed");
  co_return true;
}

}  // namespace hato::imap
