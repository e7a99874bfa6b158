#include "acme/client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>

#include "base/strings.h"
#include "http/url.h"
#include "io/fs.h"

namespace hato::acme {
namespace {

constexpr std::string_view kBadNonce = "urn:ietf:params:acme:error:badNonce";

Error Temp(const std::string& what) { return Err(ErrorKind::kTemporary, "acme: " + what); }

std::string AccountKeyPath(const std::string& data_dir) { return data_dir + "/acme/account.key"; }

// The identifiers of a newOrder (section 7.4).
std::string OrderPayload(const std::vector<std::string>& domains) {
  std::string out = R"({"identifiers":[)";
  for (size_t i = 0; i < domains.size(); ++i) {
    if (i) out += ",";
    out += R"({"type":"dns","value":")" + domains[i] + R"("})";
  }
  return out + "]}";
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

awaitable<Result<Client::Reply>> Client::Exchange(const std::string& method, const std::string& url,
                                                  const std::string& body) {
  http::ClientRequest request;
  request.method = method;
  request.url = url;
  request.body = body;
  if (method == "POST") request.headers.push_back({"content-type", "application/jose+json"});
  http::ClientLimits limits;
  limits.timeout = kRequestTimeout;
  limits.max_body_bytes = kMaxChainBytes;  // the largest resource (section 7.4.2)
  // Section 6.1 and 7.1: every URL comes from the CA; no redirect is followed.
  auto r = co_await http_.Send(std::move(request), limits);
  if (!r) co_return Err(r.error().kind, "acme: " + r.error().message);
  Reply reply;
  reply.status = r->status;
  reply.body = std::move(r->body);
  if (auto v = r->Get("location")) reply.location = std::string(*v);
  if (auto v = r->Get("content-type")) reply.content_type = std::string(*v);
  if (auto v = r->Get("replay-nonce")) nonce_ = std::string(*v);
  if (auto v = r->Get("retry-after")) {
    if (auto n = ParseUint(TrimSpaces(*v))) {
      reply.retry_after = static_cast<int>(std::min<uint64_t>(*n, kMaxPollWait.count()));
    }
  }
  co_return reply;
}

awaitable<Result<Client::Reply>> Client::Post(const std::string& url, const std::string& payload) {
  for (int attempt = 0;; ++attempt) {
    if (nonce_.empty()) {
      auto r = co_await Exchange("GET", directory_.new_nonce, "");
      if (!r) co_return r.error();
      if (nonce_.empty()) co_return Temp("the CA gave no nonce");
    }
    std::string nonce = std::move(nonce_);
    nonce_.clear();
    auto body = SignedRequest(account_, kid_, nonce, url, payload);
    if (!body) co_return body.error();
    auto r = co_await Exchange("POST", url, *body);
    if (!r) co_return r.error();
    if (r->status < 400) co_return r;
    std::optional<Problem> problem = ParseProblem(r->body);
    if (problem && problem->type == kBadNonce && attempt < kMaxNonceRetries) continue;
    std::string what =
        problem ? problem->type + ": " + problem->detail : "HTTP " + std::to_string(r->status);
    co_return Err(r->status >= 500 ? ErrorKind::kTemporary : ErrorKind::kInvalid,
                  "acme: " + url + ": " + LogSafe(what));
  }
}

awaitable<void> Client::Pause(int seconds) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  t.expires_after(std::chrono::seconds(std::max(1, seconds)));
  boost::system::error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

awaitable<Result<void>> Client::Authorize(const std::string& authz_url) {
  auto r = co_await Post(authz_url, "");
  if (!r) co_return r.error();
  auto authz = ParseAuthorization(r->body);
  if (!authz) co_return authz.error();
  if (authz->status == "valid") co_return Ok();  // reused (section 7.1.4)
  if (authz->status != "pending") {
    co_return Err(ErrorKind::kInvalid,
                  "acme: the authorization for " + authz->identifier + " is " + authz->status);
  }
  const std::string type = alpn_ ? "tls-alpn-01" : "http-01";
  const Challenge* ch = authz->Find(type);
  if (ch == nullptr) {
    co_return Err(ErrorKind::kInvalid,
                  "acme: the CA offers no " + type + " challenge for " + authz->identifier);
  }
  if (!IsValidToken(ch->token)) co_return Err(ErrorKind::kInvalid, "acme: bad challenge token");
  const std::string token = ch->token;
  const std::string identifier = AsciiLower(authz->identifier);
  if (alpn_) {
    // RFC 8737 3: the certificate the https listener shows for
    // "acme-tls/1" with this name.
    auto cert = TlsAlpnCertificate(identifier, KeyAuthorization(token, account_.Thumbprint()));
    if (!cert) co_return cert.error();
    alpn_->Put(identifier, std::move(*cert));
  } else {
    challenges_->Put(token, KeyAuthorization(token, account_.Thumbprint()));
  }
  spdlog::info("acme: answering the {} challenge for {}", type, authz->identifier);
  // Section 7.5.1: an empty object says "ready, validate".
  auto started = co_await Post(ch->url, "{}");
  Result<void> outcome = Ok();
  if (!started) {
    outcome = started.error();
  } else {
    outcome = Temp("the authorization for " + authz->identifier + " is still pending");
    for (int i = 0; i < kMaxPolls; ++i) {
      co_await Pause(r->retry_after);
      r = co_await Post(authz_url, "");
      if (!r) {
        outcome = r.error();
        break;
      }
      auto now = ParseAuthorization(r->body);
      if (!now) {
        outcome = now.error();
        break;
      }
      if (now->status == "valid") {
        outcome = Ok();
        break;
      }
      if (now->status != "pending") {
        const Challenge* failed = now->Find(type);
        outcome = Err(ErrorKind::kInvalid,
                      "acme: the CA refused the " + type + " challenge for " + now->identifier +
                          (failed && !failed->error.empty() ? ": " + LogSafe(failed->error) : ""));
        break;
      }
    }
  }
  if (alpn_) {
    alpn_->Remove(identifier);
  } else {
    challenges_->Remove(token);
  }
  co_return outcome;
}

awaitable<Result<Issued>> Client::Issue(const std::string& directory_url,
                                        const std::string& contact,
                                        const std::vector<std::string>& domains) {
  auto dir = co_await Exchange("GET", directory_url, "");
  if (!dir) co_return dir.error();
  if (dir->status != 200) {
    co_return Temp("the directory " + directory_url + " answered " + std::to_string(dir->status));
  }
  auto parsed = ParseDirectory(dir->body);
  if (!parsed) co_return parsed.error();
  directory_ = std::move(*parsed);

  // Section 7.3: the account of this key (created, or found again).
  std::string account = R"({"termsOfServiceAgreed":true)";
  if (!contact.empty()) {
    std::string mailto = contact.rfind("mailto:", 0) == 0 ? contact : "mailto:" + contact;
    if (mailto.find_first_of("\"\\") != std::string::npos) {
      co_return Err(ErrorKind::kInvalid, "acme: bad contact address");
    }
    account += R"(,"contact":[")" + mailto + R"("])";
  }
  if (!eab_kid_.empty()) {
    // Section 7.3.4: the account key, MACed with the CA's key for eab_kid_.
    auto eab = ExternalAccountBinding(account_, eab_kid_, eab_hmac_key_, directory_.new_account);
    if (!eab) co_return eab.error();
    account += R"(,"externalAccountBinding":)" + *eab;
  }
  account += "}";
  kid_.clear();
  auto acct = co_await Post(directory_.new_account, account);
  if (!acct) co_return acct.error();
  if (acct->location.empty()) co_return Temp("the CA gave no account URL");
  kid_ = acct->location;

  // Section 7.4: the order, its authorizations, then finalize.
  auto created = co_await Post(directory_.new_order, OrderPayload(domains));
  if (!created) co_return created.error();
  const std::string order_url = created->location;
  auto order = ParseOrder(created->body);
  if (!order) co_return order.error();
  if (order_url.empty()) co_return Temp("the CA gave no order URL");
  for (const std::string& authz : order->authorizations) {
    auto ok = co_await Authorize(authz);
    if (!ok) co_return ok.error();
  }
  auto key = EcKey::Generate();
  if (!key) co_return key.error();
  auto csr = MakeCsr(*key, domains);
  if (!csr) co_return csr.error();
  // The order becomes "ready" once every authorization is valid; the CA may
  // take a moment to notice.
  for (int i = 0; i < kMaxPolls && order->status == "pending"; ++i) {
    co_await Pause(1);
    auto r = co_await Post(order_url, "");
    if (!r) co_return r.error();
    order = ParseOrder(r->body);
    if (!order) co_return order.error();
  }
  if (order->status != "ready" && order->status != "valid") {
    co_return Err(ErrorKind::kInvalid, "acme: the order is " + order->status +
                                           (order->error.empty() ? "" : ": " + order->error));
  }
  if (order->status == "ready") {
    auto fin = co_await Post(order->finalize, R"({"csr":")" + Base64Url(*csr) + R"("})");
    if (!fin) co_return fin.error();
    order = ParseOrder(fin->body);
    if (!order) co_return order.error();
    int wait = fin->retry_after;
    for (int i = 0; i < kMaxPolls && order->status == "processing"; ++i) {
      co_await Pause(wait);
      auto r = co_await Post(order_url, "");
      if (!r) co_return r.error();
      wait = r->retry_after;
      order = ParseOrder(r->body);
      if (!order) co_return order.error();
    }
  }
  if (order->status != "valid" || order->certificate.empty()) {
    co_return Err(ErrorKind::kInvalid,
                  "acme: the order ended " + order->status +
                      (order->error.empty() ? "" : ": " + LogSafe(order->error)));
  }
  // Section 7.4.2: the chain, application/pem-certificate-chain.
  auto chain = co_await Post(order->certificate, "");
  if (!chain) co_return chain.error();
  auto info = InspectCertificate(chain->body, domains);
  if (!info) co_return info.error();
  if (!info->covers_domains) {
    co_return Err(ErrorKind::kInvalid,
                  "acme: the issued certificate does not name " + Join(domains));
  }
  co_return Issued{key->ToPem(), std::move(chain->body)};
}

awaitable<Result<void>> Client::FindAccount(const std::string& directory_url) {
  auto dir = co_await Exchange("GET", directory_url, "");
  if (!dir) co_return dir.error();
  if (dir->status != 200) {
    co_return Temp("the directory " + directory_url + " answered " + std::to_string(dir->status));
  }
  auto parsed = ParseDirectory(dir->body);
  if (!parsed) co_return parsed.error();
  directory_ = std::move(*parsed);
  kid_.clear();
  auto acct = co_await Post(directory_.new_account, R"({"onlyReturnExisting":true})");
  if (!acct) co_return acct.error();
  if (acct->location.empty()) co_return Temp("the CA gave no account URL");
  kid_ = acct->location;
  co_return Ok();
}

awaitable<Result<void>> Client::Revoke(const std::string& directory_url,
                                       const std::string& chain_pem, int reason) {
  auto payload = RevocationPayload(chain_pem, reason);
  if (!payload) co_return payload.error();
  auto found = co_await FindAccount(directory_url);
  if (!found) co_return found.error();
  if (directory_.revoke_cert.empty()) {
    co_return Err(ErrorKind::kInvalid, "acme: the CA offers no revokeCert");
  }
  auto r = co_await Post(directory_.revoke_cert, *payload);
  if (!r) co_return r.error();
  co_return Ok();
}

awaitable<Result<void>> Client::RolloverKey(const std::string& directory_url,
                                            const EcKey& new_key) {
  auto found = co_await FindAccount(directory_url);
  if (!found) co_return found.error();
  if (directory_.key_change.empty()) {
    co_return Err(ErrorKind::kInvalid, "acme: the CA offers no keyChange");
  }
  auto inner = KeyChangeInner(account_, new_key, kid_, directory_.key_change);
  if (!inner) co_return inner.error();
  auto r = co_await Post(directory_.key_change, *inner);
  if (!r) co_return r.error();
  account_ = new_key;
  co_return Ok();
}

namespace {

// One CLI operation (revoke, rollover) gives up after this.
constexpr std::chrono::seconds kCliTimeout{300};

// Runs one Client operation to the end on an event loop of its own (the CLI).
Status RunClient(const Settings& settings, const EcKey& account,
                 std::function<awaitable<Result<void>>(Client&)> op) {
  asio::io_context io;
  dns::ResolverOptions ro;
  ro.forward_to = settings.resolver;
  auto resolver = dns::NewUnboundResolver(io.get_executor(), ro);
  if (!resolver) return resolver.error();
  auto tls = http::VerifyingTlsContext(settings.ca_file, "acme.ca_file");
  if (!tls) return tls.error();
  HttpChallenges none;
  Client client(resolver->get(), *tls, account, &none);
  Result<void> out = Temp("no answer within " + std::to_string(kCliTimeout.count()) + " s");
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        out = co_await op(client);
        io.stop();  // the resolver's descriptor watch would keep run() going
      },
      asio::detached);
  io.run_for(kCliTimeout);
  return out;
}

Result<EcKey> LoadAccountKey(const std::string& data_dir) {
  auto pem = io::FileSystem::Default()->ReadRegularFile(AccountKeyPath(data_dir));
  if (!pem) return Err(ErrorKind::kNotFound, "no ACME account key in " + AccountKeyPath(data_dir));
  auto k = EcKey::FromPem(*pem);
  if (!k) return Err(k.error().kind, AccountKeyPath(data_dir) + ": " + k.error().message);
  return k;
}

}  // namespace

Status Manager::RevokeStored(const std::string& data_dir, const Settings& settings, int reason) {
  io::FileSystem* fs = io::FileSystem::Default();
  auto account = LoadAccountKey(data_dir);
  if (!account) return account.error();
  const std::string path = CertificatePath(data_dir);
  auto pem = fs->ReadRegularFile(path);
  if (!pem) return Err(ErrorKind::kNotFound, "no ACME certificate in " + path);
  std::string chain = *pem;
  std::string directory = settings.directory;
  Status st =
      RunClient(settings, *account, [&](Client& c) { return c.Revoke(directory, chain, reason); });
  if (!st) return st;
  return fs->Rename(path, path + ".revoked");
}

Status Manager::RolloverAccountKey(const std::string& data_dir, const Settings& settings) {
  io::FileSystem* fs = io::FileSystem::Default();
  auto account = LoadAccountKey(data_dir);
  if (!account) return account.error();
  auto fresh = EcKey::Generate();
  if (!fresh) return fresh.error();
  // Kept beside the old key until the CA has switched: a crash between the
  // two leaves both keys on disk, never only the one the CA does not know.
  const std::string next = AccountKeyPath(data_dir) + ".new";
  if (auto st = fs->WriteFileAtomic(next, fresh->ToPem()); !st) return st;
  EcKey new_key = *fresh;
  std::string directory = settings.directory;
  Status st =
      RunClient(settings, *account, [&](Client& c) { return c.RolloverKey(directory, new_key); });
  if (!st) {
    (void)fs->Remove(next);
    return st;
  }
  return fs->Rename(next, AccountKeyPath(data_dir));
}

Manager::Manager(asio::any_io_executor executor, std::string data_dir, Settings settings,
                 HttpChallenges* challenges, Install install)
    : executor_(executor),
      data_dir_(std::move(data_dir)),
      settings_(std::move(settings)),
      challenges_(challenges),
      install_(std::move(install)),
      timer_(executor) {}

std::string Manager::CertificatePath(const std::string& data_dir) {
  return data_dir + "/acme/certificate.pem";
}

std::optional<std::string> Manager::RenewalDue(const std::string& data_dir,
                                               const Settings& settings, int64_t now) {
  auto pem = io::FileSystem::Default()->ReadRegularFile(CertificatePath(data_dir));
  if (!pem) return "no certificate yet";
  auto info = InspectCertificate(*pem, settings.domains);
  if (!info) return "the stored certificate is unreadable";
  if (!info->covers_domains)
    return "the stored certificate does not name " + Join(settings.domains);
  int64_t left = info->not_after - now;
  if (left <= int64_t{settings.renew_days} * 86400) {
    return left <= 0 ? std::string("the certificate has expired")
                     : "the certificate expires in " + std::to_string(left / 86400) + " day(s)";
  }
  return std::nullopt;
}

Status Manager::Start() {
  if (!http::ParseHttpsUrl(settings_.directory)) {
    return Err(ErrorKind::kInvalid, "acme.directory must be an https:// URL");
  }
  dns::ResolverOptions ro;
  ro.forward_to = settings_.resolver;
  auto resolver = dns::NewUnboundResolver(executor_, ro);
  if (!resolver) return resolver.error();
  resolver_ = std::move(*resolver);
  auto tls = http::VerifyingTlsContext(settings_.ca_file, "acme.ca_file");
  if (!tls) return tls.error();
  tls_ = std::move(*tls);
  asio::co_spawn(
      executor_, [self = shared_from_this()] { return self->Loop(); }, asio::detached);
  return Ok();
}

void Manager::Stop() {
  asio::post(executor_, [self = shared_from_this()] {
    self->stopped_ = true;
    self->timer_.cancel();
  });
}

awaitable<Status> Manager::RenewOnce() {
  io::FileSystem* fs = io::FileSystem::Default();
  if (auto st = fs->CreateDirs(data_dir_ + "/acme"); !st) co_return st;
  // The account key: made once, kept (0600) so the account stays the same.
  std::optional<EcKey> account;
  if (auto pem = fs->ReadRegularFile(AccountKeyPath(data_dir_))) {
    auto k = EcKey::FromPem(*pem);
    if (!k) co_return Err(k.error().kind, AccountKeyPath(data_dir_) + ": " + k.error().message);
    account = std::move(*k);
  } else {
    auto k = EcKey::Generate();
    if (!k) co_return k.error();
    if (auto st = fs->WriteFileAtomic(AccountKeyPath(data_dir_), k->ToPem()); !st) co_return st;
    spdlog::info("acme: made an account key in {}", AccountKeyPath(data_dir_));
    account = std::move(*k);
  }
  Client client(resolver_.get(), tls_, std::move(*account), challenges_);
  if (settings_.challenge == "tls-alpn-01") {
    if (!alpn_) co_return Err(ErrorKind::kInvalid, "acme: tls-alpn-01 without an https listener");
    client.UseTlsAlpn(alpn_);
  }
  if (!settings_.eab_kid.empty())
    client.UseExternalAccount(settings_.eab_kid, settings_.eab_hmac_key);
  auto issued = co_await client.Issue(settings_.directory, settings_.contact, settings_.domains);
  if (!issued) co_return issued.error();
  const std::string path = CertificatePath(data_dir_);
  // One file, key then chain, replaced atomically (0600: it holds the key).
  if (auto st = fs->WriteFileAtomic(path, issued->key_pem + issued->chain_pem); !st) co_return st;
  auto info = InspectCertificate(issued->chain_pem, settings_.domains);
  spdlog::info("acme: new certificate for {} in {}, valid until {}", Join(settings_.domains), path,
               info ? info->not_after : 0);
  co_return install_(path);
}

awaitable<void> Manager::Loop() {
  while (!stopped_) {
    int wait = settings_.check_interval_seconds;
    if (auto why = RenewalDue(data_dir_, settings_, std::time(nullptr))) {
      spdlog::info("acme: {}; ordering a certificate for {} from {}", *why, Join(settings_.domains),
                   settings_.directory);
      Status st = co_await RenewOnce();
      if (!st) {
        spdlog::error("acme: no new certificate: {} (next try in {}s)", st.error().message,
                      std::min(wait, kRetrySeconds));
        wait = std::min(wait, kRetrySeconds);
      }
    }
    if (stopped_) break;
    timer_.expires_after(std::chrono::seconds(wait));
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace hato::acme
