#include "outbound/mta_sts.h"

#include <spdlog/spdlog.h>

#include <ctime>

#include "io/net.h"

namespace hato::outbound {
namespace {

// The most domains whose policy (or absence of one) is remembered.
constexpr size_t kMaxCachedDomains = 10000;

}  // namespace

awaitable<Result<StsPolicy>> StsPolicies::Fetch(const std::string& domain) {
  // Section 3.3: https://mta-sts.DOMAIN/.well-known/mta-sts.txt, a
  // certificate valid for that name, no redirects.
  const std::string host = "mta-sts." + domain;
  Result<std::vector<std::string>> addrs = co_await resolver_->LookupAddresses(host);
  if (!addrs) co_return addrs.error();
  std::string why = "no address for " + host;
  for (const std::string& ip : *addrs) {
    std::optional<tcp::socket> socket = co_await io::Connect(ip, port_, kFetchTimeout);
    if (!socket) {
      why = "cannot connect to " + host + "[" + ip + "]";
      continue;
    }
    io::Connection conn(std::move(*socket), tls_);
    std::string sni = host;
    if (!co_await conn.StartTlsClient(std::move(sni), kFetchTimeout, /*verify=*/true)) {
      why = "TLS to " + host + " failed or its certificate does not verify";
      continue;
    }
    const std::string request = "GET /.well-known/mta-sts.txt HTTP/1.0\r\nHost: " + host +
                                "\r\nUser-Agent: hato\r\nConnection: close\r\n\r\n";
    if (!co_await conn.Write(request)) {
      why = "cannot send the request to " + host;
      continue;
    }
    while (conn.buffer().size() <= kMaxPolicyBytes + 16384) {
      io::ReadStatus st = co_await conn.ReadMore(kFetchTimeout);
      if (st != io::ReadStatus::kOk) break;
    }
    Result<std::string> body = ParseStsHttpResponse(conn.buffer());
    if (!body) co_return Err(body.error().kind, host + ": " + body.error().message);
    co_return ParseStsPolicy(*body);
  }
  co_return Err(ErrorKind::kTemporary, why);
}

awaitable<std::optional<StsPolicy>> StsPolicies::For(std::string domain) {
  int64_t now = std::time(nullptr);
  if (cache_.size() >= kMaxCachedDomains && !cache_.count(domain)) {
    // Forget what no longer protects anyone: expired policies and absences.
    for (auto it = cache_.begin(); it != cache_.end();) {
      it = (!it->second.policy || it->second.expires_at <= now) ? cache_.erase(it) : std::next(it);
    }
    if (cache_.size() >= kMaxCachedDomains) cache_.erase(cache_.begin());
  }
  // No reference into cache_ is held across a co_await: another delivery's
  // lookup may prune the map meanwhile.
  auto cached = [this, &domain, now]() -> std::optional<StsPolicy> {
    auto it = cache_.find(domain);
    if (it != cache_.end() && it->second.policy && it->second.expires_at > now) {
      return it->second.policy;
    }
    return std::nullopt;
  };
  {
    Entry& e = cache_[domain];
    if (e.checked_at != 0 && now - e.checked_at < kTxtRecheckSeconds) co_return cached();
    e.checked_at = now;
  }
  // Section 3.1: exactly one record that starts with "v=STSv1".
  Result<std::vector<std::string>> txt = co_await resolver_->LookupTxt("_mta-sts." + domain);
  std::optional<std::string> id;
  if (txt) {
    size_t records = 0;
    for (const std::string& t : *txt) {
      if (t.rfind("v=STSv1", 0) != 0) continue;
      ++records;
      id = ParseStsRecord(t);
    }
    if (records != 1) id.reset();
  }
  // Section 5.1: no record (or no DNS) keeps a cached, unexpired policy.
  if (!id) co_return cached();
  if (auto it = cache_.find(domain); it != cache_.end() && it->second.id == *id && cached()) {
    co_return cached();
  }
  Result<StsPolicy> fetched = co_await Fetch(domain);
  if (!fetched) {
    spdlog::warn("outbound: MTA-STS policy of {} (id {}) not fetched: {}", domain, *id,
                 fetched.error().message);
    co_return cached();
  }
  spdlog::info("outbound: MTA-STS policy of {} (id {}): mode {}, {} mx, max_age {}", domain, *id,
               fetched->mode == StsPolicy::Mode::kEnforce   ? "enforce"
               : fetched->mode == StsPolicy::Mode::kTesting ? "testing"
                                                            : "none",
               fetched->mx.size(), fetched->max_age);
  Entry& e = cache_[domain];
  e.checked_at = now;
  e.policy = std::move(*fetched);
  e.id = *id;
  e.expires_at = now + e.policy->max_age;
  co_return e.policy;
}

}  // namespace hato::outbound
