// The sharded store: a router over one PgStore per shard (sharded.h).
#include "store/postgres/sharded.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "base/strings.h"
#include "store/postgres/conn.h"
#include "store/postgres/pg_ops.h"
#include "store/postgres/schema.h"
#include "store/postgres/shard_ops.h"

namespace hato::store {
namespace {

using pg::Conn;
using pg::ConnOptions;
using pg::P;

constexpr const char* kDirectoryChannel = "hato_directory";
// A write refused because its account moved (or is being moved) is sent
// again this often, for at most this long (a move holds writes while it
// copies the last changes: seconds for an ordinary mailbox).
constexpr int64_t kMoveRetryMs = 200;
constexpr int64_t kMoveRetrySeconds = 30;
constexpr int kMaxMoveRetries = static_cast<int>(kMoveRetrySeconds * 1000 / kMoveRetryMs);
// Shards one store can have, main included (ShardList).
constexpr size_t kMaxShards = 256;
// A backup reads the shards again when accounts moved meanwhile, this often at most.
constexpr int kSnapshotAttempts = 3;

ConnOptions AdminOptions(const PostgresOptions& pg, const std::string& conninfo) {
  ConnOptions o;
  o.conninfo = conninfo;
  o.connect_timeout_seconds = pg.connect_timeout_seconds;
  o.statement_timeout_ms = pg.statement_timeout_ms;
  o.query_timeout_ms = pg.statement_timeout_ms + 2000;
  return o;
}

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// Runs delayed retries off the writer threads (their callbacks must only hand off).
class Retrier {
 public:
  Retrier() : thread_([this] { Loop(); }) {}
  ~Retrier() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void Later(int64_t ms, std::function<void()> fn) {
    {
      std::lock_guard lock(mu_);
      due_.emplace(std::chrono::steady_clock::now() + std::chrono::milliseconds(ms), std::move(fn));
    }
    cv_.notify_all();
  }

 private:
  void Loop() {
    std::unique_lock lock(mu_);
    while (true) {
      if (stopping_ && due_.empty()) return;
      if (due_.empty()) {
        cv_.wait(lock);
        continue;
      }
      auto first = due_.begin();
      if (!stopping_ && first->first > std::chrono::steady_clock::now()) {
        cv_.wait_until(lock, first->first);
        continue;
      }
      auto fn = std::move(first->second);
      due_.erase(first);
      lock.unlock();
      fn();
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::multimap<std::chrono::steady_clock::time_point, std::function<void()>> due_;
  bool stopping_ = false;
  std::thread thread_;
};

struct Shard {
  std::string name;
  std::string conninfo;
  int number = 0;
  std::atomic<bool> closed{false};  // set again by a reload (ReloadShards)
  std::unique_ptr<Store> store;
  std::mutex admin_mu;
  std::unique_ptr<Conn> admin;  // guarded by admin_mu: directory and lookups
};

// The open shards: read by every thread without a lock, appended to (only)
// by Open and ReloadShards under the store's reload mutex. A shard, once
// listed, stays at its index until the store is destroyed, so readers that
// saw size() n may use [0, n) while a later one is being added.
class ShardList {
 public:
  size_t size() const { return count_.load(std::memory_order_acquire); }
  bool full() const { return size() == kMaxShards; }
  std::unique_ptr<Shard>& operator[](size_t i) { return slots_[i]; }
  std::unique_ptr<Shard>* begin() { return slots_.data(); }
  std::unique_ptr<Shard>* end() { return slots_.data() + size(); }
  void push_back(std::unique_ptr<Shard> shard) {
    size_t n = size();
    slots_[n] = std::move(shard);
    count_.store(n + 1, std::memory_order_release);
  }
  void clear() {
    for (size_t n = size(); n > 0; --n) {
      count_.store(n - 1, std::memory_order_release);
      slots_[n - 1].reset();
    }
  }

 private:
  std::array<std::unique_ptr<Shard>, kMaxShards> slots_;
  std::atomic<size_t> count_{0};
};

class ShardedStore final : public Store {
 public:
  using Store::AddAccount;
  using Store::SetPassword;

  ShardedStore(PostgresOptions pg, ShardingOptions sharding)
      : pg_(std::move(pg)), sharding_(std::move(sharding)) {}

  ~ShardedStore() override {
    {
      std::lock_guard lock(cache_mu_);
      stopping_ = true;
    }
    if (listen_thread_.joinable()) listen_thread_.join();
    // Writes failing from now on are not sent again; the pending retries
    // run (and end) while the shards are still open, then the shards'
    // writers finish their queues.
    closing_ = true;
    retrier_.reset();
    shards_.clear();
  }

  Status Open(const StoreOptions& options) {
    std::lock_guard lock(reload_mu_);
    options_ = options;
    std::vector<ShardSpec> specs{{kMainShard, pg_.conninfo}};
    for (const auto& s : sharding_.shards) specs.push_back(s);
    for (const auto& spec : specs) {
      if (auto st = AddShard(spec, sharding_.closed); !st) return st;
    }
    retrier_ = std::make_unique<Retrier>();
    listen_thread_ = std::thread([this] { ListenLoop(); });
    return Ok();
  }

  // A reload (SIGHUP): shards new in `sharding` are opened, numbered and
  // listed; every shard's closed flag is set again. A shard removed from the
  // list or given another URL stays as it is until a restart (logged).
  Status Reload(const ShardingOptions& sharding, std::vector<std::string>& added) {
    if (shards_.size() == 0) return Err(ErrorKind::kInvalid, "the store is not open");
    std::lock_guard lock(reload_mu_);
    for (const auto& spec : sharding.shards) {
      bool known = false;
      for (auto& sh : shards_) {
        if (sh->name != spec.name) continue;
        known = true;
        if (sh->conninfo != spec.conninfo) {
          spdlog::warn("reload: shard {} has a new URL; it applies at restart", spec.name);
        }
      }
      if (known) continue;
      if (auto st = AddShard(spec, sharding.closed); !st) return st;
      added.push_back(spec.name);
    }
    for (auto& sh : shards_) {
      bool listed = sh->name == kMainShard;
      for (const auto& spec : sharding.shards) listed = listed || spec.name == sh->name;
      if (!listed) {
        spdlog::warn("reload: shard {} is no longer listed; it stays open until a restart",
                     sh->name);
      }
      bool closed = false;
      for (const auto& c : sharding.closed) closed = closed || c == sh->name;
      sh->closed = closed;
    }
    if (sharding.placement != sharding_.placement) {
      spdlog::warn("reload: [store] placement changes apply at restart");
    }
    return Ok();
  }

  // Opens one shard (migrating its schema), numbers it in main, sets its id
  // floor, copies the domains and lists it. reload_mu_ held.
  Status AddShard(const ShardSpec& spec, const std::vector<std::string>& closed_shards) {
    if (shards_.full()) {
      return Err(ErrorKind::kTooLarge, "more than " + std::to_string(kMaxShards) + " shards");
    }
    auto sh = std::make_unique<Shard>();
    sh->name = spec.name;
    sh->conninfo = spec.conninfo;
    sh->admin = std::make_unique<Conn>(AdminOptions(pg_, spec.conninfo));
    bool closed = false;
    for (const auto& c : closed_shards) closed = closed || c == spec.name;
    sh->closed = closed;
    PostgresOptions o = pg_;
    o.conninfo = spec.conninfo;
    o.guard_moves = true;
    auto st = OpenPostgresStore(o, options_);
    if (!st) return Err(st.error().kind, "shard " + spec.name + ": " + st.error().message);
    sh->store = std::move(*st);
    if (change_listener_) sh->store->SetChangeListener(change_listener_);
    if (copy_listener_) sh->store->SetCopyListener(copy_listener_);
    if (record_listener_) sh->store->SetRecordListener(record_listener_);
    if (shards_.size() > 0) {
      auto num = Admin(0, [&](Conn& c) { return pg::RegisterShard(c, spec.name); });
      if (!num) return Err(num.error().kind, "shard " + spec.name + ": " + num.error().message);
      sh->number = *num;
      std::lock_guard admin_lock(sh->admin_mu);
      Conn& c = *sh->admin;
      Status ready = c.Connect();
      if (ready) ready = pg::SetIdFloor(c, *num);
      if (ready) {
        std::lock_guard main_lock(shards_[0]->admin_mu);
        ready = shards_[0]->admin->Connect();
        if (ready) ready = pg::CopyDomains(*shards_[0]->admin, c);
      }
      if (!ready) {
        return Err(ready.error().kind, "shard " + spec.name + ": " + ready.error().message);
      }
    }
    Shard* added = sh.get();
    shards_.push_back(std::move(sh));
    if (added->number > 0 && shards_.size() > 1) {
      // A domain added while this shard was opened was not copied to it by
      // AddDomain (it was not listed yet): copy the domains once more.
      std::lock_guard admin_lock(added->admin_mu);
      std::lock_guard main_lock(shards_[0]->admin_mu);
      Status again = shards_[0]->admin->Connect();
      if (again) again = added->admin->Connect();
      if (again) again = pg::CopyDomains(*shards_[0]->admin, *added->admin);
      if (!again) {
        spdlog::warn("shard {}: domains not copied again: {}", added->name, again.error().message);
      }
    }
    return Ok();
  }

  // ---- Domains and accounts: main, copied where shards need them ----

  Status AddDomain(std::string_view domain) override {
    if (auto st = Main().AddDomain(domain); !st) return st;
    for (size_t i = 1; i < shards_.size(); ++i) {
      auto st = shards_[i]->store->AddDomain(domain);
      if (!st && st.error().kind != ErrorKind::kExists) return st;
    }
    return Ok();
  }
  Status RemoveDomain(std::string_view domain) override {
    if (auto st = Main().RemoveDomain(domain); !st) return st;
    for (size_t i = 1; i < shards_.size(); ++i) {
      auto st = shards_[i]->store->RemoveDomain(domain);
      if (!st && st.error().kind != ErrorKind::kNotFound) {
        spdlog::warn("shard {}: domain {} not removed: {}", shards_[i]->name, domain,
                     st.error().message);
      }
    }
    return Ok();
  }
  Result<std::vector<std::string>> ListDomains() override { return Main().ListDomains(); }
  Result<bool> IsLocalDomain(std::string_view domain) override {
    return Main().IsLocalDomain(domain);
  }

  // The identity goes to main; the mail to the shard the policy picks, with
  // a copy of the account row (same id), and the directory says where.
  Status AddAccount(std::string_view address, std::string_view password_hash,
                    std::string_view scram_sha256) override {
    auto target = PickShard(address);
    if (!target) return target.error();
    if (auto st = Main().AddAccount(address, password_hash, scram_sha256); !st) return st;
    auto acc = Main().FindAccount(address);
    if (!acc) return acc.error();
    int64_t id = acc->id;
    size_t to = *target;
    if (to != 0) {
      auto st = Admin(to, [&](Conn& shard) -> Result<bool> {
        std::lock_guard lock(shards_[0]->admin_mu);
        Conn& main = *shards_[0]->admin;
        if (auto s = main.Connect(); !s) return s.error();
        if (auto s = shard.Exec("BEGIN"); !s) return s.error();
        auto fail = [&](const Error& e) -> Result<bool> {
          (void)shard.Exec("ROLLBACK");
          return e;
        };
        if (auto s = pg::EnsureAccountCopy(main, shard, id, ""); !s) return fail(s.error());
        pg::Txn t{shard, true, {}, {}, false};
        if (auto s = pg::CreateDefaultMailboxes(t, id); !s) return fail(s.error());
        if (auto s = shard.Exec("COMMIT"); !s) return s.error();
        return true;
      });
      if (!st) return st.error();
    }
    // The directory row (and, for another shard, main's mailboxes made by
    // AddAccount dropped and its row marked), in one transaction on main.
    auto st = Admin(0, [&](Conn& main) -> Result<bool> {
      if (auto s = main.Exec("BEGIN"); !s) return s.error();
      auto fail = [&](const Error& e) -> Result<bool> {
        (void)main.Exec("ROLLBACK");
        return e;
      };
      if (to != 0) {
        if (auto s = pg::DeleteAccountMail(main, id, false); !s) return fail(s.error());
        if (auto s = main.Exec("UPDATE accounts SET moved_to = $2 WHERE id = $1",
                               {P(id), P(shards_[to]->name)});
            !s) {
          return fail(s.error());
        }
      }
      auto r = main.Exec(
          "INSERT INTO shard_directory(account_id, shard) VALUES($1, $2) ON CONFLICT "
          "(account_id) DO UPDATE SET shard = excluded.shard",
          {P(id), P(shards_[to]->name)});
      if (!r) return fail(r.error());
      if (auto s = main.Exec("SELECT pg_notify($1, $2)", {P(kDirectoryChannel), P(id)}); !s) {
        return fail(s.error());
      }
      if (auto s = main.Exec("COMMIT"); !s) return s.error();
      return true;
    });
    if (!st) return st.error();
    Invalidate(id);
    return Ok();
  }

  Status SetPassword(std::string_view address, std::string_view password_hash,
                     std::string_view scram_sha256) override {
    return Main().SetPassword(address, password_hash, scram_sha256);
  }

  Status RemoveAccount(std::string_view address) override {
    auto acc = Main().FindAccount(address);
    if (auto st = Main().RemoveAccount(address); !st) return st;
    if (acc) {
      if (auto home = HomeOf(acc->id); home && *home != 0) {
        auto st = shards_[*home]->store->RemoveAccount(address);
        if (!st) spdlog::warn("shard: {} not marked removed: {}", address, st.error().message);
      }
    }
    return Ok();
  }

  Status RestoreAccount(std::string_view address) override {
    if (auto st = Main().RestoreAccount(address); !st) return st;
    auto acc = Main().FindAccount(address);
    if (acc) {
      if (auto home = HomeOf(acc->id); home && *home != 0) {
        auto st = shards_[*home]->store->RestoreAccount(address);
        if (!st && st.error().kind != ErrorKind::kExists) return st;
      }
    }
    return Ok();
  }

  Status PurgeAccount(std::string_view address) override {
    if (auto st = Main().PurgeAccount(address); !st) return st;
    for (size_t i = 1; i < shards_.size(); ++i) {
      auto st = shards_[i]->store->PurgeAccount(address);
      if (!st && st.error().kind != ErrorKind::kNotFound) return st;
    }
    return Ok();
  }

  Status PurgeAccountById(int64_t id) override {
    if (auto st = Main().PurgeAccountById(id); !st) return st;
    for (size_t i = 1; i < shards_.size(); ++i) {
      auto st = Admin(i, [id](Conn& c) -> Result<bool> {
        if (auto s = pg::DeleteAccountMail(c, id, true); !s) return s.error();
        return true;
      });
      if (!st) return st.error();
    }
    (void)Admin(0, [id](Conn& c) -> Result<bool> {
      auto r = c.Exec("DELETE FROM shard_directory WHERE account_id = $1", {P(id)});
      if (!r) return r.error();
      return true;
    });
    Invalidate(id);
    return Ok();
  }

  // Main knows every account; the message counts come from each one's shard.
  Result<std::vector<AccountSummary>> ListAccounts() override {
    auto all = Main().ListAccounts();
    if (!all || shards_.size() == 1) return all;
    auto homes = Admin(0, [](Conn& c) -> Result<std::unordered_map<std::string, std::string>> {
      auto r = c.Exec(
          "SELECT a.address, d.shard FROM shard_directory d JOIN accounts a ON a.id = "
          "d.account_id WHERE a.removed_at IS NULL AND d.shard != 'main'");
      if (!r) return r.error();
      std::unordered_map<std::string, std::string> out;
      for (int i = 0; i < r->size(); ++i) out[r->Text(i, 0)] = r->Text(i, 1);
      return out;
    });
    if (!homes) return homes.error();
    for (size_t i = 1; i < shards_.size(); ++i) {
      auto part = shards_[i]->store->ListAccounts();
      if (!part) return part.error();
      std::unordered_map<std::string, const AccountSummary*> by;
      for (const auto& a : *part) by[a.address] = &a;
      for (auto& a : *all) {
        auto h = homes->find(a.address);
        if (h == homes->end() || h->second != shards_[i]->name) continue;
        if (auto f = by.find(a.address); f != by.end()) {
          a.messages = f->second->messages;
          a.bytes = f->second->bytes;
        }
      }
    }
    return all;
  }

  Result<Account> FindAccount(std::string_view address) override {
    return Main().FindAccount(address);
  }
  Result<Account> ResolveRecipient(std::string_view address) override {
    return Main().ResolveRecipient(address);
  }
  Result<Account> FirstAccount() override { return Main().FirstAccount(); }
  Status AddAlias(std::string_view alias, std::string_view account) override {
    return Main().AddAlias(alias, account);
  }
  Status RemoveAlias(std::string_view alias) override { return Main().RemoveAlias(alias); }
  Result<std::vector<AliasInfo>> ListAliases(std::string_view account) override {
    return Main().ListAliases(account);
  }
  // Main for the admin's view, the account's shard for enforcement.
  Status SetQuota(std::string_view address, std::optional<uint64_t> limit_bytes) override {
    if (auto st = Main().SetQuota(address, limit_bytes); !st) return st;
    auto acc = Main().FindAccount(address);
    if (!acc) return acc.error();
    for (int attempt = 0;; ++attempt) {
      auto home = HomeOf(acc->id);
      if (!home) return home.error();
      if (*home == 0) return Ok();
      auto st = shards_[*home]->store->SetQuota(address, limit_bytes);
      if (st || attempt >= 3 || !Moved(acc->id, *home)) return st;
    }
  }
  Result<QuotaUsage> GetQuota(int64_t account_id) override {
    return Read(account_id, [&](Store& s) { return s.GetQuota(account_id); });
  }

  // ---- Mail ----

  // Every shard is a PostgreSQL store, which encodes its rows itself when it
  // writes them (PipelinedDeliveries): there is nothing to prepare.
  void PrepareDelivery(DeliveryRequest& request) const override { (void)request; }

  void Deliver(DeliveryRequest request, Done<DeliveryReceipt> done) override {
    DeliverRouted(std::make_shared<const DeliveryRequest>(std::move(request)), std::move(done), 0);
  }

  Result<MailboxSnapshot> ListMessages(int64_t account_id, std::string_view mailbox) override {
    auto r = Read(account_id, [&](Store& s) { return s.ListMessages(account_id, mailbox); });
    if (r) RememberMailbox(r->mailbox_id, account_id);
    return r;
  }
  Result<std::string> ReadMessage(int64_t account_id, int64_t message_id) override {
    return Read(account_id, [&](Store& s) { return s.ReadMessage(account_id, message_id); });
  }
  void SetFlags(int64_t account_id, std::vector<int64_t> message_ids, FlagChange change,
                Done<FlagResult> done) override {
    Write<FlagResult>(
        account_id,
        [account_id, ids = std::move(message_ids), change = std::move(change)](
            Store& s, Done<FlagResult> d) { s.SetFlags(account_id, ids, change, std::move(d)); },
        std::move(done));
  }
  void Expunge(int64_t account_id, std::vector<int64_t> message_ids, Done<void> done) override {
    Write<void>(
        account_id,
        [account_id, ids = std::move(message_ids)](Store& s, Done<void> d) {
          s.Expunge(account_id, ids, std::move(d));
        },
        std::move(done));
  }

  Result<std::vector<MailboxInfo>> ListMailboxes(int64_t account_id) override {
    auto r = Read(account_id, [&](Store& s) { return s.ListMailboxes(account_id); });
    if (r) {
      for (const auto& m : *r) RememberMailbox(m.id, account_id);
    }
    return r;
  }
  void CreateMailbox(int64_t account_id, std::string name, std::string special_use,
                     Done<void> done) override {
    Write<void>(
        account_id,
        [=](Store& s, Done<void> d) {
          s.CreateMailbox(account_id, name, special_use, std::move(d));
        },
        std::move(done));
  }
  void DeleteMailbox(int64_t account_id, std::string name, Done<void> done) override {
    Write<void>(
        account_id,
        [=](Store& s, Done<void> d) { s.DeleteMailbox(account_id, name, std::move(d)); },
        std::move(done));
  }
  void RenameMailbox(int64_t account_id, std::string from, std::string to,
                     Done<void> done) override {
    Write<void>(
        account_id,
        [=](Store& s, Done<void> d) { s.RenameMailbox(account_id, from, to, std::move(d)); },
        std::move(done));
  }
  void SetSubscribed(int64_t account_id, std::string name, bool subscribed,
                     Done<void> done) override {
    Write<void>(
        account_id,
        [=](Store& s, Done<void> d) {
          s.SetSubscribed(account_id, name, subscribed, std::move(d));
        },
        std::move(done));
  }
  Result<std::vector<std::string>> ListOrphanSubscriptions(int64_t account_id) override {
    return Read(account_id, [&](Store& s) { return s.ListOrphanSubscriptions(account_id); });
  }
  void Append(AppendRequest request, Done<AppendResult> done) override {
    int64_t account_id = request.account_id;
    auto req = std::make_shared<const AppendRequest>(std::move(request));
    Write<AppendResult>(
        account_id, [req](Store& s, Done<AppendResult> d) { s.Append(*req, std::move(d)); },
        std::move(done));
  }
  void AppendMany(std::vector<AppendRequest> requests,
                  Done<std::vector<AppendResult>> done) override {
    if (requests.empty()) {
      Main().AppendMany(std::move(requests), std::move(done));
      return;
    }
    // IMAP MULTIAPPEND is to one mailbox of one account.
    int64_t account_id = requests.front().account_id;
    auto reqs = std::make_shared<const std::vector<AppendRequest>>(std::move(requests));
    Write<std::vector<AppendResult>>(
        account_id,
        [reqs](Store& s, Done<std::vector<AppendResult>> d) { s.AppendMany(*reqs, std::move(d)); },
        std::move(done));
  }
  void CopyMessages(int64_t account_id, std::vector<int64_t> message_ids, std::string to_mailbox,
                    bool move, Done<CopyResult> done) override {
    Write<CopyResult>(
        account_id,
        [=, ids = std::move(message_ids)](Store& s, Done<CopyResult> d) {
          s.CopyMessages(account_id, ids, to_mailbox, move, std::move(d));
        },
        std::move(done));
  }
  Result<MailboxChanges> ListChanges(int64_t mailbox_id, uint64_t since) override {
    return ReadMailbox(mailbox_id, [&](Store& s) { return s.ListChanges(mailbox_id, since); });
  }
  Result<MailboxChanges> ListChangesPage(int64_t mailbox_id, uint64_t since, size_t max_rows,
                                         size_t max_bytes) override {
    return ReadMailbox(mailbox_id, [&](Store& s) {
      return s.ListChangesPage(mailbox_id, since, max_rows, max_bytes);
    });
  }
  Result<std::vector<MessageMeta>> ListMessagesByUid(
      int64_t mailbox_id, const std::vector<std::pair<uint32_t, uint32_t>>& ranges) override {
    return ReadMailbox(mailbox_id,
                       [&](Store& s) { return s.ListMessagesByUid(mailbox_id, ranges); });
  }
  Result<std::vector<uint32_t>> ListVanished(int64_t mailbox_id, uint64_t since) override {
    return ReadMailbox(mailbox_id, [&](Store& s) { return s.ListVanished(mailbox_id, since); });
  }
  void ClaimRecent(int64_t mailbox_id, uint32_t up_to_uid, Done<uint32_t> done) override {
    auto account = MailboxAccount(mailbox_id);
    if (!account) {
      done(account.error());
      return;
    }
    Write<uint32_t>(
        *account,
        [=](Store& s, Done<uint32_t> d) { s.ClaimRecent(mailbox_id, up_to_uid, std::move(d)); },
        std::move(done));
  }
  Result<TextMatches> SearchText(int64_t mailbox_id, std::string_view needle,
                                 bool with_header) override {
    return ReadMailbox(mailbox_id,
                       [&](Store& s) { return s.SearchText(mailbox_id, needle, with_header); });
  }
  Result<std::string> ReadMimeTree(int64_t account_id, int64_t message_id) override {
    return Read(account_id, [&](Store& s) { return s.ReadMimeTree(account_id, message_id); });
  }
  Result<std::vector<std::pair<int64_t, std::string>>> ReadSortKeys(int64_t account_id,
                                                                    int64_t mailbox_id) override {
    return Read(account_id, [&](Store& s) { return s.ReadSortKeys(account_id, mailbox_id); });
  }
  Result<size_t> BackfillSortKeys(size_t max_bodies) override {
    size_t filled = 0;
    for (auto& s : shards_) {
      auto n = s->store->BackfillSortKeys(max_bodies);
      if (!n) return n.error();
      filled += *n;
    }
    return filled;
  }
  void SetChangeListener(std::function<void(const std::vector<int64_t>&)> listener) override {
    std::lock_guard lock(reload_mu_);
    change_listener_ = listener;
    for (auto& s : shards_) s->store->SetChangeListener(listener);
  }
  void SetCopyListener(CopyListener listener) override {
    std::lock_guard lock(reload_mu_);
    copy_listener_ = listener;
    for (auto& s : shards_) s->store->SetCopyListener(listener);
  }
  void SetRecordListener(RecordListener listener) override {
    std::lock_guard lock(reload_mu_);
    record_listener_ = listener;
    for (auto& s : shards_) s->store->SetRecordListener(listener);
  }
  StoreHealth Health() override {
    StoreHealth h;
    for (auto& s : shards_) {
      StoreHealth one = s->store->Health();
      h.pending_writes += one.pending_writes;
      h.commit_in_flight_ms = std::max(h.commit_in_flight_ms, one.commit_in_flight_ms);
      h.last_commit_ms = std::max(h.last_commit_ms, one.last_commit_ms);
    }
    return h;
  }

  // ---- Outbound queue, tokens, sessions, admin, lists: main ----

  Result<std::vector<QueuedMessage>> ListDueOutbound(int64_t now, size_t limit) override {
    return Main().ListDueOutbound(now, limit);
  }
  Result<std::vector<QueuedMessage>> ListPendingDsn(size_t limit) override {
    return Main().ListPendingDsn(limit);
  }
  Result<std::vector<QueuedMessage>> ListQueue() override { return Main().ListQueue(); }
  Result<QueuedMessage> GetQueued(int64_t id) override { return Main().GetQueued(id); }
  Result<std::string> ReadQueuedContent(int64_t id) override {
    return Main().ReadQueuedContent(id);
  }
  void RecordOutcomes(std::vector<RecipientOutcome> outcomes, Done<void> done) override {
    Main().RecordOutcomes(std::move(outcomes), std::move(done));
  }
  Status ApplyQueueAction(int64_t id, QueueAction action) override {
    return Main().ApplyQueueAction(id, action);
  }
  Result<QueueStats> GetQueueStats() override { return Main().GetQueueStats(); }
  Result<uint64_t> CountSubmissions(int64_t account_id, int64_t since) override {
    return Main().CountSubmissions(account_id, since);
  }
  Result<std::vector<QueuedRecipient>> ListFinishedRecipients(int64_t queue_id) override {
    return Main().ListFinishedRecipients(queue_id);  // the queue lives in the main database
  }

  Status CreateList(std::string_view address, ListMode mode) override {
    return Main().CreateList(address, mode);
  }
  Status RemoveList(std::string_view address) override { return Main().RemoveList(address); }
  Result<std::vector<ListInfo>> ListLists() override { return Main().ListLists(); }
  Result<std::vector<ListInfo>> ListsOfMember(std::string_view address) override {
    return Main().ListsOfMember(address);
  }
  Result<ListInfo> FindList(std::string_view address) override { return Main().FindList(address); }
  Status UpdateList(std::string_view address, const ListSettings& settings) override {
    return Main().UpdateList(address, settings);
  }
  Result<ListMemberChange> AddListMembers(int64_t list_id, std::vector<ListMember> members,
                                          bool update) override {
    return Main().AddListMembers(list_id, std::move(members), update);
  }
  Status RemoveListMember(int64_t list_id, std::string_view address) override {
    return Main().RemoveListMember(list_id, address);
  }
  Result<std::vector<ListMember>> ListListMembers(int64_t list_id) override {
    return Main().ListListMembers(list_id);
  }
  Result<ListMember> FindListMember(int64_t list_id, std::string_view address) override {
    return Main().FindListMember(list_id, address);
  }
  Status SetListMemberDelivery(int64_t list_id, std::string_view address,
                               std::optional<bool> delivery, bool reenable) override {
    return Main().SetListMemberDelivery(list_id, address, delivery, reenable);
  }
  Result<ListMember> RecordListBounce(int64_t list_id, std::string_view address,
                                      std::string_view reason, uint32_t threshold) override {
    return Main().RecordListBounce(list_id, address, reason, threshold);
  }
  Status CreateListToken(const ListToken& token) override { return Main().CreateListToken(token); }
  Result<ListToken> ConsumeListToken(std::string_view token, int64_t now) override {
    return Main().ConsumeListToken(token, now);
  }
  Result<uint64_t> CountListTokens(int64_t list_id, std::string_view address,
                                   std::string_view source, int64_t since) override {
    return Main().CountListTokens(list_id, address, source, since);
  }
  Result<int64_t> HoldListPost(int64_t list_id, std::string_view content, std::string_view sender,
                               std::string_view reason) override {
    return Main().HoldListPost(list_id, content, sender, reason);
  }
  Result<std::vector<HeldPost>> ListHeldPosts(int64_t list_id) override {
    return Main().ListHeldPosts(list_id);
  }
  Result<std::string> ReadHeldPost(int64_t held_id) override {
    return Main().ReadHeldPost(held_id);
  }
  Status DropHeldPost(int64_t held_id) override { return Main().DropHeldPost(held_id); }
  void PostToList(ListPostRequest request, Done<ListPostReceipt> done) override {
    Main().PostToList(std::move(request), std::move(done));
  }
  Result<std::vector<ListPostInfo>> ListPosts(int64_t list_id) override {
    return Main().ListPosts(list_id);
  }
  Result<uint64_t> CountListPostsSince(int64_t list_id, int64_t since) override {
    return Main().CountListPostsSince(list_id, since);
  }
  Result<ListReport> ListPostReport(int64_t list_id, int64_t post_id) override {
    return Main().ListPostReport(list_id, post_id);
  }
  Status RecordListPostFailure(int64_t post_id, std::string_view address,
                               std::string_view reason) override {
    return Main().RecordListPostFailure(post_id, address, reason);
  }
  void MarkInFlight(std::vector<int64_t> ids, Done<std::vector<int64_t>> done) override {
    Main().MarkInFlight(std::move(ids), std::move(done));
  }
  Result<uint64_t> ResolveInFlight() override { return Main().ResolveInFlight(); }

  // ---- Maintenance: every shard ----

  Result<uint64_t> PurgeExpired(int64_t cutoff) override {
    uint64_t n = 0;
    for (auto& s : shards_) {
      auto one = s->store->PurgeExpired(cutoff);
      if (!one) return one.error();
      n += *one;
    }
    if (auto st = DeleteMovedCopies(); !st) return st.error();
    return n;
  }
  Result<uint64_t> IndexMissingText(const TextExtractor& extract) override {
    uint64_t n = 0;
    for (auto& s : shards_) {
      auto one = s->store->IndexMissingText(extract);
      if (!one) return one.error();
      n += *one;
    }
    return n;
  }
  Result<VerifyReport> Verify() override {
    VerifyReport all;
    for (auto& s : shards_) {
      auto one = s->store->Verify();
      if (!one) return one.error();
      all.blobs_checked += one->blobs_checked;
      for (auto& p : one->problems) all.problems.push_back("shard " + s->name + ": " + p);
      for (auto& d : one->damaged) all.damaged.push_back(d);
    }
    return all;
  }
  Result<uint64_t> RecountMailboxes() override {
    uint64_t n = 0;
    for (auto& s : shards_) {
      auto one = s->store->RecountMailboxes();
      if (!one) return one.error();
      n += *one;
    }
    return n;
  }
  // One backup set for all shards: main's snapshot (everything but the mail
  // of accounts living elsewhere) plus each shard's accounts' mail, merged
  // into one metadata database. Each database is read in its own REPEATABLE
  // READ transaction, so every account is consistent in itself; an account
  // moved between two of them could be missed or taken twice, so the
  // directory is compared before and after and the snapshot taken again.
  Status SnapshotMetadata(const std::string& path) override {
    return SnapshotForBackup(path, nullptr);
  }
  // Each shard's bodies are read in that shard's snapshot transaction, one
  // shard at a time; a retry hands some bodies again (CreateBackup skips
  // those it has).
  Status SnapshotForBackup(const std::string& path, const BackupBody& each) override {
    if (shards_.size() == 1) return Main().SnapshotForBackup(path, each);
    for (int attempt = 0; attempt < kSnapshotAttempts; ++attempt) {
      auto before = DirectoryState();
      if (!before) return before.error();
      std::error_code ignored;
      std::filesystem::remove(path, ignored);
      if (auto st = SnapshotOnce(path, each); !st) {
        std::filesystem::remove(path, ignored);
        return st;
      }
      auto after = DirectoryState();
      if (!after) return after.error();
      if (*after == *before) return Ok();
      spdlog::info("backup: accounts moved while the shards were read; reading them again");
    }
    std::error_code ignored;
    std::filesystem::remove(path, ignored);
    return Err(ErrorKind::kTemporary,
               "accounts kept moving between shards during the backup; try again");
  }
  Result<std::string> ReadBlob(const BlobRef& ref) override {
    Result<std::string> last = Err(ErrorKind::kNotFound, "no such body");
    for (auto& s : shards_) {
      last = s->store->ReadBlob(ref);
      if (last) return last;
    }
    return last;
  }
  void RestoreMessage(RestoreRequest request, Done<RestoreResult> done) override {
    int64_t account_id = request.account_id;
    auto req = std::make_shared<const RestoreRequest>(std::move(request));
    Write<RestoreResult>(
        account_id,
        [req](Store& s, Done<RestoreResult> d) { s.RestoreMessage(*req, std::move(d)); },
        std::move(done));
  }
  Status RepairBlob(std::string_view content) override {
    Status last = Ok();
    for (auto& s : shards_) {
      auto st = s->store->RepairBlob(content);
      if (!st && st.error().kind != ErrorKind::kNotFound) last = st;
    }
    return last;
  }
  Result<uint64_t> Undelete(int64_t account_id, std::string_view mailbox, int64_t since) override {
    return WriteSync(account_id, [&](Store& s) { return s.Undelete(account_id, mailbox, since); });
  }
  Result<std::vector<EmailRow>> ListEmailRows(int64_t account_id, int64_t mailbox_id,
                                              uint64_t since_modseq) override {
    return Read(account_id,
                [&](Store& s) { return s.ListEmailRows(account_id, mailbox_id, since_modseq); });
  }

  // JMAP's indexed reads and documents (issue 12): on the account's shard.
  Result<EmailPage> QueryMailboxEmails(int64_t account_id, int64_t mailbox_id, bool ascending,
                                       uint64_t position, uint64_t limit, bool count) override {
    return Read(account_id, [&](Store& s) {
      return s.QueryMailboxEmails(account_id, mailbox_id, ascending, position, limit, count);
    });
  }
  Result<std::vector<EmailRow>> FindEmailRows(
      int64_t account_id, const std::vector<std::string>& sha_prefixes) override {
    return Read(account_id, [&](Store& s) { return s.FindEmailRows(account_id, sha_prefixes); });
  }
  Result<std::vector<MailboxInfo>> ListMailboxHeads(int64_t account_id) override {
    auto r = Read(account_id, [&](Store& s) { return s.ListMailboxHeads(account_id); });
    if (r) {
      for (const auto& m : *r) RememberMailbox(m.id, account_id);
    }
    return r;
  }
  Result<std::string> GetJmapDocument(int64_t account_id, std::string_view kind) override {
    return Read(account_id, [&](Store& s) { return s.GetJmapDocument(account_id, kind); });
  }
  Status PutJmapDocument(int64_t account_id, std::string_view kind,
                         std::string_view body) override {
    return WriteSyncStatus(account_id,
                           [&](Store& s) { return s.PutJmapDocument(account_id, kind, body); });
  }

  Result<int64_t> AddToken(int64_t account_id, std::string_view hash, std::string_view kind,
                           std::string_view label, int64_t expires_at,
                           size_t max_per_account) override {
    return Main().AddToken(account_id, hash, kind, label, expires_at, max_per_account);
  }
  Result<AccessToken> FindToken(std::string_view hash, int64_t now) override {
    return Main().FindToken(hash, now);
  }
  Result<std::vector<AccessToken>> ListTokens(int64_t account_id, int64_t now) override {
    return Main().ListTokens(account_id, now);
  }
  Status RevokeToken(int64_t account_id, int64_t token_id) override {
    return Main().RevokeToken(account_id, token_id);
  }
  Status TouchToken(int64_t token_id, int64_t now) override {
    return Main().TouchToken(token_id, now);
  }

  // Sieve: the account's shard.
  Result<std::vector<SieveScriptInfo>> ListSieveScripts(int64_t account_id) override {
    return Read(account_id, [&](Store& s) { return s.ListSieveScripts(account_id); });
  }
  Result<std::string> GetSieveScript(int64_t account_id, std::string_view name) override {
    return Read(account_id, [&](Store& s) { return s.GetSieveScript(account_id, name); });
  }
  Result<std::pair<std::string, std::string>> ActiveSieveScript(int64_t account_id) override {
    return Read(account_id, [&](Store& s) { return s.ActiveSieveScript(account_id); });
  }
  Result<std::vector<SieveScriptText>> DeliverySieveScripts(int64_t account_id,
                                                            std::string_view prefix) override {
    return Read(account_id, [&](Store& s) { return s.DeliverySieveScripts(account_id, prefix); });
  }
  Status PutSieveScript(int64_t account_id, std::string_view name,
                        std::string_view content) override {
    return WriteSyncStatus(account_id,
                           [&](Store& s) { return s.PutSieveScript(account_id, name, content); });
  }
  // The member's rows, on the member's database (the archive may live on another).
  Result<std::vector<uint32_t>> ArchiveSeen(int64_t account_id, int64_t mailbox_id) override {
    return Read(account_id, [&](Store& s) { return s.ArchiveSeen(account_id, mailbox_id); });
  }
  Status SetArchiveSeen(int64_t account_id, int64_t mailbox_id, std::vector<uint32_t> uids,
                        bool seen) override {
    return WriteSyncStatus(
        account_id, [&](Store& s) { return s.SetArchiveSeen(account_id, mailbox_id, uids, seen); });
  }
  Status SetActiveSieveScript(int64_t account_id, std::string_view name) override {
    return WriteSyncStatus(account_id,
                           [&](Store& s) { return s.SetActiveSieveScript(account_id, name); });
  }
  Status DeleteSieveScript(int64_t account_id, std::string_view name) override {
    return WriteSyncStatus(account_id,
                           [&](Store& s) { return s.DeleteSieveScript(account_id, name); });
  }
  Status RenameSieveScript(int64_t account_id, std::string_view from,
                           std::string_view to) override {
    return WriteSyncStatus(account_id,
                           [&](Store& s) { return s.RenameSieveScript(account_id, from, to); });
  }
  Result<uint64_t> SieveScriptsState(int64_t account_id) override {
    return Read(account_id, [&](Store& s) { return s.SieveScriptsState(account_id); });
  }
  Result<SieveScriptChanges> SieveScriptsSince(int64_t account_id, uint64_t since) override {
    return Read(account_id, [&](Store& s) { return s.SieveScriptsSince(account_id, since); });
  }
  Status SetSieveStatus(int64_t account_id, std::string_view error) override {
    return WriteSyncStatus(account_id,
                           [&](Store& s) { return s.SetSieveStatus(account_id, error); });
  }
  Result<SieveStatus> GetSieveStatus(int64_t account_id) override {
    return Read(account_id, [&](Store& s) { return s.GetSieveStatus(account_id); });
  }
  Result<bool> SieveMemoSeen(int64_t account_id, SieveMemo kind, std::string_view key,
                             int64_t now) override {
    return Read(account_id, [&](Store& s) { return s.SieveMemoSeen(account_id, kind, key, now); });
  }
  Status SieveMemoRecord(int64_t account_id, SieveMemo kind, std::string_view key,
                         int64_t until) override {
    return WriteSyncStatus(
        account_id, [&](Store& s) { return s.SieveMemoRecord(account_id, kind, key, until); });
  }

  Status EndSessions(std::string_view address) override { return Main().EndSessions(address); }
  Result<std::vector<SessionEnd>> SessionEndsSince(int64_t since, size_t limit) override {
    return Main().SessionEndsSince(since, limit);
  }
  Result<SnapshotAccount> FindAccountAny(std::string_view address) override {
    return Main().FindAccountAny(address);
  }
  Result<std::vector<RemovedAccount>> ListRemovedAccounts() override {
    return Main().ListRemovedAccounts();
  }
  Status SetAdmin(std::string_view address, bool admin) override {
    return Main().SetAdmin(address, admin);
  }
  Result<bool> IsAdmin(int64_t account_id) override { return Main().IsAdmin(account_id); }
  // The account's language (issue 13): in the directory, like the admin role.
  Result<std::string> GetAccountLanguage(int64_t account_id) override {
    return Main().GetAccountLanguage(account_id);
  }
  Status SetAccountLanguage(int64_t account_id, std::string_view language) override {
    return Main().SetAccountLanguage(account_id, language);
  }

 private:
  Store& Main() { return *shards_[0]->store; }

  // Runs `f` on shard i's admin connection (connected first), one caller at a time.
  // Where every account's mail is, as one string (SnapshotMetadata).
  Result<std::string> DirectoryState() {
    auto r = Admin(0, [](Conn& c) {
      return c.Exec(
          "SELECT coalesce(string_agg(account_id || ':' || shard || ':' || moved_at, ',' ORDER "
          "BY account_id), '') FROM shard_directory");
    });
    if (!r) return r.error();
    return r->Text(0, 0);
  }

  // Each database on a connection of its own (a long read must not hold the
  // admin connection the directory lookups share).
  Status SnapshotOnce(const std::string& path, const BackupBody& each) {
    for (size_t i = 0; i < shards_.size(); ++i) {
      Conn c(AdminOptions(pg_, shards_[i]->conninfo));
      if (auto st = c.Connect(); !st) {
        return Err(st.error().kind, "shard " + shards_[i]->name + ": " + st.error().message);
      }
      if (i == 0) {
        if (auto st = pg::WriteSqliteSnapshot(c, path, pg::SnapshotScope::kHomedMail, each); !st) {
          return st;
        }
        continue;
      }
      const std::string part = path + ".shard-" + std::to_string(i);
      std::error_code ignored;
      std::filesystem::remove(part, ignored);
      auto st = pg::WriteSqliteSnapshot(c, part, pg::SnapshotScope::kShardMail, each);
      if (st) st = pg::MergeShardSnapshot(path, part);
      std::filesystem::remove(part, ignored);
      if (!st) return Err(st.error().kind, "shard " + shards_[i]->name + ": " + st.error().message);
    }
    return Ok();
  }

  template <typename F>
  auto Admin(size_t i, F&& f) -> decltype(f(std::declval<Conn&>())) {
    std::lock_guard lock(shards_[i]->admin_mu);
    Conn& c = *shards_[i]->admin;
    for (int attempt = 0;; ++attempt) {
      if (auto st = c.Connect(); !st) return st.error();
      auto r = f(c);
      // A connection that died since its last use (the server restarted) is
      // tried once more on a new one; these lookups are reads or idempotent.
      if (r || c.connected() || attempt > 0) return r;
    }
  }

  Result<size_t> ShardIndex(const std::string& name) {
    for (size_t i = 0; i < shards_.size(); ++i) {
      if (shards_[i]->name == name) return i;
    }
    // Another node may know a shard this one has not loaded yet: a client
    // retries while the operator reloads this node (docs/operations.md).
    return Err(ErrorKind::kTemporary, "an account lives on shard " + name +
                                          ", which is not in this node's [store.shards] (reload)");
  }

  Result<size_t> PickShard(std::string_view address) {
    std::vector<size_t> open;
    for (size_t i = 0; i < shards_.size(); ++i) {
      if (!shards_[i]->closed) open.push_back(i);
    }
    if (open.empty()) return Err(ErrorKind::kInvalid, "every shard is closed to new accounts");
    if (open.size() == 1) return open.front();
    if (sharding_.placement == "hash") {
      return open[Fnv1a(AsciiLower(address)) % open.size()];
    }
    auto counts = Admin(0, [](Conn& c) -> Result<std::unordered_map<std::string, int64_t>> {
      auto r = c.Exec(
          "SELECT coalesce(d.shard, 'main'), count(*) FROM accounts a LEFT JOIN shard_directory "
          "d ON d.account_id = a.id WHERE a.removed_at IS NULL GROUP BY 1");
      if (!r) return r.error();
      std::unordered_map<std::string, int64_t> out;
      for (int i = 0; i < r->size(); ++i) out[r->Text(i, 0)] = r->Int(i, 1);
      return out;
    });
    if (!counts) return counts.error();
    size_t best = open.front();
    int64_t best_n = INT64_MAX;
    for (size_t i : open) {
      int64_t n = (*counts)[shards_[i]->name];
      if (n < best_n) {
        best = i;
        best_n = n;
      }
    }
    return best;
  }

  // ---- The directory cache ----

  Result<size_t> HomeOf(int64_t account_id) {
    if (shards_.size() == 1) return size_t{0};
    {
      std::lock_guard lock(cache_mu_);
      if (auto it = home_.find(account_id); it != home_.end()) return it->second;
    }
    auto row = Admin(0, [account_id](Conn& c) { return pg::ReadDirectory(c, account_id); });
    if (!row) return row.error();
    auto index = ShardIndex(row->shard);
    if (!index) return index.error();
    std::lock_guard lock(cache_mu_);
    home_[account_id] = *index;
    return *index;
  }

  void Invalidate(int64_t account_id) {
    std::lock_guard lock(cache_mu_);
    home_.erase(account_id);
  }

  // After a temporary failure on shard `sent`: true when the account's mail
  // is now elsewhere or being moved (worth sending the write again).
  bool Moved(int64_t account_id, size_t sent) {
    Invalidate(account_id);
    auto row = Admin(0, [account_id](Conn& c) { return pg::ReadDirectory(c, account_id); });
    if (!row) return false;
    return row->shard != shards_[sent]->name || !row->moving_to.empty();
  }

  void RememberMailbox(int64_t mailbox_id, int64_t account_id) {
    if (mailbox_id == 0 || shards_.size() == 1) return;
    std::lock_guard lock(cache_mu_);
    mailbox_account_[mailbox_id] = account_id;
  }

  // A mailbox's account (ids are unique across shards; a moved mailbox
  // keeps its id and account).
  Result<int64_t> MailboxAccount(int64_t mailbox_id) {
    {
      std::lock_guard lock(cache_mu_);
      if (auto it = mailbox_account_.find(mailbox_id); it != mailbox_account_.end()) {
        return it->second;
      }
    }
    for (size_t i = 0; i < shards_.size(); ++i) {
      auto r = Admin(i, [mailbox_id](Conn& c) -> Result<int64_t> {
        auto q = c.Exec("SELECT account_id FROM mailboxes WHERE id = $1", {P(mailbox_id)});
        if (!q) return q.error();
        if (q->empty()) return int64_t{0};
        return q->Int(0, 0);
      });
      if (!r) return r.error();
      if (*r != 0) {
        RememberMailbox(mailbox_id, *r);
        return *r;
      }
    }
    return Err(ErrorKind::kNotFound, "no such mailbox");
  }

  template <typename F>
  auto Read(int64_t account_id, F&& f) -> decltype(f(std::declval<Store&>())) {
    auto home = HomeOf(account_id);
    if (!home) return home.error();
    return f(*shards_[*home]->store);
  }

  template <typename F>
  auto ReadMailbox(int64_t mailbox_id, F&& f) -> decltype(f(std::declval<Store&>())) {
    if (shards_.size() == 1) return f(Main());
    auto account = MailboxAccount(mailbox_id);
    if (!account) return account.error();
    return Read(*account, std::forward<F>(f));
  }

  // An asynchronous write for one account, sent again (after kMoveRetryMs)
  // while the account is being moved or has moved since it was sent.
  template <typename T>
  void Write(int64_t account_id, std::function<void(Store&, Done<T>)> op, Done<T> done,
             int attempt = 0) {
    auto home = HomeOf(account_id);
    if (!home) {
      done(home.error());
      return;
    }
    size_t sent = *home;
    Store& store = *shards_[sent]->store;
    op(store, [this, account_id, op, done = std::move(done), attempt, sent](Result<T> r) mutable {
      if (r || r.error().kind != ErrorKind::kTemporary || attempt >= kMaxMoveRetries || closing_) {
        done(std::move(r));
        return;
      }
      // On the retry thread: the writer thread that called us must not wait.
      retrier_->Later(0, [this, account_id, op = std::move(op), done = std::move(done), attempt,
                          sent, r = std::move(r)]() mutable {
        if (closing_ || !Moved(account_id, sent)) {
          done(std::move(r));
          return;
        }
        retrier_->Later(kMoveRetryMs, [this, account_id, op = std::move(op), done = std::move(done),
                                       attempt]() mutable {
          Write<T>(account_id, std::move(op), std::move(done), attempt + 1);
        });
      });
    });
  }

  template <typename F>
  auto WriteSync(int64_t account_id, F&& f) -> decltype(f(std::declval<Store&>())) {
    for (int attempt = 0;; ++attempt) {
      auto home = HomeOf(account_id);
      if (!home) return home.error();
      auto r = f(*shards_[*home]->store);
      if (r || r.error().kind != ErrorKind::kTemporary || attempt >= kMaxMoveRetries ||
          !Moved(account_id, *home)) {
        return r;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(kMoveRetryMs));
    }
  }
  template <typename F>
  Status WriteSyncStatus(int64_t account_id, F&& f) {
    return WriteSync(account_id, std::forward<F>(f));
  }

  // ---- Deliveries: one part per shard ----

  struct DeliveryJoin {
    std::mutex mu;
    size_t left = 0;
    DeliveryReceipt receipt;
    std::optional<Error> error;
    Done<DeliveryReceipt> done;
  };

  void DeliverRouted(std::shared_ptr<const DeliveryRequest> req, Done<DeliveryReceipt> done,
                     int attempt) {
    if (shards_.size() == 1) {
      Main().Deliver(*req, std::move(done));
      return;
    }
    bool filings = !req->filings.empty();
    size_t locals = filings ? req->filings.size() : req->account_ids.size();
    // shard -> indexes into filings (or account_ids)
    std::map<size_t, std::vector<size_t>> parts;
    for (size_t i = 0; i < locals; ++i) {
      int64_t id = filings ? req->filings[i].account_id : req->account_ids[i];
      auto home = HomeOf(id);
      if (!home) {
        done(home.error());
        return;
      }
      parts[*home].push_back(i);
    }
    bool main_work = req->outbound.has_value() || !req->dsn_for.empty() || !req->outcomes.empty() ||
                     req->submitted_by != 0 || parts.empty();
    if (main_work) parts[0];
    if (parts.size() == 1 && parts.begin()->second.size() == locals) {
      SendPart(parts.begin()->first, req, std::move(done), attempt);
      return;
    }
    auto join = std::make_shared<DeliveryJoin>();
    join->left = parts.size();
    join->done = std::move(done);
    for (auto& [shard, indexes] : parts) {
      auto part = std::make_shared<DeliveryRequest>();
      part->return_path = req->return_path;
      part->content = req->content;
      part->mime = req->mime;
      part->received_at = req->received_at;
      part->junk = req->junk;
      part->keyword_limits = req->keyword_limits;
      if (shard == 0) {
        part->outbound = req->outbound;
        part->submitted_by = req->submitted_by;
        part->dsn_for = req->dsn_for;
        part->outcomes = req->outcomes;
      }
      for (size_t i : indexes) {
        if (filings) {
          part->filings.push_back(req->filings[i]);
        } else {
          part->account_ids.push_back(req->account_ids[i]);
        }
      }
      bool is_main = shard == 0;
      SendPart(
          shard, part,
          [join, indexes = indexes, is_main](Result<DeliveryReceipt> r) {
            std::function<void()> finish;
            {
              std::lock_guard lock(join->mu);
              if (!r) {
                if (!join->error) join->error = r.error();
              } else {
                join->receipt.content_id = r->content_id;
                for (int64_t id : r->message_ids) join->receipt.message_ids.push_back(id);
                if (is_main) join->receipt.queue_id = r->queue_id;
                for (size_t f : r->fell_back) {
                  if (f < indexes.size()) join->receipt.fell_back.push_back(indexes[f]);
                }
              }
              if (--join->left > 0) return;
            }
            if (join->error) {
              join->done(*join->error);
            } else {
              std::sort(join->receipt.fell_back.begin(), join->receipt.fell_back.end());
              join->done(std::move(join->receipt));
            }
          },
          attempt);
    }
  }

  // One shard's part; sent again (re-split) when one of its accounts moved.
  void SendPart(size_t shard, std::shared_ptr<const DeliveryRequest> part,
                Done<DeliveryReceipt> done, int attempt) {
    shards_[shard]->store->Deliver(*part, [this, shard, part, done = std::move(done),
                                           attempt](Result<DeliveryReceipt> r) mutable {
      if (r || r.error().kind != ErrorKind::kTemporary || attempt >= kMaxMoveRetries || closing_) {
        done(std::move(r));
        return;
      }
      retrier_->Later(
          0, [this, shard, part, done = std::move(done), attempt, r = std::move(r)]() mutable {
            bool moved = false;
            if (part->filings.empty()) {
              for (int64_t id : part->account_ids) moved = moved || Moved(id, shard);
            } else {
              for (const auto& f : part->filings) moved = moved || Moved(f.account_id, shard);
            }
            if (!moved || closing_) {
              done(std::move(r));
              return;
            }
            retrier_->Later(kMoveRetryMs, [this, part, done = std::move(done), attempt]() mutable {
              DeliverRouted(part, std::move(done), attempt + 1);
            });
          });
    });
  }

  // ---- Moves: the source copies past their retention ----

  Status DeleteMovedCopies() {
    if (shards_.size() == 1) return Ok();
    auto due = Admin(0, [](Conn& c) -> Result<std::vector<std::pair<int64_t, std::string>>> {
      auto r = c.Exec(
          "SELECT account_id, previous FROM shard_directory WHERE previous IS NOT NULL AND "
          "delete_after <= $1 AND moving_to IS NULL",
          {P(pg::NowSeconds())});
      if (!r) return r.error();
      std::vector<std::pair<int64_t, std::string>> out;
      for (int i = 0; i < r->size(); ++i) out.emplace_back(r->Int(i, 0), r->Text(i, 1));
      return out;
    });
    if (!due) return due.error();
    for (const auto& [id, previous] : *due) {
      auto index = ShardIndex(previous);
      if (!index) {
        spdlog::warn("shards: the old copy of account {} is on {}, not configured: kept", id,
                     previous);
        continue;
      }
      size_t from = *index;
      auto st = Admin(from, [&, id = id](Conn& c) -> Result<bool> {
        if (auto s = c.Exec("BEGIN"); !s) return s.error();
        // Still not the account's home there (a move back would clear moved_to).
        auto row = c.Exec("SELECT moved_to FROM accounts WHERE id = $1 FOR UPDATE", {P(id)});
        if (!row || row->empty() || row->IsNull(0, 0)) {
          (void)c.Exec("ROLLBACK");
          if (!row) return row.error();
          return false;
        }
        if (auto s = pg::DeleteAccountMail(c, id, from != 0); !s) {
          (void)c.Exec("ROLLBACK");
          return s.error();
        }
        if (auto s = c.Exec("COMMIT"); !s) return s.error();
        return true;
      });
      if (!st) return st.error();
      (void)Admin(0, [id = id](Conn& c) -> Result<bool> {
        auto r = c.Exec(
            "UPDATE shard_directory SET previous = NULL, delete_after = 0 WHERE account_id = $1",
            {P(id)});
        if (!r) return r.error();
        return true;
      });
      spdlog::info("shards: deleted the old copy of account {} on {} (moved, retention over)", id,
                   previous);
    }
    return Ok();
  }

  // Other nodes' directory changes (a move switched): their entries are dropped.
  void ListenLoop() {
    Conn conn(AdminOptions(pg_, pg_.conninfo));
    bool listening = false;
    while (true) {
      {
        std::lock_guard lock(cache_mu_);
        if (stopping_) return;
      }
      if (!listening) {
        listening =
            conn.Connect().ok() && conn.Exec(std::string("LISTEN ") + kDirectoryChannel).ok();
        if (!listening) {
          conn.Close();
          std::this_thread::sleep_for(std::chrono::milliseconds(500));
          continue;
        }
        // Notifications may have been missed while not listening.
        std::lock_guard lock(cache_mu_);
        home_.clear();
      }
      auto notes = conn.WaitNotifications(200);
      if (!notes) {
        listening = false;
        continue;
      }
      std::lock_guard lock(cache_mu_);
      for (const auto& [channel, payload] : *notes) {
        home_.erase(std::strtoll(payload.c_str(), nullptr, 10));
      }
    }
  }

  PostgresOptions pg_;
  ShardingOptions sharding_;
  ShardList shards_;  // [0] = main; appended to by Reload
  // Held while shards are added; what a shard added later needs:
  std::mutex reload_mu_;
  StoreOptions options_;                                              // guarded by reload_mu_
  std::function<void(const std::vector<int64_t>&)> change_listener_;  // guarded by reload_mu_
  CopyListener copy_listener_;                                        // guarded by reload_mu_
  RecordListener record_listener_;                                    // guarded by reload_mu_
  std::unique_ptr<Retrier> retrier_;
  std::thread listen_thread_;

  std::mutex cache_mu_;
  std::unordered_map<int64_t, size_t> home_;              // guarded by cache_mu_
  std::unordered_map<int64_t, int64_t> mailbox_account_;  // guarded by cache_mu_
  bool stopping_ = false;                                 // guarded by cache_mu_
  std::atomic<bool> closing_{false};
};

}  // namespace

Result<std::vector<std::string>> ReloadShards(Store& store, const ShardingOptions& sharding) {
  auto* sharded = dynamic_cast<ShardedStore*>(&store);
  if (sharded == nullptr) {
    return Err(ErrorKind::kInvalid,
               "the store was opened without [store.shards]: adding shards needs a restart");
  }
  std::vector<std::string> added;
  if (auto st = sharded->Reload(sharding, added); !st) return st.error();
  return added;
}

Result<std::unique_ptr<Store>> OpenShardedStore(const PostgresOptions& main,
                                                const ShardingOptions& sharding,
                                                const StoreOptions& options) {
  if (main.conninfo.empty()) {
    return Err(ErrorKind::kInvalid, "no PostgreSQL connection string ([store] postgres)");
  }
  auto store = std::make_unique<ShardedStore>(main, sharding);
  if (auto st = store->Open(options); !st) return st.error();
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace hato::store
