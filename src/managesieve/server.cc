#include "managesieve/server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>

#include "base/strings.h"
#include "io/await.h"
#include "io/net.h"
#include "managesieve/proto.h"
#include "server/login.h"
#include "sieve/deliver.h"
#include "sieve/interpret.h"

namespace hato::managesieve {
namespace {

using std::chrono::seconds;

constexpr int kMaxErrors = 20;  // bad commands in one session; BYE past it
constexpr seconds kIdleTimeout{600};

class Session final : public server::SessionRegistry::Member {
 public:
  Session(server::Services& svc, tcp::socket socket)
      : svc_(svc), conn_(std::move(socket), svc.tls), cfg_(svc.config->Get()) {
    conn_.set_write_timeout(kIdleTimeout);
  }

  awaitable<void> Run();

  void RequestStop() override {
    stopping_ = true;
    if (idle_) conn_.CancelReads();
  }

 private:
  void Reply(std::string_view line) { conn_.QueueLine(line); }
  void Ok(std::string_view text = "") {
    Reply(text.empty() ? std::string("OK") : "OK " + Quote(text));
  }
  void No(std::string_view code, std::string_view text) {
    Reply("NO " + (code.empty() ? std::string() : "(" + std::string(code) + ") ") + Quote(text));
  }
  bool CountError() { return ++errors_ < kMaxErrors; }
  // A script write committed: JMAP push sends StateChange for SieveScript
  // (RFC 9661, server::ChangeFeed::PublishRecords).
  void Changed() {
    if (svc_.changes) svc_.changes->PublishRecords(account_id_);
  }
  bool PlaintextAllowed() const {
    return conn_.is_tls() || (conn_.peer_is_loopback() && cfg_->auth.allow_plaintext_on_loopback);
  }
  void Capabilities();
  // Reads one complete command (literals included); nullopt when the session ends.
  awaitable<std::optional<Result<Command>>> ReadCommand();
  // The client's answer to a SASL challenge: one string on its own line,
  // parsed as the argument of a nameless command.
  awaitable<std::optional<Result<Command>>> ReadSaslString();
  awaitable<bool> Authenticate(const Command& c);
  awaitable<bool> Handle(const Command& c);

  server::Services& svc_;
  io::Connection conn_;
  std::shared_ptr<const config::Config> cfg_;
  int errors_ = 0;
  bool stopping_ = false;
  bool idle_ = false;
  int64_t account_id_ = 0;  // 0 until AUTHENTICATE succeeds
  std::string address_;
};

// RFC 5804 section 1.7: the capability response.
void Session::Capabilities() {
  Reply("\"IMPLEMENTATION\" \"Hato\"");
  std::string caps;
  for (const auto& c : sieve::Capabilities()) caps += (caps.empty() ? "" : " ") + c;
  Reply("\"SIEVE\" " + Quote(caps));
  if (account_id_ == 0) {
    if (PlaintextAllowed())
      Reply("\"SASL\" \"PLAIN\"");
    else
      Reply("\"SASL\" \"\"");
    if (conn_.tls_available() && !conn_.is_tls()) Reply("\"STARTTLS\"");
  } else {
    Reply("\"OWNER\" " + Quote(address_));
  }
  Reply("\"MAXREDIRECTS\" \"" + std::to_string(cfg_->sieve.max_redirects) + "\"");
  Reply("\"VERSION\" \"1.0\"");
  Ok();
}

awaitable<std::optional<Result<Command>>> Session::ReadCommand() {
  Limits limits;
  // Never below the default: a script a little over a lowered limit is read
  // whole and refused (QUOTA/MAXSIZE) rather than left to be parsed as commands.
  limits.max_literal =
      std::max<uint64_t>(cfg_->sieve.max_script_bytes, sieve::Limits{}.max_script_bytes);
  while (true) {
    size_t consumed = 0;
    auto r = Parse(conn_.buffer(), &consumed, limits);
    if (!r) {
      conn_.buffer().erase(0, consumed);
      co_return std::optional<Result<Command>>(r.error());
    }
    if (*r) {
      conn_.buffer().erase(0, consumed);
      co_return std::optional<Result<Command>>(std::move(**r));
    }
    bool sent = co_await conn_.Flush();
    if (!sent) co_return std::nullopt;
    if (stopping_) co_return std::nullopt;
    idle_ = true;
    io::ReadStatus st = co_await conn_.ReadMore(kIdleTimeout);
    idle_ = false;
    if (st != io::ReadStatus::kOk) co_return std::nullopt;
  }
}

awaitable<std::optional<Result<Command>>> Session::ReadSaslString() {
  while (true) {
    std::string framed = "X " + conn_.buffer();
    size_t consumed = 0;
    auto r = Parse(framed, &consumed);
    if (!r || *r) {
      conn_.buffer().erase(0, consumed >= 2 ? consumed - 2 : 0);
      if (!r) co_return std::optional<Result<Command>>(r.error());
      co_return std::optional<Result<Command>>(std::move(**r));
    }
    if (!co_await conn_.Flush()) co_return std::nullopt;
    io::ReadStatus st = co_await conn_.ReadMore(kIdleTimeout);
    if (st != io::ReadStatus::kOk) co_return std::nullopt;
  }
}

awaitable<void> Session::Run() {
  Capabilities();  // the greeting (RFC 5804 section 1.7)
  while (true) {
    cfg_ = svc_.config->Get();
    auto cmd = co_await ReadCommand();
    if (!cmd) {
      if (stopping_) Reply("BYE \"server shutting down\"");
      break;
    }
    if (!*cmd) {
      No((*cmd).error().kind == ErrorKind::kTooLarge ? "QUOTA/MAXSIZE" : "",
         (*cmd).error().message);
      if (!CountError()) {
        Reply("BYE \"too many errors\"");
        break;
      }
      continue;
    }
    bool go_on = co_await Handle(**cmd);
    if (!go_on) break;
  }
  co_await conn_.Flush();
  conn_.Close();
}

awaitable<bool> Session::Authenticate(const Command& c) {
  if (account_id_ != 0) {
    No("", "already authenticated");
    co_return CountError();
  }
  if (c.args.empty() || !EqualsIgnoreCase(c.args[0], "PLAIN")) {
    No("", "unsupported mechanism");
    co_return CountError();
  }
  if (!PlaintextAllowed()) {
    No("ENCRYPT-NEEDED", "use STARTTLS first");
    co_return CountError();
  }
  std::string response;
  if (c.args.size() >= 2) {
    response = c.args[1];
  } else {
    // An empty challenge; the client answers with a string (RFC 5804 2.1).
    Reply("\"\"");
    auto answer = co_await ReadSaslString();
    if (!answer) co_return false;
    if (!*answer || (*answer)->args.size() != 1) {
      No("", "malformed SASL response");
      co_return CountError();
    }
    response = (*answer)->args[0];
    if (response == "*") {
      No("", "authentication cancelled");
      co_return true;
    }
  }
  auto decoded = Base64Decode(response);
  size_t nul1 = decoded ? decoded->find('\0') : std::string::npos;
  size_t nul2 = nul1 == std::string::npos ? nul1 : decoded->find('\0', nul1 + 1);
  if (nul2 == std::string::npos) {
    No("", "malformed PLAIN response");
    co_return CountError();
  }
  std::string authzid = decoded->substr(0, nul1);
  std::string user = decoded->substr(nul1 + 1, nul2 - nul1 - 1);
  std::string password = decoded->substr(nul2 + 1);
  if (!authzid.empty() && !EqualsIgnoreCase(authzid, user)) {
    No("", "authorization identity not permitted");
    co_return CountError();
  }
  std::string ip = conn_.peer_ip();
  std::string protocol = "managesieve";
  server::LoginResult check = co_await server::CheckLogin(svc_, ip, user, password, protocol);
  if (check.outcome == server::LoginOutcome::kTemporary) {
    No("TRYLATER", "authentication temporarily unavailable");
    co_return true;
  }
  if (check.outcome != server::LoginOutcome::kOk) {
    No("", "authentication failed");
    co_return CountError();
  }
  account_id_ = check.account_id;
  address_ = check.address;
  spdlog::info("managesieve: {} logged in from {}{}", address_, conn_.peer_ip(),
               conn_.is_tls() ? " with TLS" : "");
  Ok("logged in");
  co_return true;
}

awaitable<bool> Session::Handle(const Command& c) {
  const std::string& n = c.name;
  auto arg = [&](size_t i) -> const std::string& { return c.args[i]; };
  auto need = [&](size_t count) {
    if (c.args.size() == count) return true;
    No("", n + " takes " + std::to_string(count) + " argument(s)");
    return false;
  };
  if (n == "LOGOUT") {
    Ok("bye");
    co_return false;
  }
  if (n == "CAPABILITY") {
    Capabilities();
    co_return true;
  }
  if (n == "NOOP") {
    // RFC 5804 section 2.13: a tag argument is echoed in a TAG response code
    // (sieve-connect resynchronises after STARTTLS with it).
    if (!c.args.empty()) {
      Reply("OK (TAG " + Quote(c.args[0]) + ") \"Done\"");
    } else {
      Ok("Done");
    }
    co_return true;
  }
  if (n == "STARTTLS") {
    if (conn_.is_tls() || !conn_.tls_available() || account_id_ != 0) {
      No("", "STARTTLS not available");
      co_return CountError();
    }
    Ok("begin TLS negotiation");
    if (!co_await conn_.Flush()) co_return false;
    if (!co_await conn_.StartTls(seconds(cfg_->tls_handshake_timeout_seconds))) co_return false;
    Capabilities();  // RFC 5804 section 2.2: re-issued after the handshake
    co_return true;
  }
  if (n == "AUTHENTICATE") co_return co_await Authenticate(c);
  if (account_id_ == 0) {
    No("", "authenticate first");
    co_return CountError();
  }
  store::Store* store = svc_.store;
  int64_t id = account_id_;
  if (n == "UNAUTHENTICATE") {
    account_id_ = 0;
    Ok();
    co_return true;
  }
  if (n == "HAVESPACE") {
    if (!need(2)) co_return CountError();
    auto size = ParseUint(arg(1));
    if (!size || *size > cfg_->sieve.max_script_bytes) {
      No("QUOTA/MAXSIZE",
         "scripts are limited to " + std::to_string(cfg_->sieve.max_script_bytes) + " bytes");
      co_return true;
    }
    // RFC 5804 section 2.3: a name PUTSCRIPT would refuse (a reserved
    // one too), or a new name past the number of scripts.
    std::string name = arg(0);
    if (auto st = sieve::CheckScriptName(name); !st) {
      No("", st.error().message);
      co_return true;
    }
    auto count_op = [store, id, name, limits = cfg_->sieve] {
      return sieve::CheckStore(*store, id, name, "", limits);
    };
    sieve::StoreCheck check = co_await io::Offload(*svc_.blocking, std::move(count_op));
    if (check.kind == sieve::StoreCheck::Kind::kTooMany) {
      No("QUOTA/MAXSCRIPTS", check.message);
    } else {
      Ok();
    }
    co_return true;
  }
  if (n == "CHECKSCRIPT" || n == "PUTSCRIPT") {
    bool put = n == "PUTSCRIPT";
    if (!need(put ? 2 : 1)) co_return CountError();
    const std::string& text = arg(put ? 1 : 0);
    if (put) {
      if (auto st = sieve::CheckScriptName(arg(0)); !st) {
        No("", st.error().message);
        co_return true;
      }
    }
    if (!put) {
      auto script = sieve::Compile(text, sieve::LimitsFrom(cfg_->sieve).script);
      if (!script) {
        No(script.error().kind == ErrorKind::kTooLarge ? "QUOTA/MAXSIZE" : "",
           script.error().message);
      } else {
        Ok();
      }
      co_return true;
    }
    // Checked (limits, number of scripts) and stored in one hop.
    std::string name = arg(0);
    auto put_op = [store, id, name, text, limits = cfg_->sieve]() -> sieve::StoreCheck {
      sieve::StoreCheck check = sieve::CheckStore(*store, id, name, text, limits);
      if (!check.ok()) return check;
      if (auto st = store->PutSieveScript(id, name, text); !st) {
        return {sieve::StoreCheck::Kind::kTemporary, st.error().message};
      }
      return check;
    };
    sieve::StoreCheck check = co_await io::Offload(*svc_.blocking, std::move(put_op));
    using Kind = sieve::StoreCheck::Kind;
    switch (check.kind) {
      case Kind::kOk:
        Changed();
        Ok();
        break;
      case Kind::kInvalid:
        No("", check.message);
        break;
      case Kind::kTooLarge:
        No("QUOTA/MAXSIZE", check.message);
        break;
      case Kind::kTooMany:
        No("QUOTA/MAXSCRIPTS", check.message);
        break;
      case Kind::kTemporary:
        No("TRYLATER", check.message);
        break;
    }
    co_return true;
  }
  if (n == "LISTSCRIPTS") {
    auto list_op = [store, id] { return store->ListSieveScripts(id); };
    auto list = co_await io::Offload(*svc_.blocking, std::move(list_op));
    if (!list) {
      No("TRYLATER", list.error().message);
      co_return true;
    }
    // The server's own scripts (the member's forwarding, JMAP's vacation
    // response) are not the user's to see or edit here.
    for (const auto& s : *list) {
      if (!sieve::IsReservedScriptName(s.name)) Reply(Quote(s.name) + (s.active ? " ACTIVE" : ""));
    }
    Ok();
    co_return true;
  }
  // A reserved name (sieve::IsReservedScriptName) names no script here.
  auto reserved = [&](const std::string& name) {
    if (!sieve::IsReservedScriptName(name)) return false;
    No("NONEXISTENT", "no such script: " + name);
    return true;
  };
  if (n == "GETSCRIPT") {
    if (!need(1)) co_return CountError();
    std::string name = arg(0);
    if (reserved(name)) co_return true;
    auto get_op = [store, id, name] { return store->GetSieveScript(id, name); };
    auto text = co_await io::Offload(*svc_.blocking, std::move(get_op));
    if (!text) {
      No(text.error().kind == ErrorKind::kNotFound ? "NONEXISTENT" : "TRYLATER",
         text.error().message);
      co_return true;
    }
    Reply("{" + std::to_string(text->size()) + "}\r\n" + *text);
    Ok();
    co_return true;
  }
  if (n == "SETACTIVE" || n == "DELETESCRIPT") {
    if (!need(1)) co_return CountError();
    std::string name = arg(0);
    if (reserved(name)) co_return true;
    bool activate = n == "SETACTIVE";
    auto set_op = [store, id, name, activate] {
      return activate ? store->SetActiveSieveScript(id, name) : store->DeleteSieveScript(id, name);
    };
    auto st = co_await io::Offload(*svc_.blocking, std::move(set_op));
    if (!st) {
      std::string code = st.error().kind == ErrorKind::kNotFound ? "NONEXISTENT"
                         : st.error().kind == ErrorKind::kInUse  ? "ACTIVE"
                                                                 : "TRYLATER";
      No(code, st.error().message);
      co_return true;
    }
    Changed();
    Ok();
    co_return true;
  }
  if (n == "RENAMESCRIPT") {
    if (!need(2)) co_return CountError();
    std::string from = arg(0), to = arg(1);
    if (reserved(from)) co_return true;
    if (auto st = sieve::CheckScriptName(to); !st) {
      No("", st.error().message);
      co_return true;
    }
    auto rename_op = [store, id, from, to] { return store->RenameSieveScript(id, from, to); };
    auto st = co_await io::Offload(*svc_.blocking, std::move(rename_op));
    if (!st) {
      std::string code = st.error().kind == ErrorKind::kNotFound ? "NONEXISTENT"
                         : st.error().kind == ErrorKind::kExists ? "ALREADYEXISTS"
                                                                 : "TRYLATER";
      No(code, st.error().message);
      co_return true;
    }
    Changed();
    Ok();
    co_return true;
  }
  No("", "unknown command " + n);
  co_return CountError();
}

}  // namespace

awaitable<void> Server::Serve(tcp::socket socket) {
  auto cfg = services_.config->Get();
  std::optional<server::Admission::Ticket> ticket = co_await server::Admit(
      admission_, socket, cfg->imap.max_connections, cfg->imap.max_connections_per_ip,
      cfg->per_ip_limits_on_loopback, "BYE \"too many connections, try again later\"",
      "BYE \"too many connections from your address, try again later\"");
  if (!ticket) co_return;
  Session session(services_, std::move(socket));
  server::SessionRegistry::Scope registered(registry_, &session);
  co_await session.Run();
}

}  // namespace hato::managesieve
