#include "outbound/queue.h"

#include <spdlog/spdlog.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <random>

#include "base/strings.h"
#include "dns/message.h"
#include "dns/secure_stub.h"
#include "io/await.h"
#include "io/net.h"
#include "lists/fanout.h"
#include "lists/proto.h"
#include "mime/header.h"
#include "mime/message.h"
#include "outbound/dane.h"
#include "outbound/dsn.h"
#include "outbound/relay_auth.h"
#include "outbound/srs.h"
#include "reports/format.h"
#include "sieve/deliver.h"
#include "smtp/address.h"
#include "smtp/client.h"
#include "smtp/command.h"

namespace hato::outbound {

using namespace asio::experimental::awaitable_operators;  // NOLINT: operator|| for timeouts
using store::DsnPending;
using store::RecipientOutcome;
using store::RecipientState;

namespace {

// The RFC 8460 4.3 result of one session for TLS-RPT: "success" once TLS
// was established; nullopt when the session ended before TLS was tried (no
// connection, no greeting: not a TLS matter) or went in the clear to a
// domain without a policy (opportunistic TLS, RFC 7435). The client does
// not tell an untrusted certificate from a name mismatch or an expired one:
// all are "validation-failure".
std::optional<std::string> TlsResultType(const smtp::ClientResult& r, bool has_policy) {
  if (r.after_tls_failed) return "tlsa-invalid";  // DANE: no TLSA record matched
  if (r.tls) return "success";
  std::string text = r.failure.Text();
  for (const auto& l : r.failure.lines) text += " " + l;
  if (text.find("TLS handshake") != std::string::npos) return "validation-failure";
  if (text.find("does not offer STARTTLS") != std::string::npos ||
      text.find("STARTTLS was refused") != std::string::npos) {
    return "starttls-not-supported";
  }
  if (r.transaction && has_policy) return "starttls-not-supported";
  return std::nullopt;
}

// What DANE (RFC 7672 2.2) says about one MX host; the values index
// server::Counters::kDaneOutcomes.
enum DaneState : size_t {
  kDaneMatch,         // (after the session) a usable TLSA record matched
  kDaneMismatch,      // (after the session) usable records, none matched, or no TLS
  kDaneUnusable,      // validated TLSA records, none usable: TLS required, unauthenticated
  kDaneNoTlsa,        // validated: no TLSA records; the usual policy applies
  kDaneInsecure,      // MX, address or TLSA answer not validated: DANE does not apply
  kDaneLookupFailed,  // the TLSA lookup failed: the host is not used (deferred)
  kDaneRecords,       // (before the session) validated usable TLSA records
};

struct DaneHost {
  DaneState state = kDaneInsecure;
  std::vector<TlsaRecord> records;
  // The TLSA base domain whose records these are: the MX host, or the end of
  // its CNAME chain (RFC 7672 2.2.2); both are DANE-TA reference names (3.2.2).
  std::string base;
  std::string error;  // kDaneLookupFailed: why
};

// RFC 6698 2.2: "usage selector matching-type hex" for logs and TLS-RPT.
std::string TlsaText(const TlsaRecord& r) {
  return std::to_string(r.usage) + " " + std::to_string(r.selector) + " " +
         std::to_string(r.matching_type) + " " + HexEncode(r.data);
}

// The DANE state of each MX host (RFC 7672 2.2): TLSA records count only
// when the MX answer (2.2.1), the host's address answer (2.2.2) and the
// TLSA answer itself are all DNSSEC-validated (the resolver's AD bit). An
// error of the MX lookup is returned (the delivery is deferred, as for any
// MX lookup failure).
awaitable<Result<std::map<std::string, DaneHost>>> LookupDane(dns::SecureStub& stub,
                                                              std::string domain,
                                                              std::vector<std::string> hosts,
                                                              int port) {
  std::map<std::string, DaneHost> out;
  Result<dns::SecureAnswer> mx = co_await stub.Query(domain, dns::kTypeMx);
  if (!mx) co_return mx.error();
  for (const auto& host : hosts) {
    if (out.count(host)) continue;
    DaneHost& d = out[host];
    if (!mx->secure) continue;
    // RFC 7672 2.2.2: both address answers (an attacker could forge the
    // one left unchecked) and the CNAME chain they went through must be
    // validated; the chain is part of the secure answer.
    Result<dns::SecureAnswer> addr = co_await stub.Query(host, dns::kTypeA);
    if (!addr || !addr->secure) continue;
    Result<dns::SecureAnswer> addr6 = co_await stub.Query(host, dns::kTypeAaaa);
    if (!addr6 || !addr6->secure) continue;
    // RFC 7672 2.2.2: TLSA records at the CNAME-expanded name first, then,
    // when it has none, at the MX host name itself.
    std::vector<std::string> bases;
    if (!addr->canonical.empty() && addr->canonical != host) bases.push_back(addr->canonical);
    bases.push_back(host);
    bool insecure = false;
    for (const std::string& base : bases) {
      std::string name = "_" + std::to_string(port) + "._tcp." + base;
      Result<dns::SecureAnswer> tlsa = co_await stub.Query(name, dns::kTypeTlsa);
      if (!tlsa) {
        // A validating resolver answers SERVFAIL for a "bogus" TLSA RRset:
        // the host may be under attack, so it is not tried (RFC 7672 2.2).
        d.state = kDaneLookupFailed;
        d.error = tlsa.error().message;
        break;
      }
      if (!tlsa->secure) {
        insecure = true;
        break;
      }
      for (const auto& rd : tlsa->rdata) {
        if (auto r = ParseTlsa(rd)) d.records.push_back(std::move(*r));
      }
      if (!d.records.empty()) {
        d.base = base;
        break;
      }
    }
    if (d.state == kDaneLookupFailed || insecure) continue;
    if (d.records.empty()) {
      d.state = kDaneNoTlsa;
      continue;
    }
    // VerifyDane with no certificate tells usable records from unusable ones.
    d.state =
        VerifyDane(d.records, {}, {}, 0) == DaneVerdict::kUnusable ? kDaneUnusable : kDaneRecords;
  }
  co_return out;
}

std::string TlsSessionLine(const std::string& domain, const std::optional<StsPolicy>& sts,
                           const DaneHost* dane, const std::string& mx, const std::string& ip,
                           const std::string& type) {
  reports::TlsSession s;
  s.policy_domain = domain;
  if (dane) {
    // RFC 8460 4.3: a DANE policy is the TLSA RRset of the MX host.
    s.policy_type = "tlsa";
    for (const auto& r : dane->records) s.policy_strings.push_back(TlsaText(r));
  } else if (sts) {
    s.policy_type = "sts";
    std::string_view mode = sts->mode == StsPolicy::Mode::kEnforce   ? "enforce"
                            : sts->mode == StsPolicy::Mode::kTesting ? "testing"
                                                                     : "none";
    s.policy_strings = {"version: STSv1", "mode: " + std::string(mode)};
    for (const auto& m : sts->mx) s.policy_strings.push_back("mx: " + m);
    s.policy_strings.push_back("max_age: " + std::to_string(sts->max_age));
    s.mx_patterns = sts->mx;
  }
  s.mx_host = mx;
  s.receiving_ip = ip;
  s.result = type;
  return reports::ToJsonLine(s);
}

// Named limits of the runner.
constexpr size_t kScanLimit = 2000;    // due recipients read per scan
constexpr size_t kDsnScanLimit = 200;  // owed DSNs read per scan
constexpr size_t kMaxMxHosts = 5;      // MX hosts tried per attempt
constexpr size_t kMaxAddresses = 10;   // addresses tried per attempt
// Members of a list post (VERP: a transaction each) of one domain sent over
// one connection by one job (Queue::Scan): the in-flight mark, outcome
// commit, copies, DNS lookups and session of a job are shared by them. A run
// of the fan-out's queue order (lists/fanout.h); a job also ends its session
// at outbound.max_messages_per_connection (the rest go on a new one), and
// takes no more members than the destination's rate limits allow.
constexpr size_t kVerpBatch = static_cast<size_t>(lists::kFanOutRun);
constexpr auto kPollInterval = std::chrono::seconds(1);
// How long the due recipients of one queue read are started from memory
// before the queue is read again (Queue::Scan).
constexpr auto kBacklogMaxAge = std::chrono::seconds(1);
constexpr size_t kMaxCachedDomains = 10000;  // Queue::local_domains_
constexpr auto kStoreTimeout = std::chrono::seconds(60);

int64_t Now() { return std::time(nullptr); }

uint64_t Random() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

std::string RandomHex() {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(Random()));
  return buf;
}

// Exponential backoff with jitter: base * 2^attempts, capped, then a uniform
// draw in [delay/2, delay] so that retries of many messages spread out.
int64_t Backoff(const config::OutboundConfig& c, int attempts) {
  int64_t delay = c.retry_base_seconds;
  for (int i = 0; i < attempts && delay < c.retry_max_seconds; ++i) delay *= 2;
  delay = std::min<int64_t>(delay, c.retry_max_seconds);
  int64_t half = delay / 2;
  return half + static_cast<int64_t>(Random() % static_cast<uint64_t>(delay - half + 1));
}

bool WantsNotify(unsigned notify, unsigned bit, bool default_on) {
  if (notify & smtp::kNotifyNever) return false;
  if (notify == 0) return default_on;
  return (notify & bit) != 0;
}

struct Target {
  std::string host;  // name (SNI, logs)
  std::string ip;
};

}  // namespace

// One delivery attempt: the recipients of one message at one destination.
struct Queue::Job {
  store::QueuedMessage msg;  // with only this job's recipients
  std::string domain;        // recipient domain
  std::string destination;   // domain, or the relay host
};

std::shared_ptr<const std::string> Queue::BodyCache::Get(const BodyKey& key) {
  std::lock_guard lock(mu_);
  for (const auto& e : entries_) {
    if (e.first == key) return e.second;
  }
  return nullptr;
}

void Queue::BodyCache::Put(const BodyKey& key, std::shared_ptr<const std::string> body) {
  if (body->size() > kBodyCacheBytes) return;
  std::lock_guard lock(mu_);
  for (const auto& e : entries_) {
    if (e.first == key) return;
  }
  entries_.emplace_back(key, std::move(body));
  size_t bytes = 0;
  for (const auto& e : entries_) bytes += e.second->size();
  // The oldest go first.
  while (entries_.size() > kBodyCacheEntries || bytes > kBodyCacheBytes) {
    bytes -= entries_.front().second->size();
    entries_.erase(entries_.begin());
  }
}

Queue::Queue(server::Services services, asio::any_io_executor executor)
    : svc_(std::move(services)), ex_(std::move(executor)), wake_(ex_) {}

Queue::~Queue() = default;

dns::SecureStub* Queue::DaneStub(const config::OutboundConfig& oc) {
  if (secure_stub_ && secure_stub_resolver_ == oc.resolver) return secure_stub_.get();
  secure_stub_.reset();
  auto server = dns::LoopbackResolver(oc.resolver);
  if (!server) {
    spdlog::error("outbound: DANE needs outbound.resolver on loopback: {}", server.error().message);
    return nullptr;
  }
  auto cfg = svc_.config->Get();
  secure_stub_ = std::make_unique<dns::SecureStub>(
      ex_, *server, std::chrono::seconds(cfg->msgauth.dns_timeout_seconds));
  secure_stub_resolver_ = oc.resolver;
  return secure_stub_.get();
}

std::shared_ptr<asio::ssl::context> Queue::DaneTlsContext(
    std::shared_ptr<std::vector<std::string>> chain) {
  // The handshake accepts any certificate (the callback says yes) and keeps
  // the chain the server sent, its own first, for VerifyDane after it.
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  ctx->set_verify_mode(asio::ssl::verify_peer);
  ctx->set_verify_callback([chain](bool, asio::ssl::verify_context& v) {
    STACK_OF(X509)* sent = X509_STORE_CTX_get0_untrusted(v.native_handle());
    chain->clear();
    for (int i = 0; sent && i < sk_X509_num(sent); ++i) {
      unsigned char* der = nullptr;
      int n = i2d_X509(sk_X509_value(sent, i), &der);
      if (n <= 0) break;
      chain->emplace_back(reinterpret_cast<char*>(der), static_cast<size_t>(n));
      OPENSSL_free(der);
    }
    return true;
  });
  return ctx;
}

Status Queue::Start() {
  auto cfg = svc_.config->Get();
  dns::ResolverOptions ro;
  ro.forward_to = cfg->outbound.resolver;
  auto resolver = dns::NewUnboundResolver(ex_, ro);
  if (!resolver) return resolver.error();
  resolver_ = std::move(*resolver);
  // Opportunistic TLS (RFC 7435): encrypt when offered, without verifying the
  // certificate. Destinations whose TLS policy (tls_policy.h; DANE or MTA-STS
  // would decide there too) says "verify" use the second context.
  client_tls_ = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  client_tls_->set_verify_mode(asio::ssl::verify_none);
  client_verify_tls_ = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  boost::system::error_code ec;
  client_verify_tls_->set_default_verify_paths(ec);
  if (!cfg->outbound.tls_ca_file.empty()) {
    client_verify_tls_->load_verify_file(cfg->outbound.tls_ca_file, ec);
    if (ec) {
      return Err(ErrorKind::kInvalid,
                 "outbound.tls_ca_file '" + cfg->outbound.tls_ca_file + "': " + ec.message());
    }
  }
  if (!cfg->outbound.relay_auth_file.empty()) {
    // A missing or world-readable credentials file stops the start with its
    // reason rather than deferring every remote message later.
    auto creds = LoadRelayCredentials(cfg->outbound.relay_auth_file);
    if (!creds)
      return Err(creds.error().kind, "outbound.relay_auth_file: " + creds.error().message);
    spdlog::info("outbound: relaying through {} as {} ({} TLS, verified)", cfg->outbound.relay_host,
                 creds->username, cfg->outbound.relay_tls);
  }
  if (cfg->outbound.dane && !DaneStub(cfg->outbound)) {
    // The AD bit is trusted only from a resolver on this host (RFC 7672 2.2).
    return Err(ErrorKind::kInvalid,
               "outbound.dane needs outbound.resolver = a validating resolver on loopback "
               "(\"127.0.0.1\" or \"127.0.0.1@port\"), not '" +
                   cfg->outbound.resolver + "'");
  }
  tls_policy_ = std::make_unique<ConfigTlsPolicy>(*svc_.config);
  sts_ = std::make_unique<StsPolicies>(resolver_.get(), client_verify_tls_,
                                       cfg->outbound.mta_sts_port);
  // List-post recipients in flight when the server stopped: failed, not resent.
  auto unknown = svc_.store->ResolveInFlight();
  if (!unknown) return unknown.error();
  if (*unknown > 0) {
    spdlog::warn(
        "outbound: {} list deliveries were in flight at the last stop: reported failed "
        "(outcome unknown), not sent again",
        *unknown);
  }
  asio::co_spawn(ex_, Run(), asio::detached);
  return Ok();
}

void Queue::Kick() {
  asio::post(ex_, [this] {
    kicked_ = true;
    reread_ = true;  // new mail: not in the backlog
    wake_.cancel();
  });
}

void Queue::Stop() {
  asio::post(ex_, [this] {
    stopping_ = true;
    wake_.cancel();
  });
}

awaitable<void> Queue::Run() {
  while (!stopping_) {
    kicked_ = false;
    co_await Scan();
    if (stopping_) break;
    // Owed DSNs are looked for when an outcome owed one, and once per poll
    // interval (those left by another process or an earlier run), not after
    // every delivery of a broadcast.
    auto steady = std::chrono::steady_clock::now();
    if (dsn_owed_ || steady - dsn_read_ >= kPollInterval) {
      dsn_owed_ = false;
      dsn_read_ = steady;
      co_await SendDsns();
    }
    ExpireIdle(false);
    if (kicked_) continue;
    wake_.expires_after(kPollInterval);
    boost::system::error_code ec;
    auto token = asio::redirect_error(asio::use_awaitable, ec);
    co_await wake_.async_wait(token);
  }
  ExpireIdle(true);
}

std::unique_ptr<smtp::ClientSession> Queue::TakeIdle(const std::string& key, size_t& loop) {
  auto it = idle_.find(key);
  if (it == idle_.end()) return nullptr;
  std::deque<IdleSession>& sessions = it->second;
  auto limit = std::chrono::seconds(svc_.config->Get()->outbound.connection_idle_seconds);
  auto now = std::chrono::steady_clock::now();
  std::unique_ptr<smtp::ClientSession> found;
  while (!sessions.empty() && !found) {
    IdleSession idle = std::move(sessions.back());
    sessions.pop_back();
    --idle_total_;
    // One the server closed meanwhile is dropped (its socket closes with it).
    if (idle.session->usable() && now - idle.since < limit) {
      found = std::move(idle.session);
      loop = idle.loop;
    }
  }
  if (sessions.empty()) idle_.erase(it);
  return found;
}

awaitable<void> Queue::KeepIdle(std::string key, std::unique_ptr<smtp::ClientSession> session,
                                size_t loop) {
  if (!session) co_return;
  auto cfg = svc_.config->Get();
  const auto& oc = cfg->outbound;
  std::deque<IdleSession>& sessions = idle_[key];
  if (!stopping_ && session->usable() && !session->pipelined() &&
      session->transactions() < oc.max_messages_per_connection &&
      idle_total_ < oc.max_idle_connections && sessions.size() < oc.max_idle_connections_per_host) {
    sessions.push_back(IdleSession{std::move(session), std::chrono::steady_clock::now(), loop});
    ++idle_total_;
    co_return;
  }
  if (sessions.empty()) idle_.erase(key);
  // The QUIT on the session's own loop, as all its I/O.
  std::shared_ptr<smtp::ClientSession> quitting = std::move(session);
  co_await asio::co_spawn(DeliveryLoop(loop), quitting->Quit(), asio::use_awaitable);
}

void Queue::ExpireIdle(bool all) {
  auto limit = std::chrono::seconds(svc_.config->Get()->outbound.connection_idle_seconds);
  auto now = std::chrono::steady_clock::now();
  for (auto it = idle_.begin(); it != idle_.end();) {
    std::deque<IdleSession>& sessions = it->second;
    while (!sessions.empty() && (all || now - sessions.front().since >= limit)) {
      std::shared_ptr<smtp::ClientSession> s = std::move(sessions.front().session);
      size_t loop = sessions.front().loop;
      sessions.pop_front();
      --idle_total_;
      asio::co_spawn(DeliveryLoop(loop), QuitSession(std::move(s)), asio::detached);
    }
    it = sessions.empty() ? idle_.erase(it) : std::next(it);
  }
}

awaitable<void> Queue::QuitSession(std::shared_ptr<smtp::ClientSession> session) {
  if (session->usable()) co_await session->Quit();
}

awaitable<void> Queue::Record(std::vector<RecipientOutcome> outcomes) {
  store::Store* store = svc_.store;
  auto all = std::make_shared<std::vector<RecipientOutcome>>(std::move(unrecorded_));
  unrecorded_.clear();
  all->insert(all->end(), outcomes.begin(), outcomes.end());
  if (all->empty()) co_return;
  auto record = [store, all](store::Done<void> done) {
    store->RecordOutcomes(*all, std::move(done));
  };
  std::chrono::milliseconds timeout = kStoreTimeout;
  Result<void> st = co_await io::AwaitCallback<void>(std::move(record), timeout);
  if (!st) {
    spdlog::error("outbound: cannot record {} delivery outcomes: {} (will retry)", all->size(),
                  st.error().message);
    unrecorded_ = std::move(*all);
    co_return;
  }
  for (const auto& o : *all) {
    if (o.dsn != DsnPending::kNone) dsn_owed_ = true;
    busy_.erase(o.recipient_id);
    released_[o.recipient_id] = scan_epoch_;
    if (svc_.counters) svc_.counters->CountOutbound(o.state, o.counts_attempt);
  }
  // JMAP push: an EmailSubmission's deliveryStatus may have changed.
  if (svc_.changes) svc_.changes->PublishRecords(0);
}

awaitable<void> Queue::Scan() {
  if (!unrecorded_.empty()) {
    std::vector<RecipientOutcome> none;
    co_await Record(std::move(none));
  }
  std::erase_if(recent_starts_, [](const auto& d) { return d.second.empty(); });
  std::erase_if(recent_bulk_starts_, [](const auto& d) { return d.second.empty(); });
  auto cfg = svc_.config->Get();
  store::Store* store = svc_.store;
  int64_t now = Now();
  // The due recipients are read from the store only when the backlog of the
  // last read may miss work: new mail was queued (Kick), the backlog is used
  // up, or it is older than kBacklogMaxAge (another node's or an admin's
  // changes, deferrals come due). Otherwise a finished delivery starts the
  // next one from memory: a broadcast reads each recipient's row once per
  // kScanLimit deliveries, not once per delivery.
  auto steady = std::chrono::steady_clock::now();
  if (reread_ || backlog_.empty() || steady - backlog_read_ >= kBacklogMaxAge) {
    reread_ = false;
    // Outcomes released before this read started are visible in its snapshot.
    uint64_t epoch = ++scan_epoch_;
    std::erase_if(released_, [epoch](const auto& r) { return r.second < epoch - 1; });
    auto list = [store, now] { return store->ListDueOutbound(now, kScanLimit); };
    Result<std::vector<store::QueuedMessage>> due =
        co_await io::Offload(*svc_.blocking, std::move(list));
    if (!due) {
      spdlog::error("outbound: cannot read the queue: {}", due.error().message);
      co_return;
    }
    backlog_.clear();
    for (auto& msg : *due) {
      Backlog b;
      b.recipients = std::move(msg.recipients);
      msg.recipients.clear();
      b.msg = std::move(msg);
      b.gone.assign(b.recipients.size(), 0);
      b.left = b.recipients.size();
      backlog_.push_back(std::move(b));
    }
    backlog_epoch_ = epoch;
    backlog_read_ = steady;
  }
  uint64_t epoch = backlog_epoch_;
  std::vector<RecipientOutcome> skipped;  // recipients of dead destinations
  std::vector<std::shared_ptr<Job>> starting;
  for (auto& b : backlog_) {
    const store::QueuedMessage& msg = b.msg;
    // One job per destination of the message. A VERP message (a list post)
    // needs a transaction per recipient, each with its own envelope sender:
    // a job there is up to kVerpBatch members of one domain, sent one
    // transaction after the other over one connection. Recipients in flight
    // or finished since the read leave the backlog.
    if (msg.bulk && (active_bulk_ >= cfg->lists.max_bulk_connections ||
                     active_total_ >= cfg->outbound.max_connections)) {
      continue;  // no slot for a broadcast's job: not worth a walk over it
    }
    std::vector<std::pair<std::string, std::vector<size_t>>> groups;
    std::map<std::string, size_t> index;
    bool limited = false;  // a connection limit stopped this message
    for (size_t i = b.first; i < b.recipients.size() && !limited; ++i) {
      if (b.gone[i]) continue;
      const store::QueuedRecipient& r = b.recipients[i];
      auto released = released_.find(r.id);
      bool stale = released != released_.end() && released->second >= epoch;
      if (busy_.count(r.id) || stale) {
        b.gone[i] = 1;
        --b.left;
        continue;
      }
      auto it = index.find(r.domain);
      if (it == index.end()) {
        it = index.emplace(r.domain, groups.size()).first;
        groups.emplace_back(r.domain, std::vector<size_t>());
      }
      std::vector<size_t>& group = groups[it->second].second;
      group.push_back(i);
      if (!msg.verp || group.size() < kVerpBatch) continue;
      // A full VERP batch starts now, so that a pass over a large post stops
      // at the first limit instead of grouping all of it.
      limited = !StartGroup(*cfg, b, groups[it->second].first, group, now, starting, skipped);
      group.clear();
    }
    for (auto& g : groups) {
      if (limited) break;
      if (!g.second.empty() && !StartGroup(*cfg, b, g.first, g.second, now, starting, skipped))
        break;
    }
    while (b.first < b.gone.size() && b.gone[b.first]) ++b.first;
    // Person-to-person mail left waiting for a slot is read again on the next
    // pass (as before the backlog): it must not wait for kBacklogMaxAge.
    if (!msg.bulk && b.left > 0) reread_ = true;
  }
  std::erase_if(backlog_, [](const Backlog& b) { return b.left == 0; });
  // List-post recipients are marked "in flight" durably before any byte is
  // sent: after a crash they are reported failed (outcome unknown) instead
  // of being sent twice (Store::ResolveInFlight at start). Only those still
  // queued are marked and sent: a post cancelled (its list removed) or held
  // since the backlog was read is not.
  std::vector<int64_t> inflight;
  for (const auto& job : starting) {
    if (!job->msg.bulk) continue;
    for (const auto& r : job->msg.recipients) inflight.push_back(r.id);
  }
  std::set<int64_t> marked;
  bool mark_failed = false;
  if (!inflight.empty()) {
    auto mark = [store, ids = std::move(inflight)](store::Done<std::vector<int64_t>> done) mutable {
      store->MarkInFlight(std::move(ids), std::move(done));
    };
    std::chrono::milliseconds timeout = kStoreTimeout;
    Result<std::vector<int64_t>> st =
        co_await io::AwaitCallback<std::vector<int64_t>>(std::move(mark), timeout);
    if (!st) {
      spdlog::error("outbound: cannot mark list deliveries in flight: {} (later)",
                    st.error().message);
      mark_failed = true;
    } else {
      marked.insert(st->begin(), st->end());
    }
  }
  for (auto& job : starting) {
    if (job->msg.bulk) {
      std::erase_if(job->msg.recipients, [&](const store::QueuedRecipient& r) {
        if (!mark_failed && marked.count(r.id)) return false;
        busy_.erase(r.id);
        return true;
      });
      if (job->msg.recipients.empty()) {
        Finish(*job);
        continue;
      }
    }
    asio::co_spawn(ex_, Deliver(job), asio::detached);
  }
  if (!skipped.empty()) co_await Record(std::move(skipped));
}

bool Queue::StartGroup(const config::Config& cfg, Backlog& b, const std::string& domain,
                       const std::vector<size_t>& rcpts, int64_t now,
                       std::vector<std::shared_ptr<Job>>& starting,
                       std::vector<RecipientOutcome>& skipped) {
  const store::QueuedMessage& msg = b.msg;
  auto take = [&b](size_t i) {
    b.gone[i] = 1;
    --b.left;
    return std::move(b.recipients[i]);
  };
  std::string dest = cfg.outbound.relay_host.empty() ? domain : cfg.outbound.relay_host;
  auto dead = dead_until_.find(dest);
  if (dead != dead_until_.end() && dead->second > now) {
    for (size_t i : rcpts) {
      store::QueuedRecipient r = take(i);
      RecipientOutcome o;
      o.recipient_id = r.id;
      o.retry_requests = r.retry_requests;  // keeps a retry asked meanwhile
      o.state = RecipientState::kQueued;
      o.counts_attempt = false;
      o.diagnostic = r.last_error.empty() ? "destination not reachable" : r.last_error;
      o.next_attempt_at = dead->second + static_cast<int64_t>(Random() % 5);
      if (now - msg.created_at >= cfg.outbound.max_lifetime_seconds) {
        o.state = RecipientState::kFailed;
        o.diagnostic = "4.4.7 message expired; last error: " + o.diagnostic;
        if (!msg.sender.empty() && !msg.verp && WantsNotify(r.notify, smtp::kNotifyFailure, true)) {
          o.dsn = DsnPending::kFailure;
        }
      }
      busy_.insert(r.id);
      skipped.push_back(std::move(o));
    }
    return true;
  }
  if (active_total_ >= cfg.outbound.max_connections) return false;
  size_t per_dest = cfg.outbound.max_connections_per_destination;
  if (msg.bulk) {
    // A broadcast leaves room for person-to-person mail: connections in
    // all (lists.max_bulk_connections) and one per destination.
    if (active_bulk_ >= cfg.lists.max_bulk_connections) return false;
    if (per_dest > 1) --per_dest;
  }
  if (active_[dest] >= per_dest) return true;
  // Rate limit: at most N deliveries started per destination in 60 s.
  size_t per_minute = cfg.outbound.max_messages_per_minute_per_destination;
  std::deque<int64_t>& starts = recent_starts_[dest];
  while (!starts.empty() && starts.front() <= now - 60) starts.pop_front();
  if (per_minute != 0 && starts.size() >= per_minute) return true;
  // A VERP job sends a transaction per recipient: each counts against the
  // rates, and the job takes no more recipients than they allow now.
  size_t count = msg.verp ? rcpts.size() : 1;
  if (per_minute != 0) count = std::min(count, per_minute - starts.size());
  if (msg.bulk) {
    // Per-destination rates of list posts (lists.destination_rates).
    auto rate = cfg.lists.destination_rates.find(domain);
    std::deque<int64_t>& bulk_starts = recent_bulk_starts_[dest];
    while (!bulk_starts.empty() && bulk_starts.front() <= now - 60) bulk_starts.pop_front();
    if (rate != cfg.lists.destination_rates.end()) {
      if (bulk_starts.size() >= rate->second) return true;
      count = std::min(count, rate->second - bulk_starts.size());
    }
    bulk_starts.insert(bulk_starts.end(), count, now);
  }
  starts.insert(starts.end(), count, now);
  auto job = std::make_shared<Job>();
  job->msg = msg;  // the backlog keeps the recipients apart: this copies none
  if (msg.verp) {
    for (size_t k = 0; k < count; ++k) job->msg.recipients.push_back(take(rcpts[k]));
  } else {
    for (size_t i : rcpts) job->msg.recipients.push_back(take(i));
  }
  job->domain = domain;
  job->destination = dest;
  for (const auto& r : job->msg.recipients) busy_.insert(r.id);
  ++active_[dest];
  ++active_total_;
  if (msg.bulk) ++active_bulk_;
  starting.push_back(std::move(job));
  return true;
}

void Queue::Finish(const Job& job) {
  if (--active_[job.destination] == 0) active_.erase(job.destination);
  --active_total_;
  if (job.msg.bulk) --active_bulk_;
  kicked_ = true;  // a slot is free: look again
  wake_.cancel();
}

awaitable<void> Queue::Deliver(std::shared_ptr<Job> job) {
  auto cfg = svc_.config->Get();
  const auto& oc = cfg->outbound;
  const store::QueuedMessage& msg = job->msg;
  store::Store* store = svc_.store;
  int64_t id = msg.id;
  // A list post (VERP): each member's own copy (List-Unsubscribe with its
  // token, signed per copy: lists::MemberCopy) in its own transaction.
  const server::MessageHooks* hooks = svc_.hooks;
  std::vector<std::string> members;
  if (msg.verp) {
    for (const auto& r : msg.recipients) members.push_back(AsciiLower(r.address));
  }
  // A list post's stored body is read once for all its members (bulk_bodies_).
  BodyCache* bodies = msg.bulk ? &bulk_bodies_ : nullptr;
  BodyKey body_key{id, msg.created_at, msg.size};
  struct Read {
    // The message for every recipient, or each member's copy (VERP);
    // unless `failure` (the stored body unreadable, a signing error).
    std::vector<std::string> contents;
    std::optional<Error> failure;
    Result<bool> local = false;
  };
  // Whether the domain is local, asked once per kBacklogMaxAge (not per
  // member of a broadcast).
  auto steady = std::chrono::steady_clock::now();
  std::optional<bool> known_local;
  if (auto it = local_domains_.find(job->domain);
      it != local_domains_.end() && steady - it->second.second < kBacklogMaxAge) {
    known_local = it->second.first;
  }
  auto read = [store, id, hooks, members, bodies, body_key, known_local, sender = msg.sender,
               domain = job->domain] {
    Read r;
    std::shared_ptr<const std::string> body = bodies ? bodies->Get(body_key) : nullptr;
    if (!body) {
      Result<std::string> c = store->ReadQueuedContent(id);
      if (!c) {
        r.failure = c.error();
        return r;
      }
      body = std::make_shared<const std::string>(std::move(*c));
      if (bodies) bodies->Put(body_key, body);
    }
    if (members.empty()) {
      r.contents.push_back(*body);
    } else {
      for (const auto& member : members) {
        if (!hooks || !hooks->list_copy) {
          r.contents.push_back(*body);
          continue;
        }
        Result<std::string> copy = hooks->list_copy(sender, member, *body);
        if (!copy) {
          r.failure = copy.error();
          return r;
        }
        r.contents.push_back(std::move(*copy));
      }
    }
    // Recipients in a local domain (a list post to a member with an account,
    // a Sieve redirect to another local user) are delivered here, not over SMTP.
    r.local = known_local ? Result<bool>(*known_local) : store->IsLocalDomain(domain);
    return r;
  };
  Read got = co_await io::Offload(*svc_.blocking, std::move(read));
  if (!known_local && got.local) {
    if (local_domains_.size() >= kMaxCachedDomains) local_domains_.clear();
    local_domains_[job->domain] = {*got.local, steady};
  }
  // A copy that could not be made (the stored body unreadable, a signing
  // error) leaves its recipients deferred with the reason.
  std::string read_failure;
  if (got.failure) read_failure = "local: cannot read the queued message: " + got.failure->message;
  if (read_failure.empty() && got.local && *got.local) {
    co_await DeliverLocally(job, std::move(got.contents));
    co_return;
  }

  // Where to: the relay host, or the domain's MX hosts (RFC 5321 section 5.1).
  std::vector<Target> targets;
  std::string failure;    // why no server took the message (temporary)
  std::string permanent;  // a permanent reason for every recipient
  int port = oc.smtp_port;
  std::string ascii_domain;
  if (!read_failure.empty()) {
    failure = read_failure;
  } else if (!oc.relay_host.empty()) {
    size_t colon = oc.relay_host.rfind(':');
    std::string host = oc.relay_host.substr(0, colon);
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    port = std::atoi(oc.relay_host.c_str() + colon + 1);
    boost::system::error_code ec;
    asio::ip::make_address(host, ec);
    if (!ec) {
      targets.push_back(Target{host, host});
    } else {
      Result<std::vector<std::string>> addrs = co_await resolver_->LookupAddresses(host);
      if (!addrs) {
        failure = "relay host " + host + ": " + addrs.error().message;
      } else {
        for (auto& a : *addrs) targets.push_back(Target{host, a});
      }
    }
  } else {
    auto ascii = dns::ToAsciiDomain(job->domain);
    if (!ascii) {
      permanent = "5.1.2 " + ascii.error().message;
    } else {
      ascii_domain = *ascii;
      Result<std::vector<dns::MxRecord>> mx = co_await resolver_->LookupMx(ascii_domain);
      if (!mx && mx.error().kind == ErrorKind::kNotFound) {
        permanent = "5.1.2 Host or domain name not found: " + ascii_domain;
      } else if (!mx) {
        failure = "4.4.3 DNS lookup of " + ascii_domain + " failed: " + mx.error().message;
      } else if (dns::IsNullMx(*mx)) {
        permanent = "556 5.1.10 " + ascii_domain + " accepts no mail (null MX, RFC 7505)";
      } else {
        std::vector<dns::MxRecord> hosts = dns::SortMx(std::move(*mx), Random());
        bool implicit = hosts.empty();
        if (implicit) hosts.push_back(dns::MxRecord{0, ascii_domain});  // implicit MX
        if (hosts.size() > kMaxMxHosts) hosts.resize(kMaxMxHosts);
        bool all_missing = true;
        for (const auto& h : hosts) {
          if (targets.size() >= kMaxAddresses) break;
          std::string name = h.host;
          Result<std::vector<std::string>> addrs = co_await resolver_->LookupAddresses(name);
          if (!addrs) {
            if (addrs.error().kind != ErrorKind::kNotFound) all_missing = false;
            failure = "4.4.3 DNS lookup of " + h.host + " failed: " + addrs.error().message;
            continue;
          }
          all_missing = all_missing && addrs->empty();
          for (auto& a : *addrs) {
            if (targets.size() < kMaxAddresses) targets.push_back(Target{h.host, a});
          }
        }
        if (targets.empty() && implicit && all_missing) {
          permanent = "5.1.2 Host or domain name not found: " + ascii_domain;
        } else if (targets.empty() && failure.empty()) {
          failure = "4.4.4 no address for the mail servers of " + ascii_domain;
        }
      }
    }
  }

  // DANE (RFC 7672): with DNSSEC-validated MX, address and TLSA answers, an
  // MX host's TLSA records decide its TLS (below, per target).
  std::map<std::string, DaneHost> dane;
  bool dane_applies = false;  // some MX host has usable TLSA records
  if (oc.dane && oc.relay_host.empty() && !ascii_domain.empty() && !targets.empty() &&
      permanent.empty()) {
    if (dns::SecureStub* stub = DaneStub(oc)) {
      std::vector<std::string> hosts;
      for (const auto& t : targets) hosts.push_back(t.host);
      auto looked = co_await LookupDane(*stub, ascii_domain, std::move(hosts), port);
      if (!looked) {
        failure = "4.4.3 DNSSEC lookup of " + ascii_domain + " failed: " + looked.error().message;
        targets.clear();
      } else {
        dane = std::move(*looked);
        for (const auto& [host, d] : dane) dane_applies = dane_applies || d.state == kDaneRecords;
      }
    } else {
      failure = "4.7.5 DANE is on but the resolver is unusable for it (see the log)";
      targets.clear();
    }
  }

  // MTA-STS (RFC 8461 section 4): a domain with an "enforce" policy gets
  // mail only at the MX hosts the policy names, over TLS with a verified
  // certificate; "testing" only logs what enforcement would have refused.
  // Not when DANE applies: RFC 8461 section 2 lets no MTA-STS validation
  // override DANE's (as Postfix, DANE then decides for the whole domain).
  bool sts_enforce = false;
  std::optional<StsPolicy> sts;  // the policy that applied, for TLS-RPT
  if (oc.mta_sts && oc.relay_host.empty() && !ascii_domain.empty() && !targets.empty() &&
      !dane_applies) {
    sts = co_await sts_->For(ascii_domain);
    if (sts && sts->mode != StsPolicy::Mode::kNone) {
      std::vector<Target> allowed;
      for (const auto& t : targets) {
        if (StsMxMatches(*sts, t.host)) allowed.push_back(t);
      }
      bool enforce = sts->mode == StsPolicy::Mode::kEnforce;
      if (allowed.size() != targets.size()) {
        spdlog::warn(
            "outbound: id={} MTA-STS policy of {} ({}) does not name {} of its {} MX targets",
            msg.id, ascii_domain, enforce ? "enforce" : "testing", targets.size() - allowed.size(),
            targets.size());
      }
      if (enforce) {
        sts_enforce = true;
        targets = std::move(allowed);
        if (targets.empty()) {
          failure = "4.7.5 MTA-STS: no MX host of " + ascii_domain + " matches its policy";
        }
      }
    }
  }

  // The transactions: one for every recipient, or one per member of a list
  // post (VERP: the envelope sender names the list and the member, so a
  // bounce says who it was for: LIST-bounces+member=domain@DOMAIN), sent one
  // after the other. Envelope: an IDNA domain goes out as its A-label (RFC
  // 5890); a UTF-8 local part needs a server with SMTPUTF8 (the client checks).
  struct Transaction {
    smtp::ClientEnvelope env;
    const std::string* content = nullptr;
    std::vector<size_t> rcpts;  // indexes into msg.recipients, as in env.recipients
    smtp::ClientResult result;  // of its last attempt
    std::string remote;         // the server that answered it
    bool done = false;          // a server answered it (result.transaction)
  };
  std::vector<Transaction> txns;
  if (read_failure.empty()) {
    txns.resize(msg.verp ? msg.recipients.size() : 1);
    for (size_t i = 0; i < msg.recipients.size(); ++i) {
      const auto& r = msg.recipients[i];
      Transaction& tx = txns[msg.verp ? i : 0];
      tx.env.sender = msg.verp ? lists::VerpAddress(msg.sender, r.address) : msg.sender;
      tx.content = &got.contents[msg.verp ? i : 0];
      std::string addr = r.address;
      if (!ascii_domain.empty()) addr = addr.substr(0, addr.rfind('@') + 1) + ascii_domain;
      tx.env.recipients.push_back(smtp::ClientRecipient{addr, r.notify, r.orcpt});
      tx.rcpts.push_back(i);
    }
    for (auto& tx : txns) {
      tx.env.envid = msg.envid;
      tx.env.ret_hdrs = msg.ret_hdrs;
      tx.env.smtputf8 = msg.smtputf8;
      tx.env.eight_bit = msg.eight_bit;
    }
  }
  smtp::ClientOptions copts;
  copts.helo = cfg->hostname;
  TlsLevel tls = sts_enforce ? TlsLevel::kVerify : tls_policy_->For(job->domain);
  copts.tls = tls == TlsLevel::kNone     ? nullptr
              : tls == TlsLevel::kVerify ? client_verify_tls_
                                         : client_tls_;
  copts.require_tls = tls == TlsLevel::kEncrypt || tls == TlsLevel::kVerify;
  copts.verify_tls = tls == TlsLevel::kVerify;
  if (!oc.relay_host.empty()) {
    // An authenticated smarthost (RFC 4954, RFC 6409): the credentials only
    // go to a relay whose certificate verifies, over STARTTLS or implicit
    // TLS (RFC 8314); a bad credentials file defers the mail with its reason.
    copts.implicit_tls = oc.relay_tls == "implicit";
    if (copts.implicit_tls && !copts.tls) copts.tls = client_tls_;
    if (!oc.relay_auth_file.empty() && failure.empty() && permanent.empty()) {
      std::string path = oc.relay_auth_file;
      auto load = [path] { return LoadRelayCredentials(path); };
      Result<RelayCredentials> creds = co_await io::Offload(*svc_.blocking, std::move(load));
      if (!creds) {
        failure = "4.7.0 " + creds.error().message;
        targets.clear();
      } else {
        copts.auth_user = std::move(creds->username);
        copts.auth_password = std::move(creds->password);
        copts.tls = client_verify_tls_;
        copts.require_tls = true;
        copts.verify_tls = true;
      }
    }
  }
  copts.command_timeout = std::chrono::seconds(oc.command_timeout_seconds);
  copts.data_timeout = std::chrono::seconds(2 * oc.command_timeout_seconds);

  std::string remote;
  // TLS-RPT (RFC 8460 4.4): each session with an MX of the recipient domain
  // (not a relay) that got as far as TLS, or failed for want of it.
  bool report_tls = tls_reports_ && oc.relay_host.empty() && !ascii_domain.empty() &&
                    cfg->reports.tls_rpt && tls != TlsLevel::kNone;
  std::vector<std::string> tls_sessions;
  if (permanent.empty()) {
    for (const auto& t : targets) {
      std::string ip = t.ip;
      smtp::ClientOptions host_opts = copts;
      auto dane_it = dane.find(t.host);
      const DaneHost* dh = dane_it == dane.end() ? nullptr : &dane_it->second;
      if (dh && dh->state == kDaneLookupFailed) {
        failure = "4.7.5 DANE: TLSA lookup for " + t.host + " failed: " + dh->error;
        spdlog::warn("outbound: id={} {}[{}] not tried: {}", msg.id, t.host, t.ip, failure);
        if (svc_.counters) svc_.counters->dane[kDaneLookupFailed].fetch_add(1);
        if (report_tls) {
          tls_sessions.push_back(
              TlsSessionLine(ascii_domain, std::nullopt, dh, t.host, t.ip, "dnssec-invalid"));
        }
        continue;
      }
      // The certificates the server sent, caught during the handshake and
      // matched against the TLSA records right after it (RFC 7672 3).
      auto chain = std::make_shared<std::vector<std::string>>();
      if (dh && dh->state == kDaneRecords) {
        host_opts.tls = DaneTlsContext(chain);
        host_opts.require_tls = true;
        host_opts.verify_tls = false;  // DANE replaces PKIX (RFC 7672 3.1)
        std::vector<TlsaRecord> records = dh->records;
        std::string host = t.host;
        std::string base = dh->base;
        host_opts.after_tls = [chain, records, host, base]() -> std::string {
          // RFC 7672 3.2.2: the MX host name and the TLSA base domain.
          std::vector<std::string> names{host};
          if (!base.empty() && base != host) names.push_back(base);
          if (VerifyDane(records, *chain, names, Now()) == DaneVerdict::kMatch) return "";
          return "4.7.5 DANE: the certificate of " + host + " matches none of its TLSA records";
        };
      } else if (dh && dh->state == kDaneUnusable) {
        // RFC 7672 2.2 / 3.1: only unusable records: TLS is still mandatory.
        if (!host_opts.tls) host_opts.tls = client_tls_;
        host_opts.require_tls = true;
      }
      host_opts.server = t.host;
      // An idle session to this host with the same settings carries the
      // message if it still can (RFC 5321 section 4.1.4); one the server
      // closed meanwhile ("stale": nothing was taken) makes way for a new one.
      std::string key = t.host + "|" + t.ip + "|" + std::to_string(port) + "|" + copts.helo + "|" +
                        (host_opts.tls == client_verify_tls_ ? "verify"
                         : host_opts.tls                     ? "tls"
                                                             : "plain") +
                        (host_opts.require_tls ? "|require" : "") +
                        (host_opts.verify_tls ? "|pkix" : "") +
                        (host_opts.implicit_tls ? "|implicit" : "") + "|" + host_opts.auth_user;
      if (dh && (dh->state == kDaneRecords || dh->state == kDaneUnusable)) {
        key += "|dane";
        for (const auto& r : dh->records) key += ":" + TlsaText(r);
      }
      remote = t.host + "[" + t.ip + "]";
      // DANE outcomes and TLS-RPT sessions (RFC 8460 4.4) count delivery
      // attempts, as when each had its own connection: a reused session
      // reports the TLS it was opened with, for this attempt's domain.
      bool dane_policy = dh && (dh->state == kDaneRecords || dh->state == kDaneUnusable);
      auto account = [&](const smtp::ClientResult& r) {
        if (dh) {
          DaneState outcome = dh->state;
          if (outcome == kDaneRecords) {
            outcome = r.tls && !r.after_tls_failed ? kDaneMatch : kDaneMismatch;
          }
          if (svc_.counters) svc_.counters->dane[outcome].fetch_add(1);
          if (outcome != kDaneInsecure) {
            spdlog::info("outbound: id={} DANE {} for {}: {}", msg.id,
                         server::Counters::kDaneOutcomes[outcome], remote,
                         outcome == kDaneMatch || outcome == kDaneNoTlsa ? "ok"
                         : outcome == kDaneUnusable ? "TLS required, not authenticated"
                                                    : "not delivered");
          }
        }
        if (report_tls) {
          std::optional<std::string> type = TlsResultType(r, sts.has_value() || dane_policy);
          if (type) {
            tls_sessions.push_back(
                TlsSessionLine(ascii_domain, sts, dane_policy ? dh : nullptr, t.host, t.ip, *type));
          }
        }
      };
      auto said = [&](const smtp::ClientResult& r) {
        if (r.after_tls_failed) return r.failure.lines[0] + " (" + remote + ")";
        return remote + " said: " +
               (r.failure.code
                    ? r.failure.Text()
                    : (r.failure.lines.empty() ? std::string("no answer") : r.failure.lines[0]));
      };
      // The transactions not answered yet go to this host, one after the
      // other, over as few sessions as outbound.max_messages_per_connection
      // allows; a session that fails sends the rest to the next host.
      size_t next = 0;
      bool host_failed = false;
      while (!host_failed) {
        while (next < txns.size() && txns[next].done) ++next;
        if (next == txns.size()) break;
        size_t loop = 0;
        std::unique_ptr<smtp::ClientSession> session = TakeIdle(key, loop);
        uint64_t mails = 0;  // MAIL commands sent on this session here
        const bool reused = session != nullptr;
        const size_t first = next;
        if (!reused) loop = next_loop_++ % std::max<size_t>(delivery_loops_.size(), 1);
        bool unreachable = false;  // no connection
        // The session's I/O (connect, greeting, TLS, the transactions) runs
        // on its delivery loop while this coroutine waits on the runner's:
        // what it touches here is this job's alone until it is back.
        auto converse = [&]() -> awaitable<void> {
          if (!session) {
            std::chrono::seconds ct(oc.connect_timeout_seconds);
            std::optional<tcp::socket> socket = co_await io::Connect(ip, port, ct);
            if (!socket) {
              failure =
                  "4.4.1 cannot connect to " + t.host + "[" + t.ip + "]:" + std::to_string(port);
              unreachable = true;
              co_return;
            }
            session = std::make_unique<smtp::ClientSession>(std::move(*socket), host_opts);
            if (event_loops_) event_loops_->OutboundSessionStarted(loop);
            if (svc_.counters) svc_.counters->outbound_sessions.fetch_add(1);
            smtp::ClientResult opened;
            if (!co_await session->Open(opened)) {
              account(opened);
              failure = said(opened);
              txns[next].result = std::move(opened);
              host_failed = true;
            }
          }
          while (!host_failed && next < txns.size() && session->usable()) {
            Transaction& tx = txns[next];
            size_t before = session->transactions();
            // The following transaction's commands ride with this one's body
            // when it will go on this session too (PIPELINING, RFC 2920 3.1).
            size_t after = next + 1;
            while (after < txns.size() && txns[after].done) ++after;
            const Transaction* follow =
                after < txns.size() && before + 1 < oc.max_messages_per_connection ? &txns[after]
                                                                                   : nullptr;
            smtp::ClientResult r =
                co_await session->Send(tx.env, *tx.content, follow ? &follow->env : nullptr,
                                       follow ? follow->content->size() : 0);
            mails += session->transactions() - before;
            // A reused session the server had closed: nothing was taken; this
            // transaction goes on another session.
            if (r.stale) break;
            account(r);
            tx.result = std::move(r);
            if (!tx.result.transaction) {
              failure = said(tx.result);
              host_failed = true;
              break;
            }
            tx.done = true;
            tx.remote = remote;
            while (next < txns.size() && txns[next].done) ++next;
            if (session->transactions() >= oc.max_messages_per_connection) break;
          }
        };
        co_await asio::co_spawn(DeliveryLoop(loop), converse(), asio::use_awaitable);
        if (unreachable) break;
        // A new session that carried nothing (closed at once): no loop.
        if (!reused && next == first && !host_failed) {
          failure = remote + ": the session closed before a transaction";
          host_failed = true;
        }
        if (svc_.counters) svc_.counters->outbound_transactions.fetch_add(mails);
        co_await KeepIdle(key, std::move(session), loop);
      }
      if (next == txns.size()) break;
    }
  }
  bool answered = false;  // a server answered some transaction
  for (const auto& tx : txns) answered = answered || tx.done;

  int64_t now = Now();
  if (!tls_sessions.empty()) {
    // The appends are file writes: off the event loop.
    reports::Recorder* recorder = tls_reports_;
    asio::post(*svc_.blocking, [recorder, now, lines = std::move(tls_sessions)] {
      for (const auto& line : lines) recorder->Add(reports::Kind::kTls, now, line);
    });
  }
  if (read_failure.empty() && permanent.empty() && !answered) {
    // Nobody answered: the destination is dead until its retry time. (A
    // local failure, such as a message deleted meanwhile, says nothing about it.)
    int attempts = msg.recipients.empty() ? 0 : msg.recipients[0].attempts;
    dead_until_[job->destination] = now + Backoff(oc, attempts);
  } else {
    dead_until_.erase(job->destination);
  }
  // Each recipient's reply in its transaction (k-th of tx.rcpts).
  std::vector<std::pair<const Transaction*, size_t>> replies(msg.recipients.size(), {nullptr, 0});
  for (const auto& tx : txns) {
    for (size_t k = 0; k < tx.rcpts.size(); ++k) replies[tx.rcpts[k]] = {&tx, k};
  }
  std::vector<RecipientOutcome> outcomes;
  for (size_t i = 0; i < msg.recipients.size(); ++i) {
    const auto& r = msg.recipients[i];
    const Transaction* tx = replies[i].first;
    const size_t k = replies[i].second;
    const bool answered_tx = tx && tx->done && k < tx->result.rcpt.size();
    RecipientOutcome o;
    o.recipient_id = r.id;
    o.retry_requests = r.retry_requests;  // keeps a retry asked meanwhile
    // Never report on a report (null sender); a list post's bounces are its report.
    bool can_dsn = !msg.sender.empty() && !msg.verp;
    if (!permanent.empty()) {
      o.state = RecipientState::kFailed;
      o.diagnostic = permanent;
    } else if (answered_tx) {
      const smtp::ClientResult& result = tx->result;
      const smtp::Reply& reply = result.rcpt[k];
      o.diagnostic = reply.Text();
      if (reply.positive()) {
        o.state = RecipientState::kDelivered;
        if (can_dsn && !result.remote_dsn && WantsNotify(r.notify, smtp::kNotifySuccess, false)) {
          o.dsn = DsnPending::kRelayed;
        }
        spdlog::info("outbound: id={} to=<{}> relay={} tls={} delivered: {}", msg.id, r.address,
                     tx->remote, result.tls, o.diagnostic);
      } else if (reply.permanent()) {
        o.state = RecipientState::kFailed;
      } else {
        o.state = RecipientState::kQueued;
      }
    } else {
      o.state = RecipientState::kQueued;
      o.diagnostic = failure.empty() ? "no server answered" : failure;
    }
    if (o.state == RecipientState::kQueued) {
      o.next_attempt_at = now + Backoff(oc, r.attempts);
      if (now - msg.created_at >= oc.max_lifetime_seconds) {
        o.state = RecipientState::kFailed;
        o.diagnostic = "4.4.7 message expired; last error: " + o.diagnostic;
      } else if (oc.delay_warning_seconds > 0 && !r.delay_warned && can_dsn &&
                 now - msg.created_at >= oc.delay_warning_seconds &&
                 WantsNotify(r.notify, smtp::kNotifyDelay, true)) {
        o.dsn = DsnPending::kDelay;
      }
      spdlog::info("outbound: id={} to=<{}> deferred: {}", msg.id, r.address, o.diagnostic);
    }
    if (o.state == RecipientState::kFailed) {
      if (can_dsn && WantsNotify(r.notify, smtp::kNotifyFailure, true))
        o.dsn = DsnPending::kFailure;
      spdlog::info("outbound: id={} to=<{}> failed: {}", msg.id, r.address, o.diagnostic);
    }
    if (answered_tx && !tx->remote.empty()) o.diagnostic += " (" + tx->remote + ")";
    outcomes.push_back(std::move(o));
  }
  // Group commit: the outcomes of deliveries that end while a commit is
  // running go to the store together in the next one; each job's slot is
  // freed only once its outcomes are durable (FlushOutcomes).
  for (auto& o : outcomes) pending_outcomes_.push_back(std::move(o));
  pending_jobs_.push_back(std::move(job));
  if (!flushing_) {
    flushing_ = true;
    asio::co_spawn(ex_, FlushOutcomes(), asio::detached);
  }
}

awaitable<void> Queue::FlushOutcomes() {
  while (!pending_jobs_.empty()) {
    std::vector<RecipientOutcome> outcomes = std::move(pending_outcomes_);
    pending_outcomes_.clear();
    std::vector<std::shared_ptr<Job>> jobs = std::move(pending_jobs_);
    pending_jobs_.clear();
    co_await Record(std::move(outcomes));
    for (const auto& job : jobs) Finish(*job);
  }
  flushing_ = false;
}

// Queued mail for recipients in a local domain (a list post to a member with
// a local account, with the member's VERP Return-Path; a Sieve redirect to a
// local user): filed by the recipient's Sieve script (sieve/deliver.h) and
// stored with the outcome recorded in the same transaction
// (DeliveryRequest::outcomes), so it is stored once.
awaitable<void> Queue::DeliverLocally(std::shared_ptr<Job> job, std::vector<std::string> contents) {
  const store::QueuedMessage& msg = job->msg;
  store::Store* store = svc_.store;
  for (size_t i = 0; i < msg.recipients.size(); ++i) {
    const store::QueuedRecipient& r = msg.recipients[i];
    const std::string& content = contents[contents.size() == 1 ? 0 : i];
    std::string address = AsciiLower(r.address);
    // A list post's member gets her own VERP sender; other mail keeps its own.
    std::string verp = msg.verp ? lists::VerpAddress(msg.sender, address) : msg.sender;
    struct Prepared {
      Result<store::Account> account = Err(ErrorKind::kNotFound, "");
      std::string content;
      std::string mime;
      sieve::FilterInput filter_in;
      std::optional<sieve::FilterResult> filtered;
    };
    int64_t now = Now();
    sieve::DeliveryLimits limits = sieve::LimitsFrom(svc_.config->Get()->sieve);
    auto prepare = [store, address, verp, &content, now, &limits] {
      Prepared p;
      p.account = store->ResolveRecipient(address);
      p.content = "Return-Path: <" + verp + ">\r\nDelivered-To: " + address + "\r\n" + content;
      auto tree = mime::Parse(p.content);
      if (tree) p.mime = mime::Serialize(*tree);
      // The member's own Sieve script decides where its copy goes, as for
      // mail that arrives over SMTP (sieve/deliver.h).
      if (p.account) {
        p.filter_in.content = p.content;
        p.filter_in.return_path = verp;
        p.filter_in.accounts = {p.account->id};
        p.filter_in.rcpts = {address};
        p.filter_in.now = now;
        p.filtered = sieve::Filter(*store, p.filter_in, limits);
      }
      return p;
    };
    Prepared p = co_await io::Offload(*svc_.blocking, std::move(prepare));
    RecipientOutcome o;
    o.recipient_id = r.id;
    o.retry_requests = r.retry_requests;  // keeps a retry asked meanwhile
    if (!p.account) {
      if (p.account.error().kind == ErrorKind::kNotFound) {
        o.state = RecipientState::kFailed;
        o.diagnostic = "550 5.1.1 <" + address + ">: no such local user";
      } else {
        o.state = RecipientState::kQueued;
        o.diagnostic = "local: " + p.account.error().message;
        o.next_attempt_at = Now() + Backoff(svc_.config->Get()->outbound, r.attempts);
      }
      std::vector<RecipientOutcome> one{o};
      co_await Record(std::move(one));
      continue;
    }
    store::DeliveryRequest req;
    req.return_path = verp;
    req.account_ids.push_back(p.account->id);
    req.received_at = now;
    auto cfg = svc_.config->Get();
    const sieve::FilterResult* filtered = p.filtered ? &*p.filtered : nullptr;
    if (filtered &&
        (filtered->filtered || filtered->rejected > 0 || !filtered->redirects.empty())) {
      req.filings = filtered->filings;
      if (filtered->none_kept) req.account_ids.clear();
      req.keyword_limits = {cfg->imap.max_keyword_length, cfg->imap.max_keywords_per_message,
                            cfg->imap.max_keywords_per_mailbox};
      // Redirected copies leave in the same transaction (SRS as on the MX).
      std::string forwarder = verp;
      if (svc_.srs && !filtered->redirects.empty()) {
        forwarder = SrsForward(verp, svc_.srs->domain, svc_.srs->secret, now);
      }
      req.outbound = sieve::RedirectRequest(*filtered, p.content, forwarder);
    }
    // What Finish reads of the message (the header) outlives the move into the store.
    std::string header;
    if (filtered) {
      header = p.content.substr(0, mime::internal::ScanHeader(p.content).end);
      p.filter_in.content = header;
    }
    req.content = std::move(p.content);
    req.mime = std::move(p.mime);
    o.state = RecipientState::kDelivered;
    o.diagnostic = "250 2.0.0 delivered locally";
    req.outcomes.push_back(o);
    auto deliver = [store, req = std::move(req)](store::Done<store::DeliveryReceipt> done) mutable {
      store->Deliver(std::move(req), std::move(done));
    };
    std::chrono::milliseconds timeout = kStoreTimeout;
    Result<store::DeliveryReceipt> receipt =
        co_await io::AwaitCallback<store::DeliveryReceipt>(std::move(deliver), timeout);
    if (receipt) {
      busy_.erase(r.id);
      released_[r.id] = scan_epoch_;
      if (svc_.counters) svc_.counters->CountOutbound(o.state, true);
      spdlog::info("outbound: id={} to=<{}> delivered locally", msg.id, address);
      if (filtered && sieve::HasAfterCommitWork(*filtered, *receipt)) {
        // After the commit: vacation replies (never to lists: RFC 5230
        // section 4.6), a rejection's bounce, duplicate tracking.
        auto finish = [store, &p, &receipt, host = cfg->hostname] {
          return sieve::Finish(*store, p.filter_in, *p.filtered, *receipt, host);
        };
        if (co_await io::Offload(*svc_.blocking, std::move(finish)) > 0) kicked_ = true;
      }
    } else {
      o.state = RecipientState::kQueued;
      o.diagnostic = "local delivery failed: " + receipt.error().message;
      o.next_attempt_at = Now() + Backoff(svc_.config->Get()->outbound, r.attempts);
      std::vector<RecipientOutcome> one{o};
      co_await Record(std::move(one));
    }
  }
  Finish(*job);
}

awaitable<void> Queue::SendDsns() {
  store::Store* store = svc_.store;
  auto list = [store] { return store->ListPendingDsn(kDsnScanLimit); };
  Result<std::vector<store::QueuedMessage>> pending =
      co_await io::Offload(*svc_.blocking, std::move(list));
  if (!pending) {
    spdlog::error("outbound: cannot read owed reports: {}", pending.error().message);
    co_return;
  }
  auto cfg = svc_.config->Get();
  for (auto& msg : *pending) {
    if (stopping_) co_return;
    int64_t id = msg.id;
    std::string sender = msg.sender;
    struct Prepared {
      Result<std::string> original = std::string();
      Result<bool> local = false;
      std::optional<Result<store::Account>> account;
      std::string language;
    };
    auto prepare = [store, id, sender] {
      Prepared p;
      p.original = store->ReadQueuedContent(id);
      auto mailbox = smtp::ParseMailbox(sender, true);
      if (mailbox) {
        p.local = store->IsLocalDomain(mailbox->domain);
        if (p.local.ok() && *p.local) {
          p.account = store->ResolveRecipient(smtp::AccountKey(*mailbox));
          // The report in the language the sender chose (issue 13).
          if (p.account && p.account->ok()) {
            auto language = store->GetAccountLanguage((*p.account)->id);
            if (language) p.language = *language;
          }
        }
      }
      return p;
    };
    Prepared p = co_await io::Offload(*svc_.blocking, std::move(prepare));
    if (!p.original || !p.local) {
      spdlog::error("outbound: id={} cannot prepare its report: {}", id,
                    !p.original ? p.original.error().message : p.local.error().message);
      continue;
    }
    DsnInput in;
    in.reporting_mta = cfg->hostname;
    in.from = "MAILER-DAEMON@" + cfg->hostname;
    in.to = msg.sender;
    in.envid = msg.envid;
    in.arrival = msg.created_at;
    in.now = Now();
    in.headers_only = msg.ret_hdrs;
    in.original = std::move(*p.original);
    in.boundary = "hato-dsn-" + RandomHex();
    in.message_id = "<" + RandomHex() + RandomHex() + "@" + cfg->hostname + ">";
    in.language = p.language;
    store::DeliveryRequest req;
    for (const auto& r : msg.recipients) {
      DsnRecipient d;
      d.address = r.address;
      d.orcpt = r.orcpt;
      d.action = r.dsn == DsnPending::kFailure ? "failed"
                 : r.dsn == DsnPending::kDelay ? "delayed"
                                               : "relayed";
      d.diagnostic = r.last_error;
      d.last_attempt = r.attempts > 0 ? in.now : 0;
      d.retry_until = msg.created_at + cfg->outbound.max_lifetime_seconds;
      in.recipients.push_back(std::move(d));
      req.dsn_for.push_back(r.id);
    }
    std::string report = BuildDsn(in);
    req.return_path = "";
    req.received_at = in.now;
    if (*p.local) {
      // A local sender whose account is gone gets no report (nothing to deliver to).
      if (p.account && p.account->ok()) {
        req.account_ids.push_back((*p.account)->id);
        req.content = "Return-Path: <>\r\n" + report;
      }
    } else {
      store::OutboundRequest out;
      out.content = report;
      out.sender = "";
      out.recipients.push_back(store::OutboundRecipient{msg.sender, smtp::kNotifyNever, ""});
      req.outbound = std::move(out);
    }
    auto deliver = [store, req = std::move(req)](store::Done<store::DeliveryReceipt> done) mutable {
      store->Deliver(std::move(req), std::move(done));
    };
    std::chrono::milliseconds timeout = kStoreTimeout;
    Result<store::DeliveryReceipt> receipt =
        co_await io::AwaitCallback<store::DeliveryReceipt>(std::move(deliver), timeout);
    if (!receipt) {
      spdlog::error("outbound: id={} report not stored: {}", id, receipt.error().message);
    } else {
      spdlog::info("outbound: id={} report ({} recipients) sent to <{}>", id, msg.recipients.size(),
                   msg.sender);
    }
  }
}

}  // namespace hato::outbound
