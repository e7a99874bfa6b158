// IMAP4rev1 server (RFC 3501, with the extensions listed in rfc/index.md):
// accepts connections and runs one Session coroutine per client. Parsing is in
// imap/proto (pure); storage goes through store::Store; MIME structure comes
// from the tree stored at delivery (mime::Deserialize), so FETCH never
// re-parses a message that was parsed when it arrived.
//
// Change notification: the store calls back after each commit with the
// mailboxes it changed; the Hub relays that, on each session's loop, to the
// sessions that have those mailboxes selected, which then send EXISTS /
// EXPUNGE / FETCH FLAGS at the next allowed moment (at once while IDLE).
#pragma once

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

#include "imap/server/sort_keys.h"
#include "imap/server/tree_cache.h"
#include "io/asio.h"
#include "server/services.h"

namespace hato::imap {

// Sessions interested in a mailbox, and the process's \Recent claims.
// Thread-safe: sessions on several event loops (server/event_loops.h) Watch
// and Unwatch from their own loop; Notify may be called from any thread (the
// store's writer) and calls each listener's MailboxChanged on the listener's
// own loop, only if it still watches that mailbox then (a listener leaves from
// its own loop, so one found there is alive).
class Hub {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void MailboxChanged() = 0;  // on the listener's event loop
    // NOTIFY (RFC 5465): a mailbox the listener watches with WatchNotify
    // changed, or (0) its account's mailbox names or subscriptions did. On
    // the listener's event loop.
    virtual void NotifyChanged(int64_t /*mailbox_id*/) {}
  };
  // `fallback`: where listeners that are not on an EventLoops thread (tests)
  // are called; empty = at once, on the notifying thread.
  void SetFallback(std::optional<asio::any_io_executor> fallback) {
    std::lock_guard lock(mu_);
    fallback_ = std::move(fallback);
  }
  void Watch(int64_t mailbox_id, Listener* l) {
    std::lock_guard lock(mu_);
    watchers_[mailbox_id][l] = Home{server::CurrentLoop(), ++generation_};
  }
  void Unwatch(int64_t mailbox_id, Listener* l) {
    std::lock_guard lock(mu_);
    auto it = watchers_.find(mailbox_id);
    if (it == watchers_.end()) return;
    it->second.erase(l);
    // The \Recent claim stays: its write to the store may still be under
    // way, and STATUS must see it at once (issue 16). One number per mailbox.
    if (it->second.empty()) watchers_.erase(it);
  }
  // The UID up to which \Recent has been claimed in this process (0: none).
  uint32_t Claimed(int64_t mailbox_id) const {
    std::lock_guard lock(mu_);
    auto it = recent_.find(mailbox_id);
    return it == recent_.end() ? 0 : it->second;
  }
  // \Recent (RFC 3501 section 2.3.2): the first session to see a message
  // claims it. Claims live here, for the mailboxes that are selected
  // somewhere; `stored` is the store's persisted claim. Returns the UID up to
  // which messages were claimed before this call. Atomic: of two sessions
  // on two loops claiming at once, exactly one gets each message.
  uint32_t ClaimRecent(int64_t mailbox_id, uint32_t stored, uint32_t up_to) {
    std::lock_guard lock(mu_);
    uint32_t& claimed = recent_[mailbox_id];
    uint32_t previous = std::max(claimed, stored);
    claimed = std::max(previous, up_to);
    return previous;
  }
  // Live authenticated sessions per account (imap.max_sessions_per_account;
  // issue 11 item 8). Thread-safe.
  server::AccountSlots account_sessions;

  // NOTIFY (RFC 5465): `l` hears NotifyChanged for each of `mailboxes` that
  // changes and for changes to the names and subscriptions of `account`'s
  // mailboxes (NotifyAccount). Replaces the listener's previous set.
  void WatchNotify(int64_t account, std::set<int64_t> mailboxes, Listener* l) {
    std::lock_guard lock(mu_);
    auto it = notify_.find(l);
    if (it != notify_.end()) {
      // Same listener, same id: calls already posted to it stay valid.
      it->second.account = account;
      it->second.mailboxes = std::move(mailboxes);
      return;
    }
    notify_[l] =
        NotifyWatch{Home{server::CurrentLoop(), ++generation_}, account, std::move(mailboxes)};
  }
  void UnwatchNotify(Listener* l) {
    std::lock_guard lock(mu_);
    notify_.erase(l);
  }

  void Notify(const std::vector<int64_t>& mailbox_ids) {
    Batches batches;
    {
      std::lock_guard lock(mu_);
      for (int64_t mailbox : mailbox_ids) {
        auto it = watchers_.find(mailbox);
        if (it != watchers_.end()) {
          for (const auto& [l, home] : it->second) Add(batches, home, {mailbox, l, home.id, false});
        }
        // Sessions with NOTIFY are few next to IDLE ones: a scan of them all.
        for (const auto& [l, w] : notify_) {
          if (w.mailboxes.count(mailbox)) Add(batches, w.home, {mailbox, l, w.home.id, true});
        }
      }
    }
    Post(std::move(batches));
  }
  // The mailbox list or subscriptions of `account` changed (CREATE, DELETE,
  // RENAME, SUBSCRIBE: server::ChangeFeed::PublishRecords): NotifyChanged(0)
  // for the account's NOTIFY listeners.
  void NotifyAccount(int64_t account) {
    Batches batches;
    {
      std::lock_guard lock(mu_);
      for (const auto& [l, w] : notify_) {
        if (w.account == account) Add(batches, w.home, {0, l, w.home.id, true});
      }
    }
    Post(std::move(batches));
  }

 private:
  struct Home {
    std::optional<asio::any_io_executor> loop;
    uint64_t id = 0;  // tells a listener from a later one at the same address
  };
  struct NotifyWatch {
    Home home;
    int64_t account = 0;
    std::set<int64_t> mailboxes;
  };
  struct Call {
    int64_t mailbox;
    Listener* l;
    uint64_t id;
    bool notify;  // NotifyChanged, else MailboxChanged
  };
  // One posted batch per loop.
  using Batches = std::vector<std::pair<std::optional<asio::any_io_executor>, std::vector<Call>>>;
  void Add(Batches& batches, const Home& home, Call call) const {  // under mu_
    std::optional<asio::any_io_executor> loop = home.loop ? home.loop : fallback_;
    auto b = std::find_if(batches.begin(), batches.end(),
                          [&](const auto& x) { return x.first == loop; });
    if (b == batches.end()) b = batches.insert(batches.end(), {loop, {}});
    b->second.push_back(call);
  }
  void Post(Batches batches) {
    for (auto& [loop, calls] : batches) {
      server::RunOnLoop(loop, [this, calls = std::move(calls)] {
        for (const Call& c : calls) {
          if (c.notify) {
            if (NotifyWatching(c.l, c.id)) c.l->NotifyChanged(c.mailbox);
          } else if (Watching(c.mailbox, c.l, c.id)) {
            c.l->MailboxChanged();
          }
        }
      });
    }
  }
  bool NotifyWatching(Listener* l, uint64_t id) const {
    std::lock_guard lock(mu_);
    auto it = notify_.find(l);
    return it != notify_.end() && it->second.home.id == id;
  }
  bool Watching(int64_t mailbox, Listener* l, uint64_t id) const {
    std::lock_guard lock(mu_);
    auto it = watchers_.find(mailbox);
    if (it == watchers_.end()) return false;
    auto w = it->second.find(l);
    return w != it->second.end() && w->second.id == id;
  }

  mutable std::mutex mu_;
  std::map<int64_t, std::map<Listener*, Home>> watchers_;  // guarded by mu_
  std::map<int64_t, uint32_t> recent_;             // mailbox -> UID claimed up to; guarded by mu_
  std::map<Listener*, NotifyWatch> notify_;        // guarded by mu_
  std::optional<asio::any_io_executor> fallback_;  // guarded by mu_
  uint64_t generation_ = 0;                        // guarded by mu_
};

class Server {
 public:
  explicit Server(server::Services services) : services_(std::move(services)) {}
  // Starts relaying the store's change notifications to sessions, each on
  // its own event loop (`executor`: for sessions not on an EventLoops thread).
  // Detach before the store is destroyed.
  void Attach(asio::any_io_executor executor);
  void Detach();
  // With `implicit_tls` (port 993, RFC 8314 section 3.3) the TLS handshake
  // comes before the greeting.
  awaitable<void> Serve(tcp::socket socket, bool implicit_tls);
  size_t live_sessions() const { return admission_.live(); }
  const server::Admission& admission() const { return admission_; }
  // Graceful stop: idle sessions get "* BYE [UNAVAILABLE]" and close.
  void Shutdown() { registry_.StopAll(); }

 private:
  server::Services services_;
  server::Admission admission_;
  server::SessionRegistry registry_;
  Hub hub_;
  int subscription_ = 0;          // in services_.changes, when set
  int records_subscription_ = 0;  // its PublishRecords (NOTIFY mailbox-list events)
  TreeCache trees_;
  SortKeyCache sort_keys_;
};

}  // namespace hato::imap
