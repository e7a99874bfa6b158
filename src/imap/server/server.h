// IMAP4rev1 server (RFC 3501, with the extensions listed in rfc/index.md):
// accepts connections and runs one Session coroutine per client. Parsing is in
// imap/proto (pure); storage goes through store::Store; MIME structure comes
// from the tree stored at delivery (mime::Deserialize), so FETCH never
// re-parses a message that was parsed when it arrived.
//
// Change notification: the store calls back after each commit with the
// mailboxes it changed; the Hub relays that, on the event loop, to the
// sessions that have those mailboxes selected, which then send EXISTS /
// EXPUNGE / FETCH FLAGS at the next allowed moment (at once while IDLE).
#pragma once

#include <algorithm>
#include <map>
#include <set>

#include "imap/server/sort_keys.h"
#include "imap/server/tree_cache.h"
#include "io/asio.h"
#include "server/services.h"

namespace hato::imap {

// Sessions interested in a mailbox. Event-loop thread only.
class Hub {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void MailboxChanged() = 0;
  };
  void Watch(int64_t mailbox_id, Listener* l) { watchers_[mailbox_id].insert(l); }
  void Unwatch(int64_t mailbox_id, Listener* l) {
    auto it = watchers_.find(mailbox_id);
    if (it == watchers_.end()) return;
    it->second.erase(l);
    // The \Recent claim stays: its write to the store may still be under
    // way, and STATUS must see it at once (issue 16). One number per mailbox.
    if (it->second.empty()) watchers_.erase(it);
  }
  // The UID up to which \Recent has been claimed in this process (0: none).
  uint32_t Claimed(int64_t mailbox_id) const {
    auto it = recent_.find(mailbox_id);
    return it == recent_.end() ? 0 : it->second;
  }
  // \Recent (RFC 3501 section 2.3.2): the first session to see a message
  // claims it. Claims live here, on the event loop, for the mailboxes that
  // are selected somewhere; `stored` is the store's persisted claim. Returns
  // the UID up to which messages were claimed before this call.
  uint32_t ClaimRecent(int64_t mailbox_id, uint32_t stored, uint32_t up_to) {
    uint32_t& claimed = recent_[mailbox_id];
    uint32_t previous = std::max(claimed, stored);
    claimed = std::max(previous, up_to);
    return previous;
  }
  // Live authenticated sessions per account (imap.max_sessions_per_account;
  // issue 11 item 8). Thread-safe, unlike the rest of the Hub.
  server::AccountSlots account_sessions;

  void Notify(const std::vector<int64_t>& mailbox_ids) {
    for (int64_t id : mailbox_ids) {
      auto it = watchers_.find(id);
      if (it == watchers_.end()) continue;
      auto copy = it->second;
      for (Listener* l : copy) l->MailboxChanged();
    }
  }

 private:
  std::map<int64_t, std::set<Listener*>> watchers_;
  std::map<int64_t, uint32_t> recent_;  // mailbox -> UID claimed up to
};

class Server {
 public:
  explicit Server(server::Services services) : services_(std::move(services)) {}
  // Starts relaying the store's change notifications to sessions, on `executor`
  // (the event loop). Detach before the store is destroyed.
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
  asio::any_io_executor executor_;
  server::Admission admission_;
  server::SessionRegistry registry_;
  Hub hub_;
  int subscription_ = 0;  // in services_.changes, when set
  TreeCache trees_;
  SortKeyCache sort_keys_;
};

}  // namespace hato::imap
