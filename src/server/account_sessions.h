// The live, authenticated sessions of each account (issue 11 item 7), so that
// a password change, an account removal or a "sign out everywhere" ends them:
// IMAP says "* BYE", POP3 and SMTP submission close.
//
// How a change reaches a running server: every such change (hato user passwd
// / remove, run as a separate process) bumps the account's session epoch in
// the store, in the same transaction (Store::SessionEpochsSince). A session
// remembers the epoch it read with the password it checked; `hato serve`
// asks the store every kSessionEpochPollInterval for epochs newer than the
// last it saw and calls Changed, which ends every session of that account
// that logged in before the change. A login whose check raced with the change
// (it read the old epoch) is ended when it registers. So the only channel is
// the store every process already shares: no socket, no signal, nothing to
// authenticate, and it works for the PostgreSQL backend the same way.
//
// Thread-safety: all methods may be called from any thread. Member::EndSession
// is called on the member's own event loop (server/event_loops.h): at once
// by Add (which runs there), and by Changed through a call posted to that
// loop, made only if the member is still registered then (members leave from
// their own loop, so a member found there is alive).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "server/event_loops.h"

namespace hato::server {

inline constexpr std::chrono::milliseconds kSessionEpochPollInterval{1000};

class AccountSessions {
 public:
  class Member {
   public:
    virtual ~Member() = default;
    // The account changed under the session: reply its protocol's closing
    // line and close as soon as possible (a read in progress is cancelled).
    virtual void EndSession() = 0;
  };

  // Registers `m`, authenticated as `account_id` with the epoch read during
  // its login. Ends it at once when the account already changed since then.
  void Add(int64_t account_id, int64_t epoch, Member* m) {
    bool stale = false;
    {
      std::lock_guard lock(mu_);
      auto it = latest_.find(account_id);
      stale = it != latest_.end() && it->second > epoch;
      if (!stale) live_[account_id].push_back({m, epoch, CurrentLoop(), ++generation_});
    }
    if (stale) m->EndSession();
  }
  void Remove(int64_t account_id, Member* m) {
    std::lock_guard lock(mu_);
    auto it = live_.find(account_id);
    if (it == live_.end()) return;
    auto& v = it->second;
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i].member == m) {
        v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
    }
    if (v.empty()) live_.erase(it);
  }
  // The account's epoch is now `epoch`: ends its sessions that logged in
  // before (each on its own loop, soon after). Returns how many.
  size_t Changed(int64_t account_id, int64_t epoch) {
    std::vector<Entry> ended;
    {
      std::lock_guard lock(mu_);
      int64_t& latest = latest_[account_id];
      latest = std::max(latest, epoch);
      auto it = live_.find(account_id);
      if (it != live_.end()) {
        for (const Entry& e : it->second) {
          if (e.epoch < epoch) ended.push_back(e);
        }
      }
    }
    for (const Entry& e : ended) {
      RunOnLoop(e.loop, [this, account_id, m = e.member, id = e.id] {
        if (Take(account_id, m, id)) m->EndSession();
      });
    }
    return ended.size();
  }
  size_t live() const {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& [id, v] : live_) n += v.size();
    return n;
  }

  // Registration for the lifetime of a session: Remove on destruction.
  class Registration {
   public:
    Registration() = default;
    Registration(AccountSessions* r, int64_t account_id, int64_t epoch, Member* m)
        : r_(r), account_(account_id), m_(m) {
      if (r_) r_->Add(account_, epoch, m_);
    }
    Registration(Registration&& o) noexcept
        : r_(std::exchange(o.r_, nullptr)), account_(o.account_), m_(o.m_) {}
    Registration& operator=(Registration&& o) noexcept {
      if (this != &o) {
        Reset();
        r_ = std::exchange(o.r_, nullptr);
        account_ = o.account_;
        m_ = o.m_;
      }
      return *this;
    }
    Registration(const Registration&) = delete;
    ~Registration() { Reset(); }
    void Reset() {
      if (r_) r_->Remove(account_, m_);
      r_ = nullptr;
    }

   private:
    AccountSessions* r_ = nullptr;
    int64_t account_ = 0;
    Member* m_ = nullptr;
  };

 private:
  struct Entry {
    Member* member;
    int64_t epoch;
    std::optional<asio::any_io_executor> loop;  // where the member lives
    uint64_t id;  // tells a member from a later one at the same address
  };
  // Unregisters `m` if it is still the registration `id`; false otherwise.
  bool Take(int64_t account_id, Member* m, uint64_t id) {
    std::lock_guard lock(mu_);
    auto it = live_.find(account_id);
    if (it == live_.end()) return false;
    auto& v = it->second;
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i].member == m && v[i].id == id) {
        v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
        if (v.empty()) live_.erase(it);
        return true;
      }
    }
    return false;
  }
  mutable std::mutex mu_;
  std::map<int64_t, std::vector<Entry>> live_;   // guarded by mu_
  std::unordered_map<int64_t, int64_t> latest_;  // accounts changed while serving; guarded by mu_
  uint64_t generation_ = 0;                      // guarded by mu_
};

}  // namespace hato::server
