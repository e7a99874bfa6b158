// Windowed writes through Store::RestoreMessage: at most `window` messages in
// flight, so the writer's group commit takes them in batches while the caller
// reads the next one (restore --merge, import, migrate). Each result is
// tallied into the caller's result under one lock.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>

#include "store/store.h"

namespace hato::store {

// Tally: any struct with uint64_t added, skipped, bytes and a
// std::vector<std::string> problems (BackupRestoreResult, MigrateResult, ...).
template <typename Tally>
class RestoreWindow {
 public:
  RestoreWindow(Store& store, size_t window, Tally& out)
      : store_(store), window_(window), out_(out) {}
  RestoreWindow(const RestoreWindow&) = delete;
  RestoreWindow& operator=(const RestoreWindow&) = delete;
  ~RestoreWindow() { Drain(); }

  // Blocks while `window` writes are in flight. `where` names the message in
  // a problem ("WHERE: reason").
  void Add(RestoreRequest req, std::string where) {
    uint64_t size = req.content.size();
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return in_flight_ < window_; });
      ++in_flight_;
    }
    store_.RestoreMessage(std::move(req),
                          [this, size, where = std::move(where)](Result<RestoreResult> r) {
                            std::lock_guard lock(mu_);
                            if (!r) {
                              out_.problems.push_back(where + ": " + r.error().message);
                            } else if (r->added) {
                              ++out_.added;
                              out_.bytes += size;
                            } else {
                              ++out_.skipped;
                            }
                            --in_flight_;
                            cv_.notify_all();
                          });
  }

  // Waits until every write has its result.
  void Drain() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return in_flight_ == 0; });
  }

  // Runs f(out) under the lock the results are tallied under (progress,
  // problems of the caller's own).
  template <typename F>
  auto Locked(F&& f) {
    std::lock_guard lock(mu_);
    return f(out_);
  }

 private:
  Store& store_;
  size_t window_;
  Tally& out_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t in_flight_ = 0;
};

}  // namespace hato::store
