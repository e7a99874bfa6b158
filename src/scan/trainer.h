// Junk training (issue 19): a message copied or moved into the account's
// \Junk mailbox (RFC 6154) is learned as spam by rspamd, one taken out of
// \Junk (to anything but \Trash) as ham. The hook is the store's copy
// listener (store::Store::SetCopyListener), so IMAP COPY/MOVE and JMAP
// Email/set mailboxIds both train without either session knowing.
//
// Asynchronous and bounded: the listener only queues (on the store's writer
// thread); one worker thread reads the mailboxes' special uses and the
// message, and posts /learnspam or /learnham to [scan]
// rspamd_controller_url with the scan timeout. Past [scan] learn_queue
// waiting messages, new ones are dropped and counted (learn_dropped).
// Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "server/services.h"
#include "store/store.h"

namespace hato::scan {

// Which copies of a CopyResult train rspamd, given the special use of each
// mailbox id (a function of the ids in the result). Pure.
struct LearnItem {
  int64_t message_id = 0;  // the new copy
  bool spam = false;
};
std::vector<LearnItem> LearnItems(const store::CopyResult& copy,
                                  const std::vector<store::MailboxInfo>& mailboxes);

class Trainer {
 public:
  Trainer(store::Store* store, const server::ConfigSource* config, server::Counters* counters);
  ~Trainer();  // stops the worker; what is still queued is dropped
  Trainer(const Trainer&) = delete;

  // The store's copy listener: never blocks.
  void OnCopy(int64_t account_id, const store::CopyResult& copy);

 private:
  struct Job {
    int64_t account_id = 0;
    store::CopyResult copy;
  };
  void Run();
  void Train(const Job& job);

  store::Store* store_;
  const server::ConfigSource* config_;
  server::Counters* counters_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;  // guarded by mu_
  size_t queued_ = 0;      // messages in queue_, guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::thread worker_;
};

}  // namespace hato::scan
