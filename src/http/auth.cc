#include "http/auth.h"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <mutex>
#include <unordered_map>

#include "base/digest.h"
#include "base/strings.h"
#include "io/await.h"
#include "server/login.h"
#include "web/security.h"

namespace hato::http {
namespace {

std::string Base64Url(std::string_view bytes) {
  std::string s = Base64Encode(bytes);
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  while (!s.empty() && s.back() == '=') s.pop_back();
  return s;
}

// Verified Basic credentials, keyed by HMAC(process key, user NUL password).
class CredentialCache {
 public:
  using Clock = std::chrono::steady_clock;
  CredentialCache() {
    key_.resize(32);
    if (sodium_init() < 0) spdlog::error("http: libsodium failed to initialise");
    randombytes_buf(key_.data(), key_.size());
  }
  std::string Key(std::string_view user, std::string_view password) const {
    std::string data(user);
    data.push_back('\0');
    data.append(password);
    return HmacSha256(key_, data);
  }
  std::optional<Principal> Get(const std::string& k) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(k);
    if (it == entries_.end()) return std::nullopt;
    if (Clock::now() > it->second.expires) {
      entries_.erase(it);
      return std::nullopt;
    }
    return it->second.who;
  }
  void Put(const std::string& k, Principal who) {
    std::lock_guard lock(mu_);
    auto now = Clock::now();
    if (entries_.size() >= kMaxCredentialCacheEntries) {
      std::erase_if(entries_, [now](const auto& e) { return now > e.second.expires; });
      if (entries_.size() >= kMaxCredentialCacheEntries) entries_.clear();
    }
    entries_[k] = Entry{std::move(who), now + std::chrono::seconds(kCredentialCacheSeconds)};
  }

 private:
  struct Entry {
    Principal who;
    Clock::time_point expires;
  };
  std::string key_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // guarded by mu_
};

CredentialCache& Cache() {
  static CredentialCache cache;
  return cache;
}

bool SafeMethod(std::string_view m) { return m == "GET" || m == "HEAD" || m == "OPTIONS"; }

// A cookie-authenticated request that changes something must come from our
// own pages (RFC 6265 section 8.2 warns cookies ride along cross-site).
bool SameSite(const Request& req) {
  if (auto site = req.Get("sec-fetch-site")) {
    if (*site != "same-origin" && *site != "none") return false;
  }
  auto origin = req.Get("origin");
  if (!origin) return true;
  auto host = req.Get("host");
  if (!host) return false;
  std::string_view o = *origin;
  size_t scheme = o.find("://");
  if (scheme == std::string_view::npos) return false;
  return o.substr(scheme + 3) == *host;
}

awaitable<AuthOutcome> ByToken(server::Services& svc, Request& req, std::string token,
                               std::string via) {
  auth::LoginPenalty* penalty = svc.penalty;
  std::string ip = req.peer_ip;
  if (penalty && via != "cookie") {
    std::chrono::milliseconds pending = penalty->Pending(ip);
    co_await server::Sleep(pending);
  }
  store::Store* store = svc.store;
  std::string hash = TokenHash(token);
  auto find = [store, hash]() { return store->FindToken(hash, std::time(nullptr)); };
  Result<store::AccessToken> found = co_await io::Offload(*svc.blocking, std::move(find));
  if (!found) {
    if (found.error().kind != ErrorKind::kNotFound) {
      spdlog::error("http: token lookup failed: {}", found.error().message);
      co_return AuthOutcome::kTemporary;
    }
    if (via == "cookie") co_return AuthOutcome::kNone;
    spdlog::warn("http: unknown or expired token from {}", ip);
    if (penalty) {
      std::chrono::milliseconds delay = penalty->Failure(ip, "");
      co_await server::Sleep(delay);
    }
    co_return AuthOutcome::kBad;
  }
  // A cookie carries a web session; a bearer token is an API token (never a
  // session, nor an app password, which is a password for Basic and IMAP).
  bool wrong_kind = via == "cookie" ? found->kind != "session" : found->kind != "api";
  if (wrong_kind) co_return via == "cookie" ? AuthOutcome::kNone : AuthOutcome::kBad;
  req.account = Principal{found->account_id, found->address, via};
  co_return AuthOutcome::kOk;
}

}  // namespace

std::string TokenHash(std::string_view token) { return HexEncode(Sha256(token)); }

Result<NewToken> CreateToken(store::Store& store, int64_t account_id, const std::string& kind,
                             const std::string& label, int64_t ttl_seconds) {
  if (sodium_init() < 0) return Err(ErrorKind::kInternal, "libsodium failed to initialise");
  std::string raw(32, '\0');
  randombytes_buf(raw.data(), raw.size());
  NewToken t;
  t.token = "hato_" + Base64Url(raw);
  int64_t expires = ttl_seconds > 0 ? std::time(nullptr) + ttl_seconds : 0;
  auto id =
      store.AddToken(account_id, TokenHash(t.token), kind, label, expires, kMaxTokensPerAccount);
  if (!id) return id.error();
  t.id = *id;
  return t;
}

awaitable<AuthOutcome> Authenticate(server::Services& svc, Request& req) {
  std::optional<std::string_view> authz = req.Get("authorization");
  if (!authz) {
    std::optional<std::string> cookie = req.Cookie(kSessionCookie);
    if (!cookie || cookie->empty()) co_return AuthOutcome::kNone;
    if (!SafeMethod(req.method) && !SameSite(req)) co_return AuthOutcome::kNone;
    // CSRF, besides SameSite=Strict and the Origin check: a state change with
    // the cookie must also carry the session's token (web/security.h), which
    // only our own pages learn (from POST /web/login or GET /web/session).
    if (!SafeMethod(req.method)) {
      std::string_view csrf = req.Get("x-hato-csrf").value_or("");
      if (!web::SecretEquals(csrf, web::CsrfTokenFor(*cookie))) co_return AuthOutcome::kNone;
    }
    AuthOutcome o = co_await ByToken(svc, req, std::move(*cookie), "cookie");
    co_return o;
  }
  std::string_view v = *authz;
  size_t sp = v.find(' ');
  std::string_view scheme = v.substr(0, sp);
  std::string_view cred =
      sp == std::string_view::npos ? std::string_view() : TrimSpaces(v.substr(sp));
  if (EqualsIgnoreCase(scheme, "bearer")) {
    AuthOutcome o = co_await ByToken(svc, req, std::string(cred), "bearer");
    co_return o;
  }
  if (!EqualsIgnoreCase(scheme, "basic")) co_return AuthOutcome::kBad;
  // RFC 7617: base64(user-id ":" password). A password in clear text needs TLS
  // unless the client is on this machine and that is allowed.
  auto cfg = svc.config->Get();
  if (!req.is_tls && !(req.loopback && cfg->auth.allow_plaintext_on_loopback))
    co_return AuthOutcome::kInsecure;
  auto decoded = Base64Decode(cred);
  if (!decoded) co_return AuthOutcome::kBad;
  size_t colon = decoded->find(':');
  if (colon == std::string::npos || colon == 0) co_return AuthOutcome::kBad;
  std::string user = decoded->substr(0, colon);
  std::string password = decoded->substr(colon + 1);
  std::string key = Cache().Key(AsciiLower(user), password);
  if (auto hit = Cache().Get(key)) {
    req.account = std::move(*hit);
    co_return AuthOutcome::kOk;
  }
  server::LoginResult r =
      co_await server::CheckLogin(svc, req.peer_ip, std::move(user), std::move(password), "http");
  if (r.outcome == server::LoginOutcome::kTemporary) co_return AuthOutcome::kTemporary;
  if (r.outcome != server::LoginOutcome::kOk) co_return AuthOutcome::kBad;
  Principal p{r.account_id, r.address, "basic"};
  Cache().Put(key, p);
  req.account = std::move(p);
  co_return AuthOutcome::kOk;
}

}  // namespace hato::http
