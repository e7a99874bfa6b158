#include "jmap/api.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "base/digest.h"
#include "base/strings.h"
#include "io/await.h"
#include "io/fs.h"
#include "jmap/mail.h"
#include "jmap/sieve.h"
#include "jmap/state.h"
#include "jmap/vacation.h"

namespace hato::jmap {

// g++ 12 coroutine bugs (io/net.cc): awaitables and their arguments are named
// variables, and awaited results are stored before they are tested.

bool ReadMaxChanges(const json::object& args, std::optional<uint64_t>& out) {
  const json::value* m = args.if_contains("maxChanges");
  if (!m || m->is_null()) return true;
  if (m->is_uint64() && m->as_uint64() > 0) {
    out = m->as_uint64();
    return true;
  }
  if (m->is_int64() && m->as_int64() > 0) {
    out = static_cast<uint64_t>(m->as_int64());
    return true;
  }
  return false;
}

std::string AccountId(int64_t id) {
  std::string out = "a";  // not "a" + std::string&& (a g++ 12 -Wrestrict false positive)
  out += std::to_string(id);
  return out;
}

const AccountData* Context::Load() {
  if (data) return &*data;
  auto mailboxes = svc.store->ListMailboxes(account_id);
  if (!mailboxes) {
    error = mailboxes.error().message;
    return nullptr;
  }
  auto rows = svc.store->ListEmailRows(account_id, 0, 0);
  if (!rows) {
    error = rows.error().message;
    return nullptr;
  }
  AccountData d;
  d.mailboxes = std::move(*mailboxes);
  d.rows = std::move(*rows);
  for (size_t i = 0; i < d.rows.size(); ++i) d.emails[EmailIdOf(d.rows[i].sha256)].push_back(i);
  data = std::move(d);
  return &*data;
}

namespace {

json::array ErrorInvocation(std::string type, std::string description, const std::string& id) {
  json::object e;
  e["type"] = std::move(type);
  if (!description.empty()) e["description"] = std::move(description);
  return json::array{"error", std::move(e), id};
}

// Core/echo (RFC 8620 section 4): the arguments, unchanged.
MethodOutput CoreEcho(Context&, json::object& args) { return MethodOutput::One("Core/echo", args); }

// The methods a shared, read-only account (a list archive) answers.
bool SharedRead(std::string_view method) {
  static const std::set<std::string_view> kReads = {
      "Mailbox/get", "Mailbox/changes", "Mailbox/query",    "Mailbox/queryChanges",
      "Email/get",   "Email/query",     "Email/changes",    "Email/queryChanges",
      "Thread/get",  "Thread/changes",  "SearchSnippet/get"};
  return kReads.count(method) > 0;
}

}  // namespace

json::object RunRequest(Context& ctx, ApiRequest& req) {
  if (req.created_ids) ctx.created_ids = *req.created_ids;
  // The list archives the user may read now (jmap/mail.h SharedAccount); a
  // store failure only hides them for this request.
  std::vector<SharedAccount> shared;
  if (auto found = SharedAccounts(*ctx.svc.store, ctx.address)) {
    shared = std::move(*found);
  }
  std::vector<Response> done;
  json::array out;
  std::set<std::string> using_caps(req.using_capabilities.begin(), req.using_capabilities.end());
  for (Invocation& call : req.calls) {
    json::object args = std::move(call.args);
    Context* target = &ctx;  // the user's account, or a shared one below
    std::optional<Context> shared_ctx;
    // Result references (section 3.7) resolve against the responses so far.
    if (auto err = ResolveReferences(args, done)) {
      out.push_back(ErrorInvocation(*err, "a result reference did not resolve", call.id));
      done.push_back(Response{"error", json::object{{"type", *err}}, call.id});
      continue;
    }
    MethodFn fn = nullptr;
    const char* cap = kCapCore;
    if (call.name == "Core/echo") {
      fn = CoreEcho;
    } else {
      for (const auto* table : {&MailMethods(), &VacationMethods(), &SieveMethods()}) {
        for (const MethodEntry& m : *table) {
          if (call.name == m.name) {
            fn = m.fn;
            cap = m.capability;
            break;
          }
        }
      }
    }
    // A method of a capability the request does not use is unknown to it
    // (section 3.6.2).
    if (!fn || (std::string_view(cap) != kCapCore && !using_caps.count(cap))) {
      out.push_back(ErrorInvocation("unknownMethod", "no method " + call.name, call.id));
      done.push_back(Response{"error", json::object{{"type", "unknownMethod"}}, call.id});
      continue;
    }
    if (const json::value* acct = args.if_contains("accountId")) {
      if (!acct->is_string()) {
        out.push_back(ErrorInvocation("invalidArguments", "accountId must be a String", call.id));
        done.push_back(Response{"error", json::object{{"type", "invalidArguments"}}, call.id});
        continue;
      }
      if (acct->get_string() != AccountId(ctx.account_id)) {
        // Never another account's data (section 3.6.2), but for the list
        // archives the user may read, read-only.
        auto it = std::find_if(shared.begin(), shared.end(), [acct](const SharedAccount& a) {
          return AccountId(a.account_id) == acct->get_string();
        });
        std::string refused;
        if (it == shared.end()) {
          refused = "accountNotFound";
        } else if (std::string_view(cap) != kCapMail) {
          refused = "accountNotSupportedByMethod";
        } else if (!SharedRead(call.name)) {
          refused = "accountReadOnly";
        }
        if (!refused.empty()) {
          out.push_back(ErrorInvocation(refused, "", call.id));
          done.push_back(Response{"error", json::object{{"type", refused}}, call.id});
          continue;
        }
        shared_ctx.emplace(Context{ctx.svc,
                                   ctx.cfg,
                                   it->account_id,
                                   ctx.address,
                                   ctx.data_dir,
                                   {},
                                   std::nullopt,
                                   {},
                                   true});
        target = &*shared_ctx;
      }
    }
    MethodOutput r;
    try {
      r = fn(*target, args);
    } catch (const std::exception& e) {
      // Wrong JSON types surface as Boost.JSON exceptions: the client's error.
      r = MethodOutput::Error("invalidArguments", e.what());
    }
    if (!r.error_type.empty()) {
      out.push_back(ErrorInvocation(r.error_type, r.error_description, call.id));
      done.push_back(Response{"error", json::object{{"type", r.error_type}}, call.id});
      continue;
    }
    for (auto& [name, resp] : r.responses) {
      out.push_back(json::array{json::string(name), resp, call.id});
      done.push_back(Response{name, std::move(resp), call.id});
    }
  }
  json::object resp;
  resp["methodResponses"] = std::move(out);
  resp["sessionState"] = SessionState(ctx.address, shared);
  if (req.created_ids) {
    json::object ids;
    for (auto& [k, v] : ctx.created_ids) ids[k] = v;
    resp["createdIds"] = std::move(ids);
  }
  return resp;
}

namespace {

// Per-account counters for maxConcurrentRequests and maxConcurrentUpload.
class Concurrency {
 public:
  bool Enter(int64_t account, size_t max) {
    std::lock_guard lock(mu_);
    size_t& n = live_[account];
    if (n >= max) return false;
    ++n;
    return true;
  }
  void Leave(int64_t account) {
    std::lock_guard lock(mu_);
    auto it = live_.find(account);
    if (it != live_.end() && --it->second == 0) live_.erase(it);
  }

 private:
  std::mutex mu_;
  std::map<int64_t, size_t> live_;  // guarded by mu_
};

struct Slot {
  Concurrency& c;
  int64_t account;
  ~Slot() { c.Leave(account); }
};

std::string BaseUrl(const http::Request& req) {
  std::string host(req.Get("host").value_or("localhost"));
  return std::string(req.is_tls ? "https://" : "http://") + host;
}

http::Response Problem(const RequestError& e) {
  http::Response r;
  r.status = e.status;
  r.body = ProblemJson(e);
  r.Set("Content-Type", "application/problem+json");
  return r;
}

std::string UploadDir(const std::string& data_dir, int64_t account) {
  return data_dir + "/jmap-uploads/" + std::to_string(account);
}

}  // namespace

// ---- Push (RFC 8620 section 7.3) ----

// EventSource streams waiting for changes. The store's change feed calls
// OnChange on its writer thread; each stream's wake-up runs on the event
// loop where that stream lives (server/event_loops.h), and only if the
// stream is still registered then (a stream leaves from its own loop, so
// one found there is alive). A Waiter's fields are touched only on its loop.
// Thread-safe.
class PushHub {
 public:
  struct Waiter {
    asio::steady_timer* timer = nullptr;
    std::set<int64_t> mailboxes;  // of its account, at its last state
    int64_t max_mailbox = 0;
    int64_t account = 0;
    bool watch_queue = false;  // a submission of its account waits for the queue's outcome
    bool fired = false;
  };
  // `ex`: the executor of the stream's coroutine (its event loop).
  void Add(Waiter* w, const asio::any_io_executor& ex) {
    std::lock_guard lock(mu_);
    waiters_[w] = Home{ex, ++generation_};
  }
  void Remove(Waiter* w) {
    std::lock_guard lock(mu_);
    waiters_.erase(w);
  }
  void OnChange(const std::vector<int64_t>& ids) {
    Wake([ids](const Waiter& w) {
      // A mailbox newer than the stream knows may be a new one of its account.
      for (int64_t mailbox : ids)
        if (w.mailboxes.count(mailbox) || mailbox > w.max_mailbox) return true;
      return false;
    });
  }
  // An account's JMAP records changed (account > 0), or the queue recorded
  // outcomes (0): server::ChangeFeed::PublishRecords.
  void OnRecords(int64_t account) {
    Wake(
        [account](const Waiter& w) { return account != 0 ? w.account == account : w.watch_queue; });
  }

 private:
  // Fires, on its own loop, each registered waiter for which hit(waiter) holds.
  template <typename Hit>
  void Wake(Hit hit) {
    std::vector<std::pair<asio::any_io_executor, std::vector<std::pair<Waiter*, uint64_t>>>>
        batches;  // one posted call per loop
    {
      std::lock_guard lock(mu_);
      for (const auto& [w, home] : waiters_) {
        auto b = std::find_if(batches.begin(), batches.end(),
                              [&loop = home.loop](const auto& x) { return x.first == loop; });
        if (b == batches.end()) b = batches.insert(batches.end(), {home.loop, {}});
        b->second.emplace_back(w, home.id);
      }
    }
    for (auto& [loop, waiters] : batches) {
      asio::post(loop, [this, hit, waiters = std::move(waiters)] {
        for (const auto& [w, id] : waiters) {
          if (!Registered(w, id) || !hit(*w)) continue;
          w->fired = true;
          w->timer->cancel();
        }
      });
    }
  }

  struct Home {
    asio::any_io_executor loop;
    uint64_t id = 0;  // tells a waiter from a later one at the same address
  };
  bool Registered(Waiter* w, uint64_t id) {
    std::lock_guard lock(mu_);
    auto it = waiters_.find(w);
    return it != waiters_.end() && it->second.id == id;
  }
  std::mutex mu_;
  std::map<Waiter*, Home> waiters_;  // guarded by mu_
  uint64_t generation_ = 0;          // guarded by mu_
};

namespace {

struct PushStates {
  bool ok = false;
  std::string email, mailbox;
  std::set<int64_t> mailboxes;
  int64_t max_mailbox = 0;
  uint64_t uidnext_sum = 0;  // grows when mail arrives (EmailDelivery)
  std::string submission;    // EmailSubmission state ("" when unreadable)
  bool pending = false;      // a submission waits for the queue's outcome
  std::string sieve;         // SieveScript state ("" when not watched or unreadable)
};

// The states from the mailbox rows alone (the states need no counts), the
// EmailSubmission records and, when `sieve`, the account's script counter
// (one small read: jmap/sieve.h).
PushStates ComputeStates(Context& ctx, bool sieve) {
  PushStates s;
  auto list = ctx.svc.store->ListMailboxHeads(ctx.account_id);
  if (!list) return s;
  s.email = EmailState(*list);
  s.mailbox = MailboxState(*list);
  for (const auto& m : *list) {
    s.mailboxes.insert(m.id);
    s.max_mailbox = std::max(s.max_mailbox, m.id);
    s.uidnext_sum += m.uidnext;
  }
  if (auto sub = SubmissionPushState(ctx)) {
    s.submission = std::move(sub->state);
    s.pending = sub->pending;
  }
  if (sieve) {
    if (auto seq = ctx.svc.store->SieveScriptsState(ctx.account_id)) s.sieve = SieveState(*seq);
  }
  s.ok = true;
  return s;
}

bool Wants(const std::set<std::string>& types, const std::string& t) {
  return types.count("*") || types.count(t);
}

}  // namespace

namespace {

// An EventSource stream's registration as a session of its account: ended
// (on the event loop, which also runs the stream) when the account's
// password changes or it is removed.
struct EndOnAccountChange final : server::AccountSessions::Member {
  explicit EndOnAccountChange(asio::steady_timer& t) : timer(t) {}
  void EndSession() override {
    ended = true;
    timer.cancel();
  }
  asio::steady_timer& timer;
  bool ended = false;
};

}  // namespace

void AddRoutes(http::Router& router, server::Services& services, const std::string& data_dir) {
  server::Services* svc = &services;
  ImportJmapFiles(*services.store, data_dir);
  auto concurrency = std::make_shared<Concurrency>();
  auto uploads = std::make_shared<Concurrency>();
  auto hub = std::make_shared<PushHub>();
  if (services.changes) {
    services.changes->Subscribe([hub](const std::vector<int64_t>& ids) { hub->OnChange(ids); });
    services.changes->SubscribeRecords([hub](int64_t account) { hub->OnRecords(account); });
  }

  // The session resource (section 2).
  auto session = [svc](http::Request& req) -> awaitable<http::Response> {
    auto cfg = svc->config->Get();
    std::string address = req.account->address;
    auto find = [svc, address] { return SharedAccounts(*svc->store, address); };
    Result<std::vector<SharedAccount>> shared = co_await io::Offload(*svc->blocking, find);
    if (!shared) {
      spdlog::warn("jmap: the list archives of {}: {}", address, shared.error().message);
      shared = std::vector<SharedAccount>{};
    }
    json::object o = SessionObject(*cfg, req.account->account_id, address, BaseUrl(req), *shared);
    http::Response r = http::Response::Json(200, json::serialize(o));
    r.Set("Cache-Control", "no-cache, no-store, must-revalidate");
    co_return r;
  };
  router.Add("GET", "/.well-known/jmap", session, http::Access::kAccount);
  router.Add("GET", "/jmap/session", session, http::Access::kAccount);

  // The API endpoint (section 3).
  auto api = [svc, concurrency, data_dir](http::Request& req) -> awaitable<http::Response> {
    auto cfg = svc->config->Get();
    DecodeLimits limits{cfg->jmap.max_size_request, cfg->jmap.max_calls_in_request};
    auto decoded = DecodeApiRequest(req.body, limits, SupportedCapabilities());
    if (auto* e = std::get_if<RequestError>(&decoded)) co_return Problem(*e);
    int64_t account = req.account->account_id;
    if (!concurrency->Enter(account, cfg->jmap.max_concurrent_requests)) {
      RequestError e{ErrorUrn("limit"), 429, "too many concurrent requests for this account",
                     "maxConcurrentRequests"};
      http::Response r = Problem(e);
      r.Set("Retry-After", std::to_string(cfg->http.retry_after_seconds));
      co_return r;
    }
    auto request = std::make_shared<ApiRequest>(std::move(std::get<ApiRequest>(decoded)));
    std::string address = req.account->address;
    auto run = [svc, cfg, account, address, data_dir, request, concurrency]() {
      Slot slot{*concurrency, account};
      Context ctx{*svc, *cfg, account, address, data_dir, {}, std::nullopt, {}};
      return json::serialize(RunRequest(ctx, *request));
    };
    std::string body = co_await io::Offload(*svc->blocking, std::move(run));
    co_return http::Response::Json(200, std::move(body));
  };
  router.Add("POST", "/jmap/api/", api, http::Access::kAccount);
  router.Add("POST", "/jmap/api", api, http::Access::kAccount);

  // Upload (section 6.1): POST /jmap/upload/{accountId}/
  auto upload = [svc, uploads, data_dir](http::Request& req) -> awaitable<http::Response> {
    auto cfg = svc->config->Get();
    std::string want = req.rest;
    if (!want.empty() && want.back() == '/') want.pop_back();
    int64_t account = req.account->account_id;
    if (want != AccountId(account)) co_return http::Response::Text(404, "no such account\n");
    if (req.body.size() > cfg->jmap.max_size_upload) {
      co_return Problem(
          RequestError{ErrorUrn("limit"), 413, "larger than maxSizeUpload", "maxSizeUpload"});
    }
    if (!uploads->Enter(account, cfg->jmap.max_concurrent_upload)) {
      http::Response r = Problem(RequestError{ErrorUrn("limit"), 429, "too many concurrent uploads",
                                              "maxConcurrentUpload"});
      r.Set("Retry-After", std::to_string(cfg->http.retry_after_seconds));
      co_return r;
    }
    std::string type(req.Get("content-type").value_or("application/octet-stream"));
    auto body = std::make_shared<std::string>(std::move(req.body));
    store::Store* store = svc->store;
    std::string dir = UploadDir(data_dir, account);
    auto save = [store, account, dir, body, uploads]() -> Result<std::string> {
      Slot slot{*uploads, account};
      return SaveUpload(*store, account, dir, *body);
    };
    Result<std::string> blob = co_await io::Offload(*svc->blocking, std::move(save));
    if (!blob) {
      if (blob.error().kind == ErrorKind::kTooLarge) {
        co_return Problem(
            RequestError{"urn:ietf:params:jmap:error:overQuota", 413, blob.error().message, ""});
      }
      spdlog::error("jmap: upload failed: {}", blob.error().message);
      http::Response r = http::Response::Text(503, "storage temporarily failing\n");
      r.Set("Retry-After", std::to_string(cfg->http.retry_after_seconds));
      co_return r;
    }
    json::object o;
    o["accountId"] = AccountId(account);
    o["blobId"] = *blob;
    o["type"] = type;
    o["size"] = body->size();
    co_return http::Response::Json(201, json::serialize(o));
  };
  router.AddPrefix("POST", "/jmap/upload/", upload, http::Access::kAccount);

  // Download (section 6.2): GET /jmap/download/{accountId}/{blobId}/{name}?accept={type}
  auto download = [svc, data_dir](http::Request& req) -> awaitable<http::Response> {
    std::string_view rest = req.rest;
    size_t a = rest.find('/');
    size_t b = a == std::string_view::npos ? a : rest.find('/', a + 1);
    if (b == std::string_view::npos) co_return http::Response::Text(404, "not found\n");
    std::string acct(rest.substr(0, a)), blob(rest.substr(a + 1, b - a - 1));
    std::string name(rest.substr(b + 1));
    int64_t account = req.account->account_id;
    if (acct != AccountId(account)) co_return http::Response::Text(404, "not found\n");
    auto cfg = svc->config->Get();
    auto ctx = std::make_shared<Context>(
        Context{*svc, *cfg, account, req.account->address, data_dir, {}, std::nullopt, {}});
    auto read = [ctx, blob, cfg]() { return ReadBlob(*ctx, blob); };
    Result<std::string> data = co_await io::Offload(*svc->blocking, std::move(read));
    if (!data) {
      if (data.error().kind == ErrorKind::kNotFound)
        co_return http::Response::Text(404, "not found\n");
      http::Response r = http::Response::Text(503, "storage temporarily failing\n");
      r.Set("Retry-After", std::to_string(cfg->http.retry_after_seconds));
      co_return r;
    }
    http::Response r;
    std::string type = req.Param("accept").value_or("application/octet-stream");
    if (type.find_first_of("\r\n") != std::string::npos) type = "application/octet-stream";
    r.Set("Content-Type", type);
    std::string safe;
    for (char c : name)
      if (c != '"' && c != '\\' && static_cast<unsigned char>(c) >= 0x20) safe.push_back(c);
    r.Set("Content-Disposition", "attachment; filename=\"" + safe + "\"");
    r.Set("Cache-Control", "private, immutable, max-age=31536000");
    // A blob's content never changes: its id is its hash.
    r.body = std::move(*data);
    co_return r;
  };
  router.AddPrefix("GET", "/jmap/download/", download, http::Access::kAccount);

  // EventSource (section 7.3): GET /jmap/eventsource/?types=&closeafter=&ping=
  auto events = [svc, hub, data_dir](http::Request& req) -> awaitable<http::Response> {
    auto cfg = svc->config->Get();
    std::set<std::string> types;
    std::string list = req.Param("types").value_or("*");
    for (auto t : SplitOn(list, ',')) types.insert(std::string(t));
    bool close_after = req.Param("closeafter").value_or("no") == "state";
    auto ping_s = ParseUint(req.Param("ping").value_or("0"));
    if (!ping_s) co_return http::Response::Text(400, "bad ping\n");
    uint64_t ping =
        std::min<uint64_t>(*ping_s, static_cast<uint64_t>(cfg->jmap.push_ping_max_seconds));
    int64_t account = req.account->account_id;
    std::string address = req.account->address;
    store::Store* store = svc->store;
    asio::thread_pool* blocking = svc->blocking;
    server::AccountSessions* sessions = svc->account_sessions;
    http::Response r;
    r.Set("Content-Type", "text/event-stream");
    r.Set("Cache-Control", "no-cache");
    r.stream = [hub, types, close_after, ping, account, address, store, blocking, sessions, svc,
                data_dir](http::StreamWriter& w) -> awaitable<void> {
      auto ex = co_await asio::this_coro::executor;
      // The stream is a session of the account (server/account_sessions.h):
      // `hato user passwd`, `remove` or `signout` ends it, like IMAP and POP3.
      auto find = [store, address]() { return store->FindAccount(address); };
      Result<store::Account> acct = co_await io::Offload(*blocking, std::move(find));
      if (!acct || acct->id != account) co_return;
      bool sieve = Wants(types, "SieveScript");
      auto compute = [svc, account, address, data_dir, sieve]() {
        auto cfg = svc->config->Get();
        Context ctx{*svc, *cfg, account, address, data_dir, {}, std::nullopt, {}};
        return ComputeStates(ctx, sieve);
      };
      PushStates last = co_await io::Offload(*blocking, compute);
      asio::steady_timer timer(ex);
      EndOnAccountChange ender(timer);
      server::AccountSessions::Registration registration(sessions, account, acct->session_epoch,
                                                         &ender);
      PushHub::Waiter waiter;
      waiter.timer = &timer;
      waiter.mailboxes = last.mailboxes;
      waiter.max_mailbox = last.max_mailbox;
      waiter.account = account;
      waiter.watch_queue = last.pending;
      hub->Add(&waiter, ex);
      struct Unregister {
        PushHub& h;
        PushHub::Waiter* w;
        ~Unregister() { h.Remove(w); }
      } unregister{*hub, &waiter};
      bool ok = !ender.ended && co_await w.Write(": hato\n\n");
      while (ok && !w.stop_requested() && !ender.ended) {
        timer.expires_after(ping > 0 ? std::chrono::seconds(ping) : std::chrono::seconds(30));
        boost::system::error_code ec;
        auto token = asio::redirect_error(asio::use_awaitable, ec);
        co_await timer.async_wait(token);
        if (ender.ended) break;
        // A submission waiting for the queue is also looked at when the
        // timer ends (the queue of another node wakes no one here).
        if (waiter.fired || waiter.watch_queue) {
          bool fired = waiter.fired;
          waiter.fired = false;
          PushStates now = co_await io::Offload(*blocking, compute);
          if (!now.ok) continue;
          waiter.mailboxes = now.mailboxes;
          waiter.max_mailbox = now.max_mailbox;
          waiter.watch_queue = now.pending;
          json::object changed;
          if (now.email != last.email) {
            if (Wants(types, "Email")) changed["Email"] = now.email;
            if (Wants(types, "Thread")) changed["Thread"] = now.email;
            if (now.uidnext_sum != last.uidnext_sum && Wants(types, "EmailDelivery"))
              changed["EmailDelivery"] = now.email;
          }
          if (now.mailbox != last.mailbox && Wants(types, "Mailbox"))
            changed["Mailbox"] = now.mailbox;
          if (!now.submission.empty() && now.submission != last.submission &&
              Wants(types, "EmailSubmission"))
            changed["EmailSubmission"] = now.submission;
          if (!now.sieve.empty() && now.sieve != last.sieve) changed["SieveScript"] = now.sieve;
          last = std::move(now);
          if (changed.empty()) {
            if (!fired && ping > 0) {
              std::string msg =
                  "event: ping\ndata: {\"interval\":" + std::to_string(ping) + "}\n\n";
              ok = co_await w.Write(msg);
            }
            continue;
          }
          json::object accounts;
          accounts[AccountId(account)] = std::move(changed);
          json::object ev;
          ev["@type"] = "StateChange";
          ev["changed"] = std::move(accounts);
          std::string msg = "event: state\ndata: " + json::serialize(ev) + "\n\n";
          ok = co_await w.Write(msg);
          if (close_after) break;
        } else if (ping > 0) {
          std::string msg = "event: ping\ndata: {\"interval\":" + std::to_string(ping) + "}\n\n";
          ok = co_await w.Write(msg);
        }
      }
    };
    co_return r;
  };
  router.Add("GET", "/jmap/eventsource/", events, http::Access::kAccount);
  router.Add("GET", "/jmap/eventsource", events, http::Access::kAccount);
}

}  // namespace hato::jmap
