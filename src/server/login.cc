#include "server/login.h"

#include <spdlog/spdlog.h>

#include <ctime>

#include "auth/app_password.h"
#include "auth/password.h"
#include "base/strings.h"
#include "io/await.h"

namespace hato::server {
namespace {

const std::string& DummyHash() {
  static const std::string hash = [] {
    auto h = auth::HashPassword("hato: no such account");
    return h ? *h : std::string();
  }();
  return hash;
}

// The outcome of a password check: the failure penalty (waited here) and the
// log line; `why` is appended to the failure line.
awaitable<void> Record(auth::LoginPenalty* penalty, Counters* counters, const std::string& ip,
                       const LoginResult& result, const std::string& protocol,
                       const std::string& why) {
  if (result.outcome == LoginOutcome::kTemporary) {
    spdlog::error("{}: account lookup failed: {}", protocol, result.error);
  } else if (result.outcome == LoginOutcome::kBad) {
    if (counters) counters->CountLoginFailure(protocol);
    std::chrono::milliseconds delay =
        penalty ? penalty->Failure(ip, result.address) : std::chrono::milliseconds(0);
    spdlog::warn("{}: failed login for {} from {}{}", protocol, LogSafe(result.address), ip, why);
    co_await Sleep(delay);
  } else if (penalty) {
    penalty->Success(ip, result.address);
  }
}

}  // namespace

awaitable<void> Sleep(std::chrono::milliseconds d) {
  if (d.count() <= 0) co_return;
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex, d);
  boost::system::error_code ec;
  auto token = asio::redirect_error(asio::use_awaitable, ec);
  co_await timer.async_wait(token);
}

awaitable<LoginResult> CheckLogin(Services& svc, std::string ip, std::string user,
                                  std::string password, std::string protocol) {
  // g++ 12: named callables and stored results around co_await (see io/await.h).
  auth::LoginPenalty* penalty = svc.penalty;
  std::string address = AsciiLower(user);
  if (penalty) {
    std::chrono::milliseconds pending = penalty->Pending(ip, address);
    co_await Sleep(pending);
  }
  // The hash runs on its own pool with a bounded queue (server/isolation.h):
  // past it the login fails temporarily at once rather than queueing behind
  // a flood, and the blocking pool (RCPT, SELECT, RETR) never runs a hash.
  PasswordChecks::Ticket ticket;
  if (svc.passwords) {
    ticket = svc.passwords->TryEnter(auth::NetworkKey(ip));
    if (!ticket) {
      spdlog::warn("{}: password check refused for {} from {}: {} checks waiting", protocol,
                   address, ip, svc.passwords->pending());
      LoginResult busy;
      busy.outcome = LoginOutcome::kTemporary;
      busy.address = address;
      busy.error = "busy";
      co_return busy;
    }
  }
  store::Store* store = svc.store;
  auth::CredentialCache* cache = svc.credentials;
  // App passwords (auth/app_password.h) serve mail clients, not the web
  // login (which also guards the password change and app passwords).
  bool app_ok = protocol != "web";
  auto verify = [store, cache, address, password, app_ok]() {
    LoginResult r;
    r.address = address;
    auto account = store->FindAccount(address);
    if (!account) {
      if (account.error().kind != ErrorKind::kNotFound) {
        r.outcome = LoginOutcome::kTemporary;
        r.error = account.error().message;
      } else {
        auth::VerifyPassword(DummyHash(), password);  // same cost as a wrong password
      }
      return r;
    }
    if (auth::VerifyPasswordCached(cache, account->password_hash, password)) {
      r.outcome = LoginOutcome::kOk;
      r.account_id = account->id;
      r.session_epoch = account->session_epoch;
    } else if (auto app = app_ok ? auth::NormalizeAppPassword(password) : std::nullopt) {
      auto now = static_cast<int64_t>(std::time(nullptr));
      auto token = store->FindToken(auth::AppPasswordHash(*app), now);
      if (token && token->kind == "app" && token->account_id == account->id) {
        r.outcome = LoginOutcome::kOk;
        r.account_id = account->id;
        r.session_epoch = account->session_epoch;
        if (auto st = store->TouchToken(token->id, now); !st) {
          spdlog::warn("login: cannot record the use of an app password: {}", st.error().message);
        }
      } else if (!token && token.error().kind != ErrorKind::kNotFound) {
        r.outcome = LoginOutcome::kTemporary;
        r.error = token.error().message;
      }
    }
    return r;
  };
  asio::thread_pool& pool = svc.passwords ? svc.passwords->pool() : *svc.blocking;
  LoginResult result = co_await io::Offload(pool, std::move(verify));
  std::string why;
  co_await Record(penalty, svc.counters, ip, result, protocol, why);
  co_return result;
}

awaitable<ScramAccount> BeginScramLogin(Services& svc, std::string ip, std::string user,
                                        std::string protocol) {
  auth::LoginPenalty* penalty = svc.penalty;
  std::string address = AsciiLower(user);
  if (penalty) {
    std::chrono::milliseconds pending = penalty->Pending(ip, address);
    co_await Sleep(pending);
  }
  store::Store* store = svc.store;
  auto lookup = [store, address]() {
    ScramAccount r;
    r.address = address;
    auto account = store->FindAccount(address);
    if (!account) {
      if (account.error().kind != ErrorKind::kNotFound) {
        r.outcome = LoginOutcome::kTemporary;
        r.error = account.error().message;
      }
      return r;
    }
    r.account_id = account->id;
    r.session_epoch = account->session_epoch;
    r.verifier = auth::ParseScramVerifier(account->scram_sha256);
    r.missing_verifier = !r.verifier;
    if (r.verifier) r.outcome = LoginOutcome::kOk;
    return r;
  };
  ScramAccount result = co_await io::Offload(*svc.blocking, std::move(lookup));
  if (result.outcome == LoginOutcome::kTemporary) {
    spdlog::error("{}: account lookup failed: {}", protocol, result.error);
  }
  co_return result;
}

awaitable<LoginResult> FinishScramLogin(Services& svc, std::string ip, ScramAccount account,
                                        bool proof_ok, std::string protocol) {
  LoginResult result;
  result.address = account.address;
  if (proof_ok && account.outcome == LoginOutcome::kOk) {
    result.outcome = LoginOutcome::kOk;
    result.account_id = account.account_id;
    result.session_epoch = account.session_epoch;
  }
  std::string why;
  if (account.missing_verifier) {
    why =
        " (SCRAM-SHA-256: the account has no SCRAM verifier; set its password again with "
        "`hato user passwd` to enable SCRAM)";
  } else {
    why = " (SCRAM-SHA-256)";
  }
  co_await Record(svc.penalty, svc.counters, ip, result, protocol, why);
  co_return result;
}

void AbandonScramLogin(Services& svc, const std::string& ip, const ScramAccount& account,
                       const std::string& protocol) {
  if (account.outcome == LoginOutcome::kTemporary) return;
  if (svc.penalty) (void)svc.penalty->Failure(ip, account.address);
  spdlog::warn("{}: failed login for {} from {} (SCRAM-SHA-256 exchange abandoned)", protocol,
               LogSafe(account.address), ip);
}

awaitable<std::optional<Admission::Ticket>> Admit(Admission& admission, tcp::socket& socket,
                                                  size_t total, size_t per_ip,
                                                  bool per_ip_on_loopback,
                                                  std::string refusal_total,
                                                  std::string refusal_ip) {
  boost::system::error_code ec;
  auto ep = socket.remote_endpoint(ec);
  std::string ip = ec ? std::string("?") : ep.address().to_string();
  bool loopback = !ec && ep.address().is_loopback();
  std::optional<Admission::Ticket> ticket;
  size_t ip_limit = loopback && !per_ip_on_loopback ? 0 : per_ip;
  Admission::Verdict v = admission.TryAdmit(ip, total, ip_limit, ticket);
  if (v == Admission::Verdict::kAdmitted) co_return ticket;
  std::string msg = (v == Admission::Verdict::kTooMany ? refusal_total : refusal_ip) + "\r\n";
  spdlog::warn("connection from {} refused: {}", ip,
               v == Admission::Verdict::kTooMany ? "too many sessions" : "too many from address");
  auto buffer = asio::buffer(msg);
  auto token = asio::redirect_error(asio::use_awaitable, ec);
  co_await asio::async_write(socket, buffer, token);
  co_return std::nullopt;
}

}  // namespace hato::server
