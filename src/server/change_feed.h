// The store's change notifications, fanned out: the store has one change
// listener (store::Store::SetChangeListener); `serve` installs this feed as
// that listener and every protocol that pushes changes subscribes to it
// (IMAP IDLE through its Hub, JMAP EventSource through jmap/push.h).
// Subscribers are called on the store's writer thread after each commit,
// with the ids of the mailboxes it changed: they must only hand off (post
// to their event loop), never block. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

namespace hato::server {

class ChangeFeed {
 public:
  using Fn = std::function<void(const std::vector<int64_t>& mailbox_ids)>;
  int Subscribe(Fn fn) {
    std::lock_guard lock(mu_);
    subscribers_[next_] = std::move(fn);
    return next_++;
  }
  void Unsubscribe(int id) {
    std::lock_guard lock(mu_);
    subscribers_.erase(id);
  }
  void Publish(const std::vector<int64_t>& mailbox_ids) {
    std::lock_guard lock(mu_);
    for (auto& [id, fn] : subscribers_) fn(mailbox_ids);
  }

  // Changes that touch no mailbox (JMAP EmailSubmission push, RFC 8620
  // section 7): an account's JMAP records changed (account_id > 0, after
  // their commit), or the outbound queue recorded delivery outcomes
  // (account_id 0: the queue does not know whose submission it was).
  // Same rules as Publish: subscribers only hand off.
  using RecordFn = std::function<void(int64_t account_id)>;
  int SubscribeRecords(RecordFn fn) {
    std::lock_guard lock(mu_);
    record_subscribers_[next_] = std::move(fn);
    return next_++;
  }
  void UnsubscribeRecords(int id) {
    std::lock_guard lock(mu_);
    record_subscribers_.erase(id);
  }
  void PublishRecords(int64_t account_id) {
    std::lock_guard lock(mu_);
    for (auto& [id, fn] : record_subscribers_) fn(account_id);
  }

 private:
  std::mutex mu_;
  std::map<int, Fn> subscribers_;               // guarded by mu_
  std::map<int, RecordFn> record_subscribers_;  // guarded by mu_
  int next_ = 1;                                // guarded by mu_
};

}  // namespace hato::server
