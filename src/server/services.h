// What every protocol session shares: the store, a pool for blocking work,
// the current configuration snapshot, TLS, login penalties and counters.
// Thread-safety: every member is safe to use from any session.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>

#include "auth/credential_cache.h"
#include "auth/penalty.h"
#include "config/config.h"
#include "io/asio.h"
#include "io/await.h"
#include "server/account_sessions.h"
#include "server/budget.h"
#include "server/change_feed.h"
#include "server/event_loops.h"
#include "server/isolation.h"
#include "store/store.h"

namespace hato::server {

// The current configuration. Readers take a snapshot and keep it for the
// duration of a command; SIGHUP swaps in a new, validated one.
class ConfigSource {
 public:
  explicit ConfigSource(std::shared_ptr<const config::Config> c) : current_(std::move(c)) {}
  std::shared_ptr<const config::Config> Get() const { return current_.load(); }
  void Set(std::shared_ptr<const config::Config> c) { current_.store(std::move(c)); }

 private:
  std::atomic<std::shared_ptr<const config::Config>> current_;
};

// Admission of new sessions of one protocol: at most `total` live sessions,
// and at most `per_ip` from one client address, so that one client (or a
// surge from one network) cannot take every slot. A Ticket releases its
// place when destroyed. Thread-safe.
class Admission {
 public:
  enum class Verdict { kAdmitted, kTooMany, kTooManyFromIp };
  struct Stats {  // since start, for the metrics endpoint
    uint64_t admitted = 0;
    uint64_t refused_total = 0;   // kTooMany
    uint64_t refused_per_ip = 0;  // kTooManyFromIp
  };

  class Ticket {
   public:
    Ticket(Admission* a, std::string ip) : a_(a), ip_(std::move(ip)) {}
    Ticket(Ticket&& o) noexcept : a_(std::exchange(o.a_, nullptr)), ip_(std::move(o.ip_)) {}
    Ticket(const Ticket&) = delete;
    ~Ticket() {
      if (a_) a_->Release(ip_);
    }

   private:
    Admission* a_;
    std::string ip_;
  };

  // `per_ip` 0 = no per-address limit.
  Verdict TryAdmit(const std::string& ip, size_t total, size_t per_ip,
                   std::optional<Ticket>& ticket) {
    std::lock_guard lock(mu_);
    if (live_ >= total) {
      ++stats_.refused_total;
      return Verdict::kTooMany;
    }
    size_t& from_ip = per_ip_[ip];
    if (per_ip != 0 && from_ip >= per_ip) {
      ++stats_.refused_per_ip;
      return Verdict::kTooManyFromIp;
    }
    ++from_ip;
    ++live_;
    ++stats_.admitted;
    ticket.emplace(this, ip);
    return Verdict::kAdmitted;
  }
  size_t live() const {
    std::lock_guard lock(mu_);
    return live_;
  }
  Stats stats() const {
    std::lock_guard lock(mu_);
    return stats_;
  }

 private:
  void Release(const std::string& ip) {
    std::lock_guard lock(mu_);
    --live_;
    auto it = per_ip_.find(ip);
    if (it != per_ip_.end() && --it->second == 0) per_ip_.erase(it);
  }

  mutable std::mutex mu_;
  size_t live_ = 0;                                 // guarded by mu_
  Stats stats_;                                     // guarded by mu_
  std::unordered_map<std::string, size_t> per_ip_;  // guarded by mu_
};

// The live sessions of one protocol, so that a graceful stop can ask each to
// finish: an idle session is closed at once (with the protocol's "shutting
// down" reply), a busy one after its current command or transaction.
// Thread-safe. A member is registered from its own event loop
// (server/event_loops.h) and RequestStop is called there: StopAll, from any
// thread, posts the call to each member's loop, where it is made only if the
// member is still registered (members leave from their own loop too, so a
// member found there is alive).
class SessionRegistry {
 public:
  class Member {
   public:
    virtual ~Member() = default;
    virtual void RequestStop() = 0;  // called on the member's event-loop thread
  };
  void Add(Member* m) {
    std::lock_guard lock(mu_);
    members_[m] = Home{CurrentLoop(), ++generation_};
  }
  void Remove(Member* m) {
    std::lock_guard lock(mu_);
    members_.erase(m);
  }
  void StopAll() {
    std::map<Member*, Home> copy;
    {
      std::lock_guard lock(mu_);
      copy = members_;
    }
    for (auto& entry : copy) {
      // Not a structured binding: clang before 16 cannot capture one.
      Member* m = entry.first;
      RunOnLoop(entry.second.loop, [this, m, id = entry.second.id] {
        if (Registered(m, id)) m->RequestStop();
      });
    }
  }

  // Registers a member for the lifetime of this object.
  class Scope {
   public:
    Scope(SessionRegistry& r, Member* m) : r_(r), m_(m) { r_.Add(m_); }
    Scope(const Scope&) = delete;
    ~Scope() { r_.Remove(m_); }

   private:
    SessionRegistry& r_;
    Member* m_;
  };

 private:
  struct Home {
    std::optional<asio::any_io_executor> loop;
    uint64_t id = 0;  // tells a member from a later one at the same address
  };
  bool Registered(Member* m, uint64_t id) {
    std::lock_guard lock(mu_);
    auto it = members_.find(m);
    return it != members_.end() && it->second.id == id;
  }
  std::mutex mu_;
  std::map<Member*, Home> members_;  // guarded by mu_
  uint64_t generation_ = 0;          // guarded by mu_
};

// Whether the data volume has less free space than the configured reserve.
// Updated about once a second by `serve`; read by sessions before accepting
// new mail. Thread-safe.
class DiskMonitor {
 public:
  bool low() const { return low_.load(std::memory_order_relaxed); }
  // Returns true when the state changed.
  bool Update(uint64_t free_bytes, uint64_t reserve_bytes) {
    bool now_low = free_bytes < reserve_bytes;
    return low_.exchange(now_low) != now_low;
  }

 private:
  std::atomic<bool> low_{false};
};

// What happened to mail, for the metrics endpoint (metrics/exporter.h).
// Thread-safe.
struct Counters {
  std::atomic<uint64_t> smtp_accepted{0};     // 250 after DATA / BDAT LAST (durable)
  std::atomic<uint64_t> smtp_refused_4xx{0};  // transactions refused temporarily (MAIL or data)
  std::atomic<uint64_t> smtp_refused_5xx{0};  // ... and permanently
  void CountSmtp(int code) {
    auto& c = code < 300 ? smtp_accepted : code < 500 ? smtp_refused_4xx : smtp_refused_5xx;
    c.fetch_add(1, std::memory_order_relaxed);
  }
  // Inbound checks on port 25 (app/inbound_check.cc): messages by DMARC
  // result, indexed by msgauth::DmarcStatus (none, pass, fail, temperror,
  // permerror), and what the DMARC policy did with them.
  static constexpr size_t kDmarcResults = 5;
  std::array<std::atomic<uint64_t>, kDmarcResults> dmarc_results{};
  std::atomic<uint64_t> dmarc_rejected{0};
  std::atomic<uint64_t> dmarc_junked{0};
  // Content scanners on port 25 (src/scan): messages by outcome, and the
  // Junk training requests to rspamd's controller.
  std::atomic<uint64_t> scan_spam_unscanned{0};   // rspamd on but down, slow or skipped
  std::atomic<uint64_t> scan_virus_unscanned{0};  // clamd on but down or slow
  std::atomic<uint64_t> scan_spam_rejected{0};
  std::atomic<uint64_t> scan_spam_junked{0};
  std::atomic<uint64_t> scan_spam_marked{0};
  std::atomic<uint64_t> scan_virus_refused{0};
  std::atomic<uint64_t> learn_sent{0};     // accepted by rspamd
  std::atomic<uint64_t> learn_failed{0};   // rspamd down or refused
  std::atomic<uint64_t> learn_dropped{0};  // the training queue was full
  // Outbound recipients by recorded outcome (src/outbound): delivered,
  // deferred after an attempt (retried later), failed for good (bounced).
  std::atomic<uint64_t> outbound_delivered{0};
  std::atomic<uint64_t> outbound_deferred{0};
  std::atomic<uint64_t> outbound_bounced{0};
  // DANE (RFC 7672, src/outbound) per MX host tried, in the order of
  // kDaneOutcomes: the certificate matched a TLSA record; usable records but
  // no match (deferred); only unusable records (TLS without authentication);
  // validated absence of TLSA records; an answer not DNSSEC-validated (DANE
  // does not apply); the TLSA lookup failed (deferred).
  static constexpr std::array<const char*, 6> kDaneOutcomes = {
      "match", "mismatch", "unusable", "no_tlsa", "insecure", "lookup_failed"};
  std::array<std::atomic<uint64_t>, kDaneOutcomes.size()> dane{};
  // Failed logins (wrong password or unknown account) per protocol, in the
  // order of kLoginProtocols; anything else counts as the last ("other").
  static constexpr std::array<const char*, 4> kLoginProtocols = {"submission", "imap", "pop3",
                                                                 "other"};
  std::array<std::atomic<uint64_t>, kLoginProtocols.size()> login_failures{};
  void CountLoginFailure(std::string_view protocol) {
    size_t i = 0;
    while (i + 1 < kLoginProtocols.size() && protocol != kLoginProtocols[i]) ++i;
    login_failures[i].fetch_add(1, std::memory_order_relaxed);
  }
  void CountOutbound(store::RecipientState state, bool attempted) {
    std::atomic<uint64_t>* c = nullptr;
    switch (state) {
      case store::RecipientState::kDelivered:
        c = &outbound_delivered;
        break;
      case store::RecipientState::kFailed:
        c = &outbound_bounced;
        break;
      case store::RecipientState::kQueued:
        if (attempted) c = &outbound_deferred;
        break;
      case store::RecipientState::kHeld:
        break;
    }
    if (c) c->fetch_add(1, std::memory_order_relaxed);
  }
};

// Where message authentication plugs in (src/msgauth; wired in app/serve.cc).
// Both hooks run on the blocking pool.
struct InboundInfo {
  std::string peer_ip;
  std::string helo;
  std::string mail_from;  // "" = null reverse-path
};
// What the MX does with a received message after the checks.
struct InboundVerdict {
  enum class Action { kDeliver, kJunk, kReject };
  Action action = Action::kDeliver;
  // The Authentication-Results field (RFC 8601, with its CRLF) to prepend; "" = none.
  std::string header;
  // The message without forged Authentication-Results fields that claim our
  // authserv-id (RFC 8601 section 5); nullopt when there were none.
  std::optional<std::string> cleaned;
  std::string reason;  // for the log and the reply of a rejection
};
// Mailing lists (src/lists; wired in app/serve.cc): a message for one list
// address, and what the session answers for it.
struct ListDelivery {
  std::string rcpt;           // canonical list address form
  std::string mail_from;      // "" = null reverse-path
  std::string authenticated;  // the submission account, "" on port 25
  std::string peer_ip;
  std::string content;  // trace fields on top, no Return-Path
  bool smtputf8 = false;
  bool eight_bit = false;
};
struct ListReply {
  int code = 250;
  std::string text;  // enhanced status code and text, without the reply code
};
struct MessageHooks {
  // Submission: header fields (a DKIM-Signature, RFC 6376) to prepend to a
  // message from `from_domain` before it is queued and stored. Null = none.
  // `from_domain` is the message's From: domain, already checked to belong
  // to the submitting account: only that domain's key may be used.
  std::function<Result<std::string>(const std::string& from_domain, std::string_view message)>
      sign_outbound;
  // MX: SPF, DKIM and DMARC of a received message. Null = none.
  std::function<InboundVerdict(const InboundInfo& info, std::string_view message)>
      authenticate_inbound;
  // Lists: whether a local address (no account) is a list's; the message for
  // it (blocking until durable). Both run on the blocking pool. Null = none.
  std::function<Result<bool>(const std::string& address)> is_list;
  std::function<ListReply(const ListDelivery& delivery)> deliver_to_list;
  // Lists: the copy of a stored list post one member receives (its own
  // RFC 8058 List-Unsubscribe, DKIM-signed: lists::MemberCopy), asked by the
  // queue per VERP recipient on the blocking pool. Null = sent as stored.
  std::function<Result<std::string>(const std::string& bounce_address, const std::string& member,
                                    std::string_view content)>
      list_copy;
};

struct Services {
  store::Store* store = nullptr;
  io::CountingPool* blocking = nullptr;  // store reads, filters (sized by the loops)
  ConfigSource* config = nullptr;
  std::shared_ptr<asio::ssl::context> tls;  // null when no certificate is configured
  auth::LoginPenalty* penalty = nullptr;
  DiskMonitor* disk = nullptr;          // null: never low
  Counters* counters = nullptr;         // null: not counted
  const MessageHooks* hooks = nullptr;  // null: no signing or verification
  // Inbound message-authentication checks: they wait on DNS, so they get
  // their own threads and never hold the blocking pool's (null: blocking).
  asio::thread_pool* checks = nullptr;
  // Called after a message was queued for remote delivery (any thread).
  std::function<void()> outbound_queued;
  // Isolation and bounds (issue 11). Client input held in memory
  // (server/budget.h); null = no cap.
  MemoryBudget* memory = nullptr;
  // Password checks on their own threads with a bounded queue; null = on
  // `blocking`, unbounded.
  PasswordChecks* passwords = nullptr;
  // Scans whose cost the client decides (SEARCH over message content): their
  // own threads, and a per-account concurrency limit. Null = on `blocking`.
  asio::thread_pool* scans = nullptr;
  AccountSlots* scan_slots = nullptr;
  // Recent successful password checks (null: none cached).
  auth::CredentialCache* credentials = nullptr;
  // SRS (outbound/srs.h) for forwarded mail and the bounces that come back:
  // the domain senders are rewritten into and the data dir's secret. Null: off.
  struct Srs {
    std::string domain;
    std::string secret;
  };
  const Srs* srs = nullptr;
  // The store's change notifications for every subscriber (IMAP, JMAP); null:
  // a protocol installs the store's one listener itself.
  ChangeFeed* changes = nullptr;
  // Authenticated sessions by account, ended when the account changes
  // (server/account_sessions.h). Null: not tracked.
  AccountSessions* account_sessions = nullptr;
};

}  // namespace hato::server
