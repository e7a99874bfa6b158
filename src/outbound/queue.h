// The outbound queue runner: takes due recipients from the store's queue,
// delivers them to their destination's MX (or the relay host) with the SMTP
// client, and records each outcome: delivered, failed (a DSN is owed) or
// deferred with exponential backoff and jitter until the maximum lifetime.
// It also turns owed DSNs into messages to the sender (src/outbound/dsn.h).
//
// Scheduling: at most outbound.max_connections deliveries at once, and at
// most outbound.max_connections_per_destination per destination, so one
// slow destination cannot take every slot. A delivery (a job) is one
// message's recipients at one destination in one transaction, or, for a list
// post (VERP: a transaction per member), a run of up to kVerpBatch members
// of one domain, their transactions one after the other on one connection. A destination that could
// not be reached is "dead" until its retry time: its other recipients are deferred without a
// connection attempt instead of waiting for timeouts in a slot.
//
// Connection reuse (RFC 5321 section 4.1.4): a session to an MX host that
// ended its transaction cleanly waits in a bounded cache of idle sessions
// (per MX host, address, port and TLS/AUTH settings) for the next message
// to that host, whatever its recipient domain; outbound.max_messages_per_
// connection, connection_idle_seconds, max_idle_connections and
// max_idle_connections_per_host bound it. A session that broke, got a 421
// or failed its RSET is never reused (smtp::ClientSession::usable).
// Threads: the runner (scheduling, limits, DNS, the idle session cache, the
// outcome commits) runs on one event loop; each SMTP session's connect,
// greeting, TLS and transactions run on a delivery loop (SetDeliveryLoops:
// a new session on the next loop round-robin, a reused one on the loop it
// was opened on), the runner awaiting it, so a broadcast's socket work and
// dot-stuffing spread over every loop. Kick() may be called from any thread.
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "dns/resolver.h"
#include "dns/secure_stub.h"
#include "io/asio.h"
#include "outbound/mta_sts.h"
#include "outbound/tls_policy.h"
#include "reports/recorder.h"
#include "server/services.h"
#include "smtp/client.h"

namespace hato::outbound {

class Queue {
 public:
  Queue(server::Services services, asio::any_io_executor executor);
  ~Queue();
  // Opens the resolver and starts the runner.
  Status Start();
  // Look for work now (new mail queued). Thread-safe.
  void Kick();
  // No new deliveries; those in progress finish.
  void Stop();
  size_t active() const { return active_total_; }
  // Records each session to a recipient domain's MX for TLS-RPT (RFC 8460;
  // [reports] tls_rpt). Call before Start; null: nothing recorded.
  void SetTlsReports(reports::Recorder* recorder) { tls_reports_ = recorder; }
  // The event loops SMTP sessions run on; call before Start. None: the
  // runner's loop only.
  // Each session opened is counted on its loop (hato_event_loop_outbound_
  // sessions_total).
  void SetDeliveryLoops(server::EventLoops* loops) {
    event_loops_ = loops;
    delivery_loops_.clear();
    for (size_t i = 0; loops && i < loops->size(); ++i)
      delivery_loops_.push_back(loops->executor(i));
  }

 private:
  struct Job;
  // Due recipients of the last queue read not started yet (Scan): a message
  // with its recipients apart, `gone` marking those started, skipped or
  // found busy since; `first` the first not gone; `left` how many are not.
  struct Backlog {
    store::QueuedMessage msg;  // without recipients
    std::vector<store::QueuedRecipient> recipients;
    std::vector<char> gone;
    size_t first = 0;
    size_t left = 0;
  };
  awaitable<void> Run();
  awaitable<void> Scan();
  // Starts a job for the recipients `rcpts` (indexes into b.recipients) to
  // `domain` if the connection and rate limits allow (or defers them at
  // once when their destination is dead); false when a limit that stops the
  // rest of the message was reached (the connections in all, or of bulk mail).
  // A VERP message's job (a transaction per recipient) takes only as many
  // of `rcpts` as the destination's per-minute rates still allow.
  bool StartGroup(const config::Config& cfg, Backlog& b, const std::string& domain,
                  const std::vector<size_t>& rcpts, int64_t now,
                  std::vector<std::shared_ptr<Job>>& starting,
                  std::vector<store::RecipientOutcome>& skipped);
  awaitable<void> Deliver(std::shared_ptr<Job> job);
  // `contents`: one message for every recipient, or one per recipient (the
  // members' own copies of a list post).
  awaitable<void> DeliverLocally(std::shared_ptr<Job> job, std::vector<std::string> contents);
  awaitable<void> SendDsns();
  awaitable<void> Record(std::vector<store::RecipientOutcome> outcomes);
  // Records pending_outcomes_ (one store commit for all the deliveries that
  // ended meanwhile), then frees the slots of pending_jobs_; again until
  // none are pending.
  awaitable<void> FlushOutcomes();
  void Finish(const Job& job);
  // The idle session cache: the most recently used usable session for
  // `key`, or null; a session back after its transaction (kept if usable
  // and within the limits, else QUIT); idle sessions past
  // connection_idle_seconds (all of them when stopping) closed with QUIT.
  // `loop` (out of TakeIdle, into KeepIdle): the delivery loop the session
  // was opened on, where its I/O runs.
  std::unique_ptr<smtp::ClientSession> TakeIdle(const std::string& key, size_t& loop);
  awaitable<void> KeepIdle(std::string key, std::unique_ptr<smtp::ClientSession> session,
                           size_t loop);
  // Delivery loop `i` (the runner's loop when none were set).
  asio::any_io_executor DeliveryLoop(size_t i) const {
    return delivery_loops_.empty() ? ex_ : delivery_loops_[i % delivery_loops_.size()];
  }
  void ExpireIdle(bool all);
  static awaitable<void> QuitSession(std::shared_ptr<smtp::ClientSession> session);
  // The DNSSEC-aware stub for DANE on outbound.resolver (made anew when a
  // SIGHUP changes it); null, with the reason logged, when that resolver is
  // not on loopback.
  dns::SecureStub* DaneStub(const config::OutboundConfig& oc);
  // A TLS client context for one DANE session that records the server's
  // certificate chain into `chain` during the handshake.
  static std::shared_ptr<asio::ssl::context> DaneTlsContext(
      std::shared_ptr<std::vector<std::string>> chain);

  server::Services svc_;
  asio::any_io_executor ex_;
  server::EventLoops* event_loops_ = nullptr;
  std::vector<asio::any_io_executor> delivery_loops_;
  size_t next_loop_ = 0;  // round-robin over delivery_loops_ for new sessions
  std::unique_ptr<dns::Resolver> resolver_;
  std::shared_ptr<asio::ssl::context> client_tls_;         // opportunistic: no checks
  std::shared_ptr<asio::ssl::context> client_verify_tls_;  // trusted CAs, for "verify"
  std::unique_ptr<TlsPolicy> tls_policy_;
  std::unique_ptr<StsPolicies> sts_;              // MTA-STS policies (RFC 8461), cached
  std::unique_ptr<dns::SecureStub> secure_stub_;  // DANE's lookups ([outbound] dane)
  std::string secure_stub_resolver_;              // the outbound.resolver it asks
  reports::Recorder* tls_reports_ = nullptr;
  asio::steady_timer wake_;
  bool stopping_ = false;
  bool kicked_ = false;
  bool reread_ = true;  // read the queue on the next pass, not only the backlog
  std::vector<Backlog> backlog_;
  // Deliveries ended whose outcomes wait for the running commit (FlushOutcomes).
  std::vector<store::RecipientOutcome> pending_outcomes_;
  std::vector<std::shared_ptr<Job>> pending_jobs_;
  bool flushing_ = false;
  // The stored bodies of the list posts being delivered, read once for all
  // members' copies. A queued body never changes; the key has the row's
  // creation time and size besides its id, as SQLite may reuse the id of a
  // removed message. Thread-safe (the blocking pool reads it).
  using BodyKey = std::tuple<int64_t, int64_t, uint64_t>;  // id, created_at, size
  class BodyCache {
   public:
    std::shared_ptr<const std::string> Get(const BodyKey& key);
    void Put(const BodyKey& key, std::shared_ptr<const std::string> body);

   private:
    static constexpr size_t kBodyCacheEntries = 8;
    static constexpr size_t kBodyCacheBytes = 64u << 20;
    std::mutex mu_;
    std::vector<std::pair<BodyKey, std::shared_ptr<const std::string>>> entries_;  // oldest first
  };
  BodyCache bulk_bodies_;
  // Recipient domains: local or not, and when that was read (Deliver).
  std::map<std::string, std::pair<bool, std::chrono::steady_clock::time_point>> local_domains_;
  uint64_t backlog_epoch_ = 0;  // scan_epoch_ of its read
  std::chrono::steady_clock::time_point backlog_read_;
  bool dsn_owed_ = true;  // an outcome recorded since the last SendDsns owes a DSN
  std::chrono::steady_clock::time_point dsn_read_;
  std::set<int64_t> busy_;  // recipient ids being delivered
  // Recipients whose outcome was committed, with the scan epoch at that
  // moment: a scan that started no later may hold a stale snapshot in which
  // they are still due, so it must not start them again.
  std::map<int64_t, uint64_t> released_;
  uint64_t scan_epoch_ = 0;
  std::map<std::string, size_t> active_;  // deliveries per destination
  std::atomic<size_t> active_total_{0};   // read by `serve` from the control thread
  size_t active_bulk_ = 0;                // deliveries of list posts (lists.max_bulk_connections)
  std::map<std::string, std::deque<int64_t>> recent_bulk_starts_;  // lists.destination_rates
  std::map<std::string, int64_t> dead_until_;                      // unreachable destinations
  // Start times (unix seconds) of the deliveries of the last minute, per
  // destination, for outbound.max_messages_per_minute_per_destination.
  std::map<std::string, std::deque<int64_t>> recent_starts_;
  // Outcomes whose recording failed: retried, and their recipients stay busy
  // meanwhile, so a confirmed 250 is never followed by a resend.
  std::vector<store::RecipientOutcome> unrecorded_;
  struct IdleSession {
    std::unique_ptr<smtp::ClientSession> session;
    std::chrono::steady_clock::time_point since;
    size_t loop = 0;  // the delivery loop it was opened on
  };
  std::map<std::string, std::deque<IdleSession>> idle_;  // oldest first, per key
  size_t idle_total_ = 0;
};

}  // namespace hato::outbound
