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
// Thread-safety: all methods may be called from any thread; Member::EndSession
// is called on the thread calling Add or Changed (the event loop).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

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
      if (!stale) live_[account_id].push_back({m, epoch});
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
  // before. Returns how many were ended.
  size_t Changed(int64_t account_id, int64_t epoch) {
    std::vector<Member*> ended;
    {
      std::lock_guard lock(mu_);
      int64_t& latest = latest_[account_id];
      latest = std::max(latest, epoch);
      auto it = live_.find(account_id);
      if (it != live_.end()) {
        auto& v = it->second;
        for (size_t i = 0; i < v.size();) {
          if (v[i].epoch < epoch) {
            ended.push_back(v[i].member);
            v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
          } else {
            ++i;
          }
        }
        if (v.empty()) live_.erase(it);
      }
    }
    for (Member* m : ended) m->EndSession();
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
  };
  mutable std::mutex mu_;
  std::map<int64_t, std::vector<Entry>> live_;   // guarded by mu_
  std::unordered_map<int64_t, int64_t> latest_;  // accounts changed while serving; guarded by mu_
};

}  // namespace hato::server
