// Certificates by ACME (RFC 8555) with the HTTP-01 challenge (section 8.3) or
// TLS-ALPN-01 (RFC 8737), renewed before they expire and installed in the
// running TLS context; revocation (7.6) and account key rollover (7.3.5).
//
// Manager runs on one event loop: every check_interval it looks at the
// stored certificate (DATA/acme/certificate.pem) and, when it is missing,
// does not cover the configured domains or expires within renew_days,
// orders a new one:
//   directory -> nonce -> newAccount (the key in DATA/acme/account.key,
//   made on first use; the same key finds the same account again) ->
//   newOrder -> for each authorization: publish the key authorization for
//   GET /.well-known/acme-challenge/TOKEN (HttpChallenges, served by the one
//   HTTP server, app/http_routes.cc), tell the CA, poll -> finalize with a
//   CSR for a fresh P-256 key -> poll the order -> download the chain.
// The new key and chain are written together in one file (0600, atomic
// rename), so a crash never leaves a key beside a certificate it does not
// match, and handed to `install` (the SIGHUP certificate swap, app/tls.h).
// A failure is logged and tried again after kRetrySeconds (at most
// check_interval); the certificate in use stays.
//
// Everything goes over HTTPS whose certificate must verify (the system's
// CAs and [acme] ca_file; the one HTTPS client, http/client.h); requests are signed with ES256
// (acme/jose.h); a badNonce answer is retried with the fresh nonce (section 6.5). Thread-safety:
// HttpChallenges may be read from any thread; Manager is used from its executor only (Start/Stop
// from anywhere before/after).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "acme/jose.h"
#include "acme/messages.h"
#include "base/result.h"
#include "dns/resolver.h"
#include "http/client.h"
#include "io/asio.h"

namespace hato::acme {

// One HTTP exchange with the CA takes at most this long (connect, TLS, reply).
inline constexpr std::chrono::seconds kRequestTimeout{30};
// Polls of a pending authorization or a processing order, one a second
// (or as Retry-After says, at most kMaxPollWait), before giving up.
inline constexpr int kMaxPolls = 90;
inline constexpr std::chrono::seconds kMaxPollWait{10};
// badNonce answers retried per request (section 6.5).
inline constexpr int kMaxNonceRetries = 5;
// After a failed order, the next attempt (capped by check_interval).
inline constexpr int kRetrySeconds = 3600;

// Key authorizations being offered, by token (section 8.3).
class HttpChallenges {
 public:
  void Put(const std::string& token, const std::string& key_authorization) {
    std::lock_guard lock(mu_);
    tokens_[token] = key_authorization;
  }
  void Remove(const std::string& token) {
    std::lock_guard lock(mu_);
    tokens_.erase(token);
  }
  std::optional<std::string> Get(const std::string& token) const {
    std::lock_guard lock(mu_);
    auto it = tokens_.find(token);
    if (it == tokens_.end()) return std::nullopt;
    return it->second;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::string> tokens_;
};

// TLS-ALPN-01 (RFC 8737): the challenge certificate (PEM certificate and
// key) offered, by domain, to a TLS client that asks for the ALPN protocol
// "acme-tls/1" with that name (app/tls.h EnableTlsAlpnChallenges).
class TlsAlpnChallenges {
 public:
  void Put(const std::string& domain, ChallengeCertificate cert) {
    std::lock_guard lock(mu_);
    certs_[domain] = std::move(cert);
  }
  void Remove(const std::string& domain) {
    std::lock_guard lock(mu_);
    certs_.erase(domain);
  }
  std::optional<ChallengeCertificate> Get(const std::string& domain) const {
    std::lock_guard lock(mu_);
    auto it = certs_.find(domain);
    if (it == certs_.end()) return std::nullopt;
    return it->second;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, ChallengeCertificate> certs_;
};

struct Settings {
  // "http-01" (section 8.3, answered by [listen] http on port 80) or
  // "tls-alpn-01" (RFC 8737, answered by [listen] https on port 443).
  std::string challenge = "http-01";
  std::string directory;             // the CA's directory URL (https)
  std::string contact;               // an e-mail address for the account, or ""
  std::vector<std::string> domains;  // names on the certificate (A-labels)
  std::string ca_file;               // extra trusted CAs for the directory (PEM), or ""
  std::string resolver;              // "ip[@port]" to forward DNS to, or "" (system)
  int renew_days = 30;
  int check_interval_seconds = 12 * 3600;
  // External Account Binding (section 7.3.4), for CAs that want new
  // accounts tied to an account with them: the key identifier and the
  // base64url MAC key they gave; "" = none.
  std::string eab_kid;
  std::string eab_hmac_key;
};

// What an order returns: the certificate's private key and its chain (PEM).
struct Issued {
  std::string key_pem;
  std::string chain_pem;
};

// One ACME conversation with a CA.
class Client {
 public:
  Client(dns::Resolver* resolver, std::shared_ptr<asio::ssl::context> tls, EcKey account_key,
         HttpChallenges* challenges)
      : http_(resolver, std::move(tls)),
        account_(std::move(account_key)),
        challenges_(challenges) {}

  awaitable<Result<Issued>> Issue(const std::string& directory_url, const std::string& contact,
                                  const std::vector<std::string>& domains);
  // Answer tls-alpn-01 challenges through `alpn` instead of http-01.
  void UseTlsAlpn(TlsAlpnChallenges* alpn) { alpn_ = alpn; }
  // Section 7.3.4: bind a new account to the CA's external account `kid`.
  void UseExternalAccount(std::string kid, std::string hmac_key) {
    eab_kid_ = std::move(kid);
    eab_hmac_key_ = std::move(hmac_key);
  }
  // Section 7.6: revokes the first certificate of `chain_pem`, signed by
  // the account key (the account found with onlyReturnExisting); `reason`
  // is an RFC 5280 CRLReason (0 unspecified, 1 keyCompromise, 4 superseded,
  // 5 cessationOfOperation).
  awaitable<Result<void>> Revoke(const std::string& directory_url, const std::string& chain_pem,
                                 int reason);
  // Section 7.3.5: the account's key becomes `new_key` (this client then
  // signs with it).
  awaitable<Result<void>> RolloverKey(const std::string& directory_url, const EcKey& new_key);

 private:
  struct Reply {
    int status = 0;
    std::string location;
    std::string content_type;
    std::string body;
    int retry_after = 0;
  };
  awaitable<Result<Reply>> Exchange(const std::string& method, const std::string& url,
                                    const std::string& body);
  // A signed POST (payload "" = POST-as-GET); an error reply is an error
  // carrying the problem's detail.
  awaitable<Result<Reply>> Post(const std::string& url, const std::string& payload);
  awaitable<Result<void>> Authorize(const std::string& authz_url);
  // The directory, then the existing account of the key (kid_), section 7.3.1.
  awaitable<Result<void>> FindAccount(const std::string& directory_url);
  awaitable<void> Pause(int seconds);

  http::Client http_;  // verifies the CA's certificate (section 6.1)
  EcKey account_;
  HttpChallenges* challenges_;
  TlsAlpnChallenges* alpn_ = nullptr;
  Directory directory_;
  std::string kid_;
  std::string nonce_;
  std::string eab_kid_;
  std::string eab_hmac_key_;
};

class Manager : public std::enable_shared_from_this<Manager> {
 public:
  // `install(path)`: puts the key and chain in `path` into use (both are in
  // the one file); an error keeps the old certificate (and is logged).
  using Install = std::function<Status(const std::string& path)>;
  // `challenges` (served by the HTTP server) must outlive the manager.
  Manager(asio::any_io_executor executor, std::string data_dir, Settings settings,
          HttpChallenges* challenges, Install install);

  // Opens the resolver and the TLS client context, then checks at once and
  // every check_interval. kInvalid for a bad ca_file or directory URL.
  Status Start();
  void Stop();
  // With settings.challenge "tls-alpn-01": where the challenge certificates
  // go (served by the https listener). Call before Start.
  void SetTlsAlpnChallenges(TlsAlpnChallenges* alpn) { alpn_ = alpn; }

  // DATA/acme/certificate.pem: the key and chain in use.
  static std::string CertificatePath(const std::string& data_dir);
  // `hato cert revoke` and `hato cert rollover` (blocking, on their own
  // event loop; the server need not be stopped). Revoke: the certificate in
  // DATA/acme/certificate.pem is revoked and the file renamed
  // certificate.pem.revoked, so the next check orders a new one. Rollover: a
  // new account key replaces DATA/acme/account.key once the CA accepted it
  // (written first as account.key.new).
  static Status RevokeStored(const std::string& data_dir, const Settings& settings, int reason);
  static Status RolloverAccountKey(const std::string& data_dir, const Settings& settings);
  // Why the stored certificate must be replaced ("missing", "expires in N
  // days", ...), or nullopt when it is good for longer than renew_days.
  static std::optional<std::string> RenewalDue(const std::string& data_dir,
                                               const Settings& settings, int64_t now);

 private:
  awaitable<void> Loop();
  awaitable<Status> RenewOnce();

  asio::any_io_executor executor_;
  std::string data_dir_;
  Settings settings_;
  HttpChallenges* challenges_;
  TlsAlpnChallenges* alpn_ = nullptr;
  Install install_;
  std::unique_ptr<dns::Resolver> resolver_;
  std::shared_ptr<asio::ssl::context> tls_;
  asio::steady_timer timer_;
  bool stopped_ = false;
};

}  // namespace hato::acme
