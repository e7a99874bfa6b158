#include "outbound/mta_sts.h"

#include <spdlog/spdlog.h>

#include <ctime>

namespace hato::outbound {
namespace {

// The most domains whose policy (or absence of one) is remembered.
constexpr size_t kMaxCachedDomains = 10000;

}  // namespace

awaitable<Result<StsPolicy>> StsPolicies::Fetch(const std::string& domain) {
  // Section 3.3: https://mta-sts.DOMAIN/.well-known/mta-sts.txt, a
  // certificate valid for that name, no redirects (the client follows none).
  const std::string host = "mta-sts." + domain;
  http::ClientRequest request;
  request.url = "https://" + host;
  if (port_ != 443) {
    request.url += ':';
    request.url += std::to_string(port_);
  }
  request.url += "/.well-known/mta-sts.txt";
  http::ClientLimits limits;
  limits.timeout = kFetchTimeout;
  limits.max_body_bytes = kMaxPolicyBytes;
  auto r = co_await http_.Send(std::move(request), limits);
  if (!r) {
    co_return Err(r.error().kind, r.error().kind == ErrorKind::kTooLarge
                                      ? host + ": MTA-STS policy too large"
                                      : r.error().message);
  }
  Result<std::string> body = StsPolicyBody(r->head, std::move(r->body));
  if (!body) co_return Err(body.error().kind, host + ": " + body.error().message);
  co_return ParseStsPolicy(*body);
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
