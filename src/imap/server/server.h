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

#include <map>
#include <set>

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
    if (it->second.empty()) watchers_.erase(it);
  }
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
};

class Server {
 public:
  explicit Server(server::Services services) : services_(std::move(services)) {}
  // Starts relaying the store's change notifications to sessions, on `executor`
  // (the event loop). Detach before the store is destroyed.
  void Attach(asio::any_io_executor executor);
  void Detach();
  awaitable<void> Serve(tcp::socket socket);
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
};

}  // namespace hato::imap
