#include "web/account_api.h"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <ctime>
#include <memory>

#include "auth/app_password.h"
#include "auth/password.h"
#include "auth/password_policy.h"
#include "auth/scram.h"
#include "base/strings.h"
#include "http/auth.h"
#include "io/await.h"
#include "server/login.h"
#include "sieve/deliver.h"
#include "smtp/address.h"
#include "transfer/mbox.h"
#include "transfer/transfer.h"
#include "web/api_common.h"
#include "web/autoconfig.h"
#include "web/zip_stream.h"

namespace hato::web {
namespace json = boost::json;
namespace {

json::array Servers(const std::vector<MailServer>& v) {
  json::array a;
  for (const auto& s : v) {
    json::object o;
    o["type"] = s.type;
    o["host"] = s.host;
    o["port"] = s.port;
    o["socket"] = std::string(SocketName(s.socket));
    a.push_back(std::move(o));
  }
  return a;
}

struct MeData {
  bool admin = false;
  store::QuotaUsage quota;
  std::vector<store::AliasInfo> aliases;
  std::vector<store::AccessToken> tokens;
  std::optional<sieve::Forwarding> forwarding;
};

// GET /web/api/me
http::Handler Me(server::Services* svc) {
  return [svc](http::Request& req) -> awaitable<http::Response> {
    store::Store* store = svc->store;
    int64_t id = req.account->account_id;
    std::string address = req.account->address;
    auto load = [store, id, address]() -> Result<MeData> {
      MeData d;
      auto admin = store->IsAdmin(id);
      if (!admin) return admin.error();
      d.admin = *admin;
      auto quota = store->GetQuota(id);
      if (!quota) return quota.error();
      d.quota = *quota;
      auto aliases = store->ListAliases(address);
      if (!aliases) return aliases.error();
      d.aliases = std::move(*aliases);
      auto tokens = store->ListTokens(id, std::time(nullptr));
      if (!tokens) return tokens.error();
      d.tokens = std::move(*tokens);
      auto fwd = store->GetSieveScript(id, sieve::kForwardScript);
      if (!fwd && fwd.error().kind != ErrorKind::kNotFound) return fwd.error();
      if (fwd) d.forwarding = sieve::ParseForwardScript(*fwd);
      return d;
    };
    Result<MeData> d = co_await io::Offload(*svc->blocking, std::move(load));
    if (!d) co_return StoreError(d.error());
    auto cfg = svc->config->Get();
    json::object o;
    o["address"] = address;
    o["admin"] = d->admin;
    json::object quota;
    if (d->quota.limit_bytes) {
      quota["limit"] = *d->quota.limit_bytes;
      quota["used"] = d->quota.used_bytes;
    } else {
      quota["limit"] = nullptr;
      quota["used"] = nullptr;
    }
    o["quota"] = std::move(quota);
    json::array aliases;
    for (const auto& a : d->aliases) aliases.push_back(json::string(a.alias));
    o["aliases"] = std::move(aliases);
    json::array apps;
    for (const auto& t : d->tokens) {
      if (t.kind != "app") continue;
      json::object a;
      a["id"] = t.id;
      a["label"] = t.label;
      a["createdAt"] = t.created_at;
      a["lastUsedAt"] = t.last_used_at == 0 ? json::value(nullptr) : json::value(t.last_used_at);
      apps.push_back(std::move(a));
    }
    o["appPasswords"] = std::move(apps);
    if (d->forwarding) {
      o["forwarding"] = json::object{{"to", d->forwarding->to}, {"keepCopy", d->forwarding->keep}};
    } else {
      o["forwarding"] = nullptr;
    }
    std::string domain = address.substr(address.rfind('@') + 1);
    ClientSettings s = SettingsFor(*cfg, domain);
    json::object setup;
    setup["incoming"] = Servers(s.incoming);
    setup["outgoing"] = Servers(s.outgoing);
    o["setup"] = std::move(setup);
    o["sessionHours"] = cfg->web.session_hours;
    co_return ApiJson(o);
  };
}

// POST /web/api/password
http::Handler ChangePassword(server::Services* svc) {
  return [svc](http::Request& req) -> awaitable<http::Response> {
    auto body = BodyObject(req);
    if (!body) co_return ApiError(400, "expected a JSON object");
    auto old_pw = StringField(*body, "old", kMaxPasswordField);
    auto new_pw = StringField(*body, "new", kMaxPasswordField);
    bool others = BoolField(*body, "signOutOthers");
    if (!old_pw || !new_pw || new_pw->empty())
      co_return ApiError(400, "the old and the new password are needed");
    std::string address = req.account->address;
    // The old password through the shared login path: its penalties apply,
    // and an app password is not the account's password.
    server::LoginResult check =
        co_await server::CheckLogin(*svc, req.peer_ip, address, std::move(*old_pw), "web");
    if (check.outcome == server::LoginOutcome::kTemporary) co_return ApiError(503, "try later");
    if (check.outcome != server::LoginOutcome::kOk || check.account_id != req.account->account_id)
      co_return ApiError(403, "the old password is not right");
    auto cfg = svc->config->Get();
    auth::PasswordPolicy policy{cfg->auth.min_password_length, cfg->auth.refuse_common_passwords};
    if (auto st = auth::CheckPassword(*new_pw, address, policy); !st)
      co_return ApiError(400, st.error().message);
    store::Store* store = svc->store;
    int64_t id = req.account->account_id;
    // The session making the change stays signed in.
    std::string keep;
    if (req.account->via == "cookie")
      keep = http::TokenHash(req.Cookie(http::kSessionCookie).value_or(""));
    std::string pw = std::move(*new_pw);
    auto change = [store, id, address, pw, others, keep]() -> Status {
      auto hash = auth::HashPassword(pw);
      if (!hash) return hash.error();
      auto scram = auth::NewScramVerifier(pw);
      if (!scram) return scram.error();
      // A new session epoch: every IMAP, POP3 and SMTP session ends.
      if (auto st = store->SetPassword(address, *hash, *scram); !st) return st;
      if (!others) return Ok();
      auto now = static_cast<int64_t>(std::time(nullptr));
      std::optional<int64_t> current;
      if (!keep.empty()) {
        auto t = store->FindToken(keep, now);
        if (t) current = t->id;
      }
      auto tokens = store->ListTokens(id, now);
      if (!tokens) return tokens.error();
      for (const auto& t : *tokens) {
        if (t.kind == "app" || (current && t.id == *current)) continue;
        if (auto st = store->RevokeToken(id, t.id); !st && st.error().kind != ErrorKind::kNotFound)
          return st;
      }
      return Ok();
    };
    Status st = co_await io::Offload(*svc->blocking, std::move(change));
    if (!st) {
      spdlog::error("web: password change for {}: {}", address, st.error().message);
      co_return StoreError(st.error());
    }
    spdlog::info("web: {} changed their password from {}{}", address, req.peer_ip,
                 others ? " and signed out their other sessions" : "");
    co_return ApiJson(json::object{{"changed", true}});
  };
}

// POST /web/api/app-passwords {"label"}
http::Handler AddAppPassword(server::Services* svc) {
  return [svc](http::Request& req) -> awaitable<http::Response> {
    auto body = BodyObject(req);
    if (!body) co_return ApiError(400, "expected a JSON object");
    auto label = StringField(*body, "label", auth::kMaxAppPasswordLabel);
    if (!label || label->empty()) co_return ApiError(400, "a name for the app password is needed");
    if (sodium_init() < 0) co_return ApiError(503, "try later");
    std::string random(auth::kAppPasswordChars, '\0');
    randombytes_buf(random.data(), random.size());
    std::string password = auth::FormatAppPassword(random);
    std::string hash = auth::AppPasswordHash(*auth::NormalizeAppPassword(password));
    store::Store* store = svc->store;
    int64_t id = req.account->account_id;
    std::string l = *label;
    auto add = [store, id, hash, l]() {
      return store->AddToken(id, hash, "app", l, 0, http::kMaxTokensPerAccount);
    };
    Result<int64_t> tid = co_await io::Offload(*svc->blocking, std::move(add));
    if (!tid) co_return StoreError(tid.error());
    spdlog::info("web: {} added app password {} ({})", req.account->address, *tid, LogSafe(l));
    co_return ApiJson(json::object{{"id", *tid}, {"label", l}, {"password", password}});
  };
}

// POST /web/api/app-passwords/revoke {"id"}
http::Handler RevokeAppPassword(server::Services* svc) {
  return [svc](http::Request& req) -> awaitable<http::Response> {
    auto body = BodyObject(req);
    if (!body) co_return ApiError(400, "expected a JSON object");
    auto tid = IntField(*body, "id");
    if (!tid) co_return ApiError(400, "the id of the app password is needed");
    store::Store* store = svc->store;
    int64_t id = req.account->account_id, token = *tid;
    auto revoke = [store, id, token]() -> Status {
      auto tokens = store->ListTokens(id, std::time(nullptr));
      if (!tokens) return tokens.error();
      for (const auto& t : *tokens) {
        if (t.id == token && t.kind == "app") return store->RevokeToken(id, token);
      }
      return Err(ErrorKind::kNotFound, "no such app password");
    };
    Status st = co_await io::Offload(*svc->blocking, std::move(revoke));
    if (!st) co_return StoreError(st.error());
    spdlog::info("web: {} revoked app password {}", req.account->address, token);
    co_return ApiJson(json::object{{"revoked", true}});
  };
}

// POST /web/api/forwarding {"to", "keepCopy"}: forwards the account's new
// mail to another address (sieve::kForwardScript); "to" empty stops it.
http::Handler SetForwarding(server::Services* svc) {
  return [svc](http::Request& req) -> awaitable<http::Response> {
    auto body = BodyObject(req);
    if (!body) co_return ApiError(400, "expected a JSON object");
    auto to = StringField(*body, "to", smtp::kMaxPathLength);
    if (!to) co_return ApiError(400, "the address to forward to is needed (\"\" stops forwarding)");
    bool keep = BoolField(*body, "keepCopy");
    std::string address = req.account->address;
    std::optional<sieve::Forwarding> fwd;
    if (!to->empty()) {
      auto mailbox = smtp::ParseMailbox(*to, true);
      if (!mailbox) co_return ApiError(400, "that is not a mail address");
      std::string target = mailbox->ToString();
      if (EqualsIgnoreCase(target, address))
        co_return ApiError(400, "mail cannot be forwarded to its own address");
      fwd = sieve::Forwarding{target, keep};
    }
    store::Store* store = svc->store;
    int64_t id = req.account->account_id;
    auto save = [store, id, fwd]() -> Status {
      if (fwd) return store->PutSieveScript(id, sieve::kForwardScript, sieve::ForwardScript(*fwd));
      auto st = store->DeleteSieveScript(id, sieve::kForwardScript);
      if (!st && st.error().kind == ErrorKind::kNotFound) return Ok();
      return st;
    };
    Status st = co_await io::Offload(*svc->blocking, std::move(save));
    if (!st) co_return StoreError(st.error());
    if (fwd) {
      spdlog::info("web: {} forwards their mail to {}{}", address, LogSafe(fwd->to),
                   fwd->keep ? " and keeps a copy" : "");
      co_return ApiJson(
          json::object{{"forwarding", json::object{{"to", fwd->to}, {"keepCopy", fwd->keep}}}});
    }
    spdlog::info("web: {} stopped forwarding their mail", address);
    co_return ApiJson(json::object{{"forwarding", nullptr}});
  };
}

// Messages of a folder as mbox text, and where the next batch starts.
struct Chunk {
  std::string text;
  size_t next = 0;
};

// Writes the folders `hato export` would write, in its order (the same names
// left out), as a zip of "<folder>.mbox" files or, with `only`, that one
// folder's mbox.
awaitable<void> StreamExport(server::Services* svc, int64_t account, std::string only, bool zip_it,
                             http::StreamWriter& w) {
  store::Store* store = svc->store;
  auto list = [store, account]() { return store->ListMailboxes(account); };
  auto mailboxes = co_await io::Offload(*svc->blocking, std::move(list));
  if (!mailboxes) {
    spdlog::error("web: export: {}", mailboxes.error().message);
    co_return;
  }
  ZipStream zip;
  int64_t now = std::time(nullptr);
  for (const auto& mb : *mailboxes) {
    if (!only.empty() && mb.name != only) continue;
    if (transfer::MboxExportProblem(mb.name)) continue;
    std::string name = mb.name;
    auto snap_fn = [store, account, name]() { return store->ListMessages(account, name); };
    auto snap = co_await io::Offload(*svc->blocking, std::move(snap_fn));
    if (!snap) {
      spdlog::error("web: export of folder {}: {}", LogSafe(name), snap.error().message);
      co_return;
    }
    auto metas = std::make_shared<std::vector<store::MessageMeta>>(std::move(snap->messages));
    if (zip_it) {
      std::string head = zip.Begin(name + ".mbox", now);
      if (!co_await w.Write(head)) co_return;
    }
    size_t i = 0;
    while (i < metas->size()) {
      auto read = [store, account, metas, i]() -> Result<Chunk> {
        Chunk c;
        size_t j = i;
        for (; j < metas->size() && j < i + kExportBatch && c.text.size() < kExportBatchBytes;
             ++j) {
          const auto& m = (*metas)[j];
          auto content = store->ReadMessage(account, m.id);
          if (!content) {
            if (content.error().kind == ErrorKind::kNotFound) continue;  // expunged meanwhile
            return content.error();
          }
          transfer::AppendMboxMessage(c.text, "", m.internal_date, *content);
        }
        c.next = j;
        return c;
      };
      Result<Chunk> c = co_await io::Offload(*svc->blocking, std::move(read));
      if (!c) {
        spdlog::error("web: export of folder {}: {}", LogSafe(name), c.error().message);
        co_return;  // the archive ends cut: the client sees an incomplete download
      }
      i = c->next;
      if (zip_it) zip.Data(c->text);
      if (!c->text.empty() && !co_await w.Write(c->text)) co_return;
    }
    if (zip_it) {
      std::string end = zip.End();
      if (!co_await w.Write(end)) co_return;
    }
  }
  if (zip_it) {
    std::string tail = zip.Finish();
    co_await w.Write(tail);
  }
}

// GET /web/api/export.zip, /web/api/export.mbox?folder=NAME
http::Handler Export(server::Services* svc, bool zip_it) {
  return [svc, zip_it](http::Request& req) -> awaitable<http::Response> {
    std::string folder;
    if (!zip_it) {
      folder = req.Param("folder").value_or("");
      if (folder.empty()) co_return ApiError(400, "expected ?folder=NAME");
      if (transfer::MboxExportProblem(folder))
        co_return ApiError(400, "this folder's name cannot be a file name");
    }
    int64_t account = req.account->account_id;
    std::string address = req.account->address;
    spdlog::info("web: {} downloads {} from {}", address,
                 zip_it ? std::string("all their mail") : "folder " + LogSafe(folder), req.peer_ip);
    http::Response r;
    r.Set("Cache-Control", "no-store");
    std::string file = address;
    for (char& c : file) {
      if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) c = '_';
    }
    if (zip_it) {
      r.Set("Content-Type", "application/zip");
      r.Set("Content-Disposition", "attachment; filename=\"" + file + ".zip\"");
    } else {
      r.Set("Content-Type", "application/mbox");
      r.Set("Content-Disposition", "attachment; filename=\"mail.mbox\"");
    }
    r.stream = [svc, account, folder, zip_it](http::StreamWriter& w) -> awaitable<void> {
      co_await StreamExport(svc, account, folder, zip_it, w);
    };
    co_return r;
  };
}

}  // namespace

void RegisterAccountRoutes(http::Router& router, const WebContext& ctx) {
  server::Services* svc = ctx.services;
  router.Add("GET", "/web/api/me", Me(svc), http::Access::kAccount);
  router.Add("POST", "/web/api/password", ChangePassword(svc), http::Access::kAccount);
  router.Add("POST", "/web/api/app-passwords", AddAppPassword(svc), http::Access::kAccount);
  router.Add("POST", "/web/api/app-passwords/revoke", RevokeAppPassword(svc),
             http::Access::kAccount);
  router.Add("POST", "/web/api/forwarding", SetForwarding(svc), http::Access::kAccount);
  router.Add("GET", "/web/api/export.zip", Export(svc, true), http::Access::kAccount);
  router.Add("GET", "/web/api/export.mbox", Export(svc, false), http::Access::kAccount);
}

}  // namespace hato::web
