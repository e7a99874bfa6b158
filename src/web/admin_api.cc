#include "web/admin_api.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/json.hpp>
#include <ctime>
#include <memory>
#include <mutex>
#include <thread>

#include "app/setup.h"
#include "auth/password.h"
#include "auth/password_policy.h"
#include "auth/scram.h"
#include "backup/backup.h"
#include "base/progress.h"
#include "base/strings.h"
#include "dns/records.h"
#include "io/await.h"
#include "web/api_common.h"
#include "web/audit.h"
#include "web/autoconfig.h"
#include "web/figures.h"
#include "web/health.h"

namespace hato::web {
namespace json = boost::json;
namespace {

// An admin handler: fills in the audit entry's target and detail.
using AdminFn = std::function<awaitable<http::Response>(http::Request&, AuditEntry&)>;

// The admin role, checked on every request; state changes are audited.
http::Handler AdminOnly(const WebContext& ctx, std::string action, AdminFn fn) {
  server::Services* svc = ctx.services;
  AuditLog* audit = ctx.audit;
  return [svc, audit, action, fn](http::Request& req) -> awaitable<http::Response> {
    store::Store* store = svc->store;
    int64_t id = req.account->account_id;
    auto check = [store, id]() { return store->IsAdmin(id); };
    Result<bool> admin = co_await io::Offload(*svc->blocking, std::move(check));
    bool change = req.method == "POST";
    AuditEntry e;
    e.at = std::time(nullptr);
    e.admin = req.account->address;
    e.ip = req.peer_ip;
    e.action = action;
    if (!admin) co_return StoreError(admin.error());
    if (!*admin) {
      if (change && audit) {
        e.ok = false;
        e.detail = "not an admin";
        audit->Record(e);
      }
      spdlog::warn("web: {} from {} is not an admin ({})", req.account->address, req.peer_ip,
                   action);
      co_return ApiError(403, "this needs the admin role");
    }
    http::Response r = co_await fn(req, e);
    if (change && audit) {
      e.ok = r.status < 400;
      if (!e.ok && e.detail.empty()) e.detail = "HTTP " + std::to_string(r.status);
      audit->Record(e);
    }
    co_return r;
  };
}

std::optional<std::string> AddressField(const json::object& o, std::string_view key) {
  auto raw = StringField(o, key, 254);
  if (!raw) return std::nullopt;
  auto a = ParseEmailAddress(*raw);
  if (!a) return std::nullopt;
  return AsciiLower(*a);
}

// Runs a store operation returning Status on the blocking pool.
template <typename F>
awaitable<Status> Run(server::Services* svc, F f) {
  return io::Offload(*svc->blocking, std::move(f));
}

http::Response Done() { return ApiJson(json::object{{"ok", true}}); }

// ---- domains ----

AdminFn ListDomains(server::Services* svc) {
  return [svc](http::Request&, AuditEntry&) -> awaitable<http::Response> {
    store::Store* store = svc->store;
    auto list = [store]() { return store->ListDomains(); };
    auto d = co_await io::Offload(*svc->blocking, std::move(list));
    if (!d) co_return StoreError(d.error());
    json::array a;
    for (const auto& x : *d) a.push_back(json::string(x));
    co_return ApiJson(json::object{{"domains", std::move(a)}});
  };
}

AdminFn ChangeDomain(server::Services* svc, bool add) {
  return [svc, add](http::Request& req, AuditEntry& e) -> awaitable<http::Response> {
    auto body = BodyObject(req);
    auto domain = body ? StringField(*body, "domain", 253) : std::nullopt;
    if (!domain) co_return ApiError(400, "expected {\"domain\"}");
    std::string d = AsciiLower(*domain);
    e.target = d;
    if (auto st = dns::ValidateHostName(d, "domain"); !st)
      co_return ApiError(400, st.error().message);
    store::Store* store = svc->store;
    auto op = [store, d, add]() { return add ? store->AddDomain(d) : store->RemoveDomain(d); };
    Status st = co_await Run(svc, std::move(op));
    if (!st) {
      e.detail = st.error().message;
      co_return StoreError(st.error());
    }
    co_return Done();
  };
}

// ---- accounts ----

struct AccountsData {
  std::vector<store::AccountSummary> live;
  std::vector<store::RemovedAccount> removed;
};

AdminFn ListAccounts(server::Services* svc) {
  return [svc](http::Request&, AuditEntry&) -> awaitable<http::Response> {
    store::Store* store = svc->store;
    auto load = [store]() -> Result<AccountsData> {
      AccountsData d;
      auto live = store->ListAccounts();
      if (!live) return live.error();
      d.live = std::move(*live);
      auto removed = store->ListRemovedAccounts();
      if (removed) d.removed = std::move(*removed);  // a backend without it: none shown
      return d;
    };
    auto d = co_await io::Offload(*svc->blocking, std::move(load));
    if (!d) co_return StoreError(d.error());
    int64_t retention = int64_t{svc->config->Get()->retention_days} * 86400;
    json::array live, removed;
    for (const auto& a : d->live) {
      json::object o;
      o["address"] = a.address;
      o["messages"] = a.messages;
      o["bytes"] = a.bytes;
      o["quota"] = a.quota_bytes ? json::value(*a.quota_bytes) : json::value(nullptr);
      o["admin"] = a.admin;
      live.push_back(std::move(o));
    }
    for (const auto& a : d->removed) {
      json::object o;
      o["id"] = a.id;
      o["address"] = a.address;
      o["removedAt"] = a.removed_at;
      o["purgeAt"] = a.removed_at + retention;
      o["messages"] = a.messages;
      o["bytes"] = a.bytes;
      removed.push_back(std::move(o));
    }
    co_return ApiJson(json::object{{"accounts", std::move(live)},
                                   {"removed", std::move(removed)},
                                   {"retentionDays", svc->config->Get()->retention_days}});
  };
}

AdminFn AddAccount(server::Services* svc) {
  return [svc](http::Request& req, AuditEntry& e) -> awaitable<http::Response> {
    auto body = BodyObject(req);
    if (!body) co_return ApiError(400, "expected a JSON object");
    auto address = AddressField(*body, "address");
    auto password = StringField(*body, "password", 1024);
    bool admin = BoolField(*body, "admin");
    bool fresh = BoolField(*body, "new");
    if (!address || !password) co_return ApiError(400, "an address and a password are needed");
    e.target = *address;
    if (admin) e.detail = "with the admin role";
    auto cfg = svc->config->Get();
    auth::PasswordPolicy policy{cfg->auth.min_password_length, cfg->auth.refuse_common_passwords};
    if (auto st = auth::CheckPassword(*password, *address, policy); !st) {
      e.detail = st.error().message;
      co_return ApiError(400, st.error().message);
    }
    store::Store* store = svc->store;
    std::string a = *address, pw = *password;
    auto add = [store, a, pw, admin, fresh]() -> Status {
      if (!fresh) {
        auto removed = store->ListRemovedAccounts();
        if (removed) {
          for (const auto& r : *removed) {
            if (r.address == a)
              return Err(ErrorKind::kExists,
                         a + " was removed and its mail is still in retention: restore it, or "
                             "add a new, empty account with \"new\"");
          }
        }
      }
      auto hash = auth::HashPassword(pw);
      if (!hash) return hash.error();
      auto scram = auth::NewScramVerifier(pw);
      if (!scram) return scram.error();
      if (auto st = store->AddAccount(a, *hash, *scram); !st) return st;
      if (admin) return store->SetAdmin(a, true);
      return Ok();
    };
    Status st = co_await Run(svc, std::move(add));
    if (!st) {
      e.detail = st.error().message;
      co_return StoreError(st.error());
    }
    co_return Done();
  };
}

enum class AccountOp { kRemove, kRestore, kQuota, kPassword, kAdmin };

AdminFn ChangeAccount(server::Services* svc, AccountOp op) {
  return [svc, op](http::Request& req, AuditEntry& e) -> awaitable<http::Response> {
    auto body = BodyObject(req);
    if (!body) co_return ApiError(400, "expected a JSON object");
    auto address = AddressField(*body, "address");
    if (!address) co_return ApiError(400, "an address is needed");
    e.target = *address;
    if (op == AccountOp::kRemove && *address == req.account->address)
      co_return ApiError(400, "an admin cannot remove their own account here");
    std::optional<uint64_t> limit;
    std::string password;
    bool admin = false;
    if (op == AccountOp::kQuota) {
      const auto* v = body->if_contains("limit");
      if (v && !v->is_null()) {
        auto n = IntField(*body, "limit");
        if (!n || *n < 0) co_return ApiError(400, "limit: bytes, or null for none");
        limit = static_cast<uint64_t>(*n);
      }
      e.detail = limit ? "limit " + std::to_string(*limit) + " bytes" : "no limit";
    } else if (op == AccountOp::kPassword) {
      auto pw = StringField(*body, "password", 1024);
      if (!pw) co_return ApiError(400, "a password is needed");
      auto cfg = svc->config->Get();
      auth::PasswordPolicy policy{cfg->auth.min_password_length, cfg->auth.refuse_common_passwords};
      if (auto st = auth::CheckPassword(*pw, *address, policy); !st) {
        e.detail = st.error().message;
        co_return ApiError(400, st.error().message);
      }
      password = *pw;
    } else if (op == AccountOp::kAdmin) {
      admin = BoolField(*body, "admin");
      e.detail = admin ? "grant" : "revoke";
      if (!admin && *address == req.account->address)
        co_return ApiError(400, "an admin cannot drop their own role here");
    }
    store::Store* store = svc->store;
    std::string a = *address;
    auto run = [store, a, op, limit, password, admin]() -> Status {
      switch (op) {
        case AccountOp::kRemove:
          return store->RemoveAccount(a);
        case AccountOp::kRestore:
          return store->RestoreAccount(a);
        case AccountOp::kQuota:
          return store->SetQuota(a, limit);
        case AccountOp::kAdmin:
          return store->SetAdmin(a, admin);
        case AccountOp::kPassword: {
          auto hash = auth::HashPassword(password);
          if (!hash) return hash.error();
          auto scram = auth::NewScramVerifier(password);
          if (!scram) return scram.error();
          return store->SetPassword(a, *hash, *scram);  // ends the account's sessions
        }
      }
      return Ok();
    };
    Status st = co_await Run(svc, std::move(run));
    if (!st) {
      e.detail = st.error().message;
      co_return StoreError(st.error());
    }
    co_return Done();
  };
}

// ---- aliases ----

AdminFn ListAliases(server::Services* svc) {
  return [svc](http::Request&, AuditEntry&) -> awaitable<http::Response> {
    store::Store* store = svc->store;
    auto list = [store]() { return store->ListAliases(""); };
    auto d = co_await io::Offload(*svc->blocking, std::move(list));
    if (!d) co_return StoreError(d.error());
    json::array a;
    for (const auto& x : *d) {
      a.push_back(json::object{
          {"alias", x.alias}, {"account", x.account}, {"accountRemoved", x.account_removed}});
    }
    co_return ApiJson(json::object{{"aliases", std::move(a)}});
  };
}

AdminFn ChangeAlias(server::Services* svc, bool add) {
  return [svc, add](http::Request& req, AuditEntry& e) -> awaitable<http::Response> {
    auto body = BodyObject(req);
    if (!body) co_return ApiError(400, "expected a JSON object");
    auto alias = AddressField(*body, "alias");
    auto account = add ? AddressField(*body, "account") : std::optional<std::string>("");
    if (!alias || !account) co_return ApiError(400, "expected {\"alias\", \"account\"}");
    e.target = *alias;
    if (add) e.detail = "to " + *account;
    store::Store* store = svc->store;
    std::string al = *alias, ac = *account;
    auto run = [store, al, ac, add]() {
      return add ? store->AddAlias(al, ac) : store->RemoveAlias(al);
    };
    Status st = co_await Run(svc, std::move(run));
    if (!st) {
      e.detail = st.error().message;
      co_return StoreError(st.error());
    }
    co_return Done();
  };
}

// ---- outbound queue ----

std::string_view StateName(store::RecipientState s) {
  switch (s) {
    case store::RecipientState::kQueued:
      return "queued";
    case store::RecipientState::kHeld:
      return "held";
    case store::RecipientState::kDelivered:
      return "delivered";
    case store::RecipientState::kFailed:
      return "failed";
  }
  return "?";
}

AdminFn ListQueue(server::Services* svc) {
  return [svc](http::Request&, AuditEntry&) -> awaitable<http::Response> {
    store::Store* store = svc->store;
    auto list = [store]() { return store->ListQueue(); };
    auto q = co_await io::Offload(*svc->blocking, std::move(list));
    if (!q) co_return StoreError(q.error());
    json::array a;
    for (const auto& m : *q) {
      json::array rcpts;
      for (const auto& r : m.recipients) {
        rcpts.push_back(json::object{{"address", r.address},
                                     {"state", std::string(StateName(r.state))},
                                     {"attempts", r.attempts},
                                     {"nextAttemptAt", r.next_attempt_at},
                                     {"lastError", r.last_error}});
      }
      a.push_back(json::object{{"id", m.id},
                               {"sender", m.sender},
                               {"createdAt", m.created_at},
                               {"size", m.size},
                               {"recipients", std::move(rcpts)}});
    }
    co_return ApiJson(json::object{{"messages", std::move(a)}});
  };
}

AdminFn QueueAction(server::Services* svc) {
  return [svc](http::Request& req, AuditEntry& e) -> awaitable<http::Response> {
    auto body = BodyObject(req);
    if (!body) co_return ApiError(400, "expected a JSON object");
    auto id = IntField(*body, "id");
    auto action = StringField(*body, "action", 16);
    if (!id || !action) co_return ApiError(400, "expected {\"id\", \"action\"}");
    store::QueueAction a;
    if (*action == "retry") {
      a = store::QueueAction::kRetry;
    } else if (*action == "hold") {
      a = store::QueueAction::kHold;
    } else if (*action == "release") {
      a = store::QueueAction::kRelease;
    } else if (*action == "delete") {
      a = store::QueueAction::kDelete;
    } else {
      co_return ApiError(400, "action: retry, hold, release or delete");
    }
    e.action = "queue." + *action;
    e.target = "message " + std::to_string(*id);
    store::Store* store = svc->store;
    int64_t mid = *id;
    auto run = [store, mid, a]() { return store->ApplyQueueAction(mid, a); };
    Status st = co_await Run(svc, std::move(run));
    if (!st) {
      e.detail = st.error().message;
      co_return StoreError(st.error());
    }
    // The queue runner looks at once (retry, release), not at its next tick.
    if (svc->outbound_queued) svc->outbound_queued();
    co_return Done();
  };
}

// ---- backups: one job at a time, on its own thread, with its progress ----

class BackupJobs {
 public:
  explicit BackupJobs(std::string dest) : dest_(std::move(dest)) {}
  ~BackupJobs() {
    if (thread_.joinable()) thread_.join();
  }
  const std::string& dest() const { return dest_; }

  // False when a job is running.
  bool Start(std::string kind, std::function<std::string(BackupJobs&)> work) {
    std::lock_guard lock(mu_);
    if (running_) return false;
    if (thread_.joinable()) thread_.join();
    running_ = true;
    kind_ = std::move(kind);
    label_.clear();
    items_ = total_ = bytes_ = 0;
    started_ = std::time(nullptr);
    finished_ = 0;
    result_.clear();
    thread_ = std::thread([this, work = std::move(work)] {
      Progress::ObserveThisThread(
          [this](const std::string& label, uint64_t items, uint64_t total, uint64_t bytes) {
            std::lock_guard l(mu_);
            label_ = label;
            items_ = items;
            total_ = total;
            bytes_ = bytes;
          });
      std::string result = work(*this);
      Progress::ObserveThisThread(nullptr);
      std::lock_guard l(mu_);
      running_ = false;
      finished_ = std::time(nullptr);
      result_ = std::move(result);
    });
    return true;
  }

  json::object State() const {
    std::lock_guard lock(mu_);
    json::object o;
    o["kind"] = kind_;
    o["running"] = running_;
    o["label"] = label_;
    o["items"] = items_;
    o["total"] = total_;
    o["bytes"] = bytes_;
    o["startedAt"] = started_;
    o["finishedAt"] = finished_;
    o["result"] = result_;
    return o;
  }

 private:
  std::string dest_;
  mutable std::mutex mu_;
  bool running_ = false;
  std::string kind_, label_, result_;
  uint64_t items_ = 0, total_ = 0, bytes_ = 0;
  int64_t started_ = 0, finished_ = 0;
  std::thread thread_;
};

AdminFn ListBackups(server::Services* svc, std::shared_ptr<BackupJobs> jobs) {
  return [svc, jobs](http::Request&, AuditEntry&) -> awaitable<http::Response> {
    std::string dest = jobs->dest();
    auto list = [dest]() -> Result<std::vector<backup::SetInfo>> {
      if (!io::FileSystem::Default()->Exists(dest)) return std::vector<backup::SetInfo>{};
      return backup::ListBackups(dest);
    };
    auto sets = co_await io::Offload(*svc->blocking, std::move(list));
    json::array a;
    if (sets) {
      for (const auto& s : *sets) {
        json::object o;
        o["id"] = s.id;
        o["complete"] = s.complete;
        o["problem"] = s.problem;
        if (s.complete) {
          o["created"] = s.manifest.created;
          json::object counts;
          for (const auto& [k, v] : s.manifest.counts) counts[k] = v;
          o["counts"] = std::move(counts);
        }
        a.push_back(std::move(o));
      }
    }
    json::object out{{"dest", dest}, {"sets", std::move(a)}, {"job", jobs->State()}};
    if (!sets) out["error"] = sets.error().message;
    co_return ApiJson(out);
  };
}

AdminFn StartBackup(server::Services* svc, std::string data_dir, std::shared_ptr<BackupJobs> jobs,
                    bool verify) {
  return [svc, data_dir, jobs, verify](http::Request& req,
                                       AuditEntry& e) -> awaitable<http::Response> {
    std::string id;
    if (verify) {
      auto body = BodyObject(req);
      if (body) id = StringField(*body, "id", 200).value_or("");
      e.target = id.empty() ? "all sets" : id;
    } else {
      e.target = jobs->dest();
    }
    store::Store* store = svc->store;
    std::string dest = jobs->dest();
    std::function<std::string(BackupJobs&)> work;
    if (verify) {
      work = [dest, id](BackupJobs&) -> std::string {
        auto r = backup::VerifyBackup(dest, id);
        if (!r) return "failed: " + r.error().message;
        std::string out = std::to_string(r->sets) + " sets, " + std::to_string(r->bodies) +
                          " bodies (" + std::to_string(r->bytes) + " bytes) checked, " +
                          std::to_string(r->problems.size()) + " problems";
        for (const auto& p : r->problems) out += "\n" + p;
        return out;
      };
    } else {
      work = [store, data_dir, dest](BackupJobs&) -> std::string {
        if (auto st = backup::CheckDestination(dest, /*create=*/true); !st)
          return "failed: " + st.error().message;
        auto m = backup::CreateBackup(*store, data_dir, dest);
        if (!m) return "failed: " + m.error().message;
        return "set " + m->id + ": " + std::to_string(m->counts["messages"]) + " messages, " +
               std::to_string(m->counts["copied_bodies"]) + " new bodies";
      };
    }
    if (!jobs->Start(verify ? "verify" : "create", std::move(work)))
      co_return ApiError(409, "a backup job is running");
    co_return ApiJson(json::object{{"started", true}}, 202);
  };
}

// ---- DNS records (the ones `hato init` prints and `hato dns check` checks) ----

// With ?check=1, each record also carries what DNS answers now (status OK,
// MISSING, DIFFERENT or SKIPPED and what was found), from [outbound]
// resolver, as `hato dns check` prints it.
AdminFn DnsRecords(server::Services* svc, std::string data_dir) {
  return [svc, data_dir](http::Request& req, AuditEntry&) -> awaitable<http::Response> {
    std::string domain = AsciiLower(req.Param("domain").value_or(""));
    if (auto st = dns::ValidateHostName(domain, "domain"); !st)
      co_return ApiError(400, st.error().message);
    bool check = req.Param("check").value_or("") == "1";
    auto cfg = svc->config->Get();
    std::string resolver = cfg->outbound.resolver;
    auto build = [data_dir, cfg, domain, check,
                  resolver]() -> Result<std::vector<app::RecordCheck>> {
      auto in = app::RecordInputFor(data_dir, *cfg, domain);
      if (!in) return in.error();
      if (check) return app::CheckDomainRecords(*in, resolver, kDnsCheckTimeoutSeconds);
      std::vector<app::RecordCheck> out;
      for (auto& r : dns::DomainRecords(*in)) out.push_back(app::RecordCheck{std::move(r), "", ""});
      return out;
    };
    auto records = co_await io::Offload(*svc->blocking, std::move(build));
    if (!records) co_return StoreError(records.error());
    json::array a;
    for (const auto& c : *records) {
      const dns::Record& r = c.record;
      json::object o{{"name", r.name},
                     {"type", r.type},
                     {"value", r.value},
                     {"required", r.need == dns::Need::kRequired},
                     {"purpose", r.purpose},
                     {"placeholder", r.placeholder},
                     {"zoneLine", dns::ZoneLine(r)}};
      if (check) {
        o["status"] = c.status;
        o["detail"] = c.detail;
      }
      a.push_back(std::move(o));
    }
    co_return ApiJson(json::object{{"domain", domain}, {"records", std::move(a)}});
  };
}

// ---- overview: health and the key figures ----

AdminFn Overview(const Watchdog* watchdog, Figures* figures) {
  return [watchdog, figures](http::Request&, AuditEntry&) -> awaitable<http::Response> {
    int64_t now = std::time(nullptr);
    HealthSnapshot s =
        watchdog ? AtTime(*watchdog->Current(), now) : UnreachableSnapshot(now, {}, {});
    json::object o;
    boost::system::error_code ec;
    o["health"] = json::parse(RenderStatusJson(s), ec);
    json::array samples;
    if (figures) {
      for (const auto& f : figures->Samples()) {
        json::object c;
        for (const auto& [k, v] : f.connections) c[k] = v;
        samples.push_back(json::object{{"at", f.at},
                                       {"deliveriesPerS", f.deliveries_per_s},
                                       {"sentPerS", f.sent_per_s},
                                       {"queue", f.queue_messages},
                                       {"queueOldestS", f.queue_oldest_s},
                                       {"commitMs", f.commit_latency_ms},
                                       {"loginFailures", f.login_failures},
                                       {"connections", std::move(c)}});
      }
    }
    o["figures"] = std::move(samples);
    o["intervalSeconds"] = kFigureIntervalSeconds;
    co_return ApiJson(o);
  };
}

AdminFn Audit(AuditLog* audit) {
  return [audit](http::Request&, AuditEntry&) -> awaitable<http::Response> {
    json::array a;
    if (audit) {
      for (const auto& e : audit->Tail(kAuditShown)) {
        a.push_back(json::object{{"at", e.at},
                                 {"admin", e.admin},
                                 {"ip", e.ip},
                                 {"action", e.action},
                                 {"target", e.target},
                                 {"ok", e.ok},
                                 {"detail", e.detail}});
      }
    }
    co_return ApiJson(json::object{{"entries", std::move(a)}});
  };
}

}  // namespace

void RegisterAdminRoutes(http::Router& router, const WebContext& ctx) {
  server::Services* svc = ctx.services;
  auto add = [&](const char* method, const char* path, const char* action, AdminFn fn) {
    router.Add(method, std::string("/web/admin/") + path, AdminOnly(ctx, action, std::move(fn)),
               http::Access::kAccount);
  };
  auto cfg = svc->config->Get();
  std::string backup_dir = cfg->web.backup_dir.empty() ? ctx.data_dir + "/backups"
                           : cfg->web.backup_dir.front() == '/'
                               ? cfg->web.backup_dir
                               : ctx.data_dir + "/" + cfg->web.backup_dir;
  auto jobs = std::make_shared<BackupJobs>(backup_dir);
  add("GET", "overview", "overview", Overview(ctx.watchdog, ctx.figures));
  add("GET", "domains", "domain.list", ListDomains(svc));
  add("POST", "domains/add", "domain.add", ChangeDomain(svc, true));
  add("POST", "domains/remove", "domain.remove", ChangeDomain(svc, false));
  add("GET", "accounts", "account.list", ListAccounts(svc));
  add("POST", "accounts/add", "account.add", AddAccount(svc));
  add("POST", "accounts/remove", "account.remove", ChangeAccount(svc, AccountOp::kRemove));
  add("POST", "accounts/restore", "account.restore", ChangeAccount(svc, AccountOp::kRestore));
  add("POST", "accounts/quota", "account.quota", ChangeAccount(svc, AccountOp::kQuota));
  add("POST", "accounts/password", "account.password", ChangeAccount(svc, AccountOp::kPassword));
  add("POST", "accounts/admin", "account.admin", ChangeAccount(svc, AccountOp::kAdmin));
  add("GET", "aliases", "alias.list", ListAliases(svc));
  add("POST", "aliases/add", "alias.add", ChangeAlias(svc, true));
  add("POST", "aliases/remove", "alias.remove", ChangeAlias(svc, false));
  add("GET", "queue", "queue.list", ListQueue(svc));
  add("POST", "queue/action", "queue.action", QueueAction(svc));
  add("GET", "backups", "backup.list", ListBackups(svc, jobs));
  add("POST", "backups/create", "backup.create", StartBackup(svc, ctx.data_dir, jobs, false));
  add("POST", "backups/verify", "backup.verify", StartBackup(svc, ctx.data_dir, jobs, true));
  add("GET", "dns", "dns.records", DnsRecords(svc, ctx.data_dir));
  add("GET", "audit", "audit.list", Audit(ctx.audit));
}

}  // namespace hato::web
