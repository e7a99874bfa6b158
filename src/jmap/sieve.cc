#include "jmap/sieve.h"

#include <algorithm>
#include <map>
#include <set>

#include "base/digest.h"
#include "base/strings.h"
#include "jmap/mail.h"
#include "sieve/deliver.h"
#include "sieve/interpret.h"

namespace hato::jmap {
namespace {

using Output = MethodOutput;

// The store's script id, stable across renames and never reused.
std::string IdOf(int64_t id) { return "S" + std::to_string(id); }

std::string StateOf(uint64_t seq) { return SieveState(seq); }
std::optional<uint64_t> SeqOf(std::string_view state) {
  if (state.size() < 2 || state[0] != 'c') return std::nullopt;
  return ParseUint(state.substr(1));
}

std::string BlobOf(std::string_view text) { return "b" + HexEncode(Sha256(text)); }

struct Row {
  std::string id, name, blob_id, text;
  bool active = false;
  uint64_t changed_seq = 0;  // SieveScriptInfo::changed_seq
};

// The user's scripts (the server's own left out), by name, and the state
// they were read at (texts read after it may be newer: a later /changes
// then reports them again, never misses them); with `since`, the ids of
// the scripts destroyed after it that existed at it (for /queryChanges).
struct Rows {
  std::vector<Row> rows;
  std::string state;
  uint64_t seq = 0, forgotten = 0;  // SieveScriptChanges::state, ::forgotten
  std::vector<std::string> destroyed;
};
Result<Rows> LoadRows(Context& ctx, uint64_t since = UINT64_MAX) {
  auto all = ctx.svc.store->SieveScriptsSince(ctx.account_id, since);
  if (!all) return all.error();
  Rows out;
  out.state = StateOf(all->state);
  out.seq = all->state;
  out.forgotten = all->forgotten;
  for (const auto& s : all->scripts) {
    if (sieve::IsReservedScriptName(s.name)) continue;
    auto text = ctx.svc.store->GetSieveScript(ctx.account_id, s.name);
    if (!text) {
      if (text.error().kind == ErrorKind::kNotFound) continue;  // deleted meanwhile
      return text.error();
    }
    out.rows.push_back(
        {IdOf(s.id), s.name, BlobOf(*text), std::move(*text), s.active, s.changed_seq});
  }
  for (const auto& g : all->destroyed) {
    if (sieve::IsReservedScriptName(g.name) || g.created_seq > since) continue;
    out.destroyed.push_back(IdOf(g.id));
  }
  return out;
}

// The account's state now (after a /set).
std::string CurrentState(Context& ctx, const std::string& fallback) {
  auto seq = ctx.svc.store->SieveScriptsState(ctx.account_id);
  return seq ? StateOf(*seq) : fallback;
}

Row* FindByName(std::vector<Row>& rows, std::string_view name) {
  auto it = std::find_if(rows.begin(), rows.end(), [&](const Row& r) { return r.name == name; });
  return it == rows.end() ? nullptr : &*it;
}

// The id the store gave a script just created.
Result<std::string> IdByName(Context& ctx, std::string_view name) {
  auto list = ctx.svc.store->ListSieveScripts(ctx.account_id);
  if (!list) return list.error();
  for (const auto& s : *list) {
    if (s.name == name) return IdOf(s.id);
  }
  return Err(ErrorKind::kNotFound, "script vanished: " + std::string(name));
}

json::object ToJson(const Row& r) {
  return json::object{
      {"id", r.id}, {"name", r.name}, {"blobId", r.blob_id}, {"isActive", r.active}};
}

json::object SetError(std::string type, std::string description = {}) {
  json::object e{{"type", std::move(type)}};
  if (!description.empty()) e["description"] = std::move(description);
  return e;
}

json::object InvalidProperty(std::string_view property, std::string description = {}) {
  json::object e = SetError("invalidProperties", std::move(description));
  e["properties"] = json::array{json::string(property)};
  return e;
}

// A check's refusal as a SetError (RFC 9661 section 2.4; RFC 8620 section 5.3).
json::object CheckError(const sieve::StoreCheck& c) {
  using Kind = sieve::StoreCheck::Kind;
  switch (c.kind) {
    case Kind::kInvalid:
      return SetError("invalidSieve", c.message);
    case Kind::kTooLarge:
      return SetError("tooLarge", c.message);
    case Kind::kTooMany:
      return SetError("overQuota", c.message);
    default:
      return SetError("serverFail", c.message);
  }
}

// RFC 9661 section 2.3: the standard /get.
Output Get(Context& ctx, json::object& args) {
  auto loaded = LoadRows(ctx);
  if (!loaded) return Output::Error("serverFail", loaded.error().message);
  std::vector<Row>* rows = &loaded->rows;
  std::set<std::string> props = {"id", "name", "blobId", "isActive"};
  if (const json::value* p = args.if_contains("properties"); p && !p->is_null()) {
    if (!p->is_array()) return Output::Error("invalidArguments", "properties");
    std::set<std::string> want = {"id"};
    for (const auto& v : p->as_array()) {
      if (!v.is_string() || !props.count(std::string(v.as_string()))) {
        return Output::Error("invalidArguments", "unknown property");
      }
      want.insert(std::string(v.as_string()));
    }
    props = std::move(want);
  }
  auto shaped = [&](const Row& r) {
    json::object o = ToJson(r), out;
    for (const auto& kv : o) {
      if (props.count(std::string(kv.key()))) out[kv.key()] = kv.value();
    }
    return out;
  };
  json::array list, not_found;
  const json::value* ids = args.if_contains("ids");
  if (ids == nullptr || ids->is_null()) {
    if (rows->size() > ctx.cfg.jmap.max_objects_in_get) return Output::Error("requestTooLarge");
    for (const auto& r : *rows) list.push_back(shaped(r));
  } else if (ids->is_array()) {
    if (ids->as_array().size() > ctx.cfg.jmap.max_objects_in_get) {
      return Output::Error("requestTooLarge");
    }
    for (const auto& id : ids->as_array()) {
      if (!id.is_string()) return Output::Error("invalidArguments", "ids");
      auto it = std::find_if(rows->begin(), rows->end(),
                             [&](const Row& r) { return r.id == id.as_string(); });
      if (it == rows->end()) {
        not_found.push_back(id);
      } else {
        list.push_back(shaped(*it));
      }
    }
  } else {
    return Output::Error("invalidArguments", "ids");
  }
  json::object r{{"accountId", AccountId(ctx.account_id)},
                 {"state", loaded->state},
                 {"list", std::move(list)},
                 {"notFound", std::move(not_found)}};
  return Output::One("SieveScript/get", std::move(r));
}

// A name for a script created without one (RFC 9661 section 2.1: server-set then).
std::string FreshName(const std::vector<Row>& rows) {
  for (int i = 1;; ++i) {
    std::string name = "script" + std::to_string(i);
    if (std::none_of(rows.begin(), rows.end(), [&](const Row& r) { return r.name == name; })) {
      return name;
    }
  }
}

// RFC 9661 section 2.4: the standard /set, then onSuccessActivateScript /
// onSuccessDeactivateScript when every change succeeded.
Output Set(Context& ctx, json::object& args) {
  store::Store& store = *ctx.svc.store;
  const config::SieveConfig& limits = ctx.cfg.sieve;
  auto loaded = LoadRows(ctx);
  if (!loaded) return Output::Error("serverFail", loaded.error().message);
  std::vector<Row>* rows = &loaded->rows;
  std::string old_state = loaded->state;
  bool changed = false;  // something was written: push (RFC 8620 section 7)
  if (const json::value* s = args.if_contains("ifInState"); s && !s->is_null()) {
    if (!s->is_string() || s->as_string() != old_state) return Output::Error("stateMismatch");
  }
  size_t count = 0;
  for (const char* k : {"create", "update"}) {
    if (const json::value* v = args.if_contains(k); v && v->is_object()) {
      count += v->as_object().size();
    }
  }
  if (const json::value* v = args.if_contains("destroy"); v && v->is_array()) {
    count += v->as_array().size();
  }
  if (count > ctx.cfg.jmap.max_objects_in_set) return Output::Error("requestTooLarge");

  json::object created, not_created, updated, not_updated, not_destroyed;
  json::array destroyed;
  std::map<std::string, std::string> created_ids;  // creation id -> script id
  auto find = [&](std::string_view id) -> Row* {
    auto it = std::find_if(rows->begin(), rows->end(), [&](const Row& r) { return r.id == id; });
    return it == rows->end() ? nullptr : &*it;
  };
  // The text of a blobId, or the SetError that refuses it.
  auto blob_text = [&](const json::value& v, std::string* text) -> std::optional<json::object> {
    if (!v.is_string()) return InvalidProperty("blobId");
    std::string blob(v.as_string());
    if (blob.starts_with("#")) {
      auto it = ctx.created_ids.find(blob.substr(1));
      if (it != ctx.created_ids.end()) blob = it->second;
    }
    auto data = ReadBlob(ctx, blob);
    if (!data) {
      if (data.error().kind != ErrorKind::kNotFound) return SetError("serverFail");
      json::object e = SetError("blobNotFound");
      e["notFound"] = json::array{json::string(blob)};
      return e;
    }
    *text = std::move(*data);
    return std::nullopt;
  };

  if (const json::value* c = args.if_contains("create"); c && !c->is_null()) {
    if (!c->is_object()) return Output::Error("invalidArguments", "create");
    for (const auto& kv : c->as_object()) {
      std::string cid(kv.key());
      if (!kv.value().is_object()) {
        not_created[cid] = SetError("invalidProperties");
        continue;
      }
      const json::object& o = kv.value().as_object();
      std::optional<json::object> error;
      std::string name, text;
      bool named = false;
      for (const auto& p : o) {
        std::string_view k = p.key();
        if (k == "name") {
          if (p.value().is_null()) continue;
          if (!p.value().is_string()) {
            error = InvalidProperty("name");
            break;
          }
          name = p.value().as_string();
          named = true;
        } else if (k == "blobId") {
          continue;
        } else if (k == "isActive") {
          // Server-set (section 2.1): only its default may be sent.
          if (!p.value().is_bool() || p.value().as_bool()) {
            error = InvalidProperty("isActive", "use onSuccessActivateScript");
            break;
          }
        } else {
          error = InvalidProperty(k);
          break;
        }
      }
      if (!error && !named) name = FreshName(*rows);
      if (!error) {
        if (auto st = sieve::CheckScriptName(name); !st) {
          error = InvalidProperty("name", st.error().message);
        }
      }
      if (!error) {
        for (const auto& r : *rows) {
          if (r.name == name) {
            error = SetError("alreadyExists");
            (*error)["existingId"] = r.id;
            break;
          }
        }
      }
      if (!error) {
        const json::value* b = o.if_contains("blobId");
        if (!b) {
          error = InvalidProperty("blobId", "blobId is required");
        } else {
          error = blob_text(*b, &text);
        }
      }
      if (!error) {
        sieve::StoreCheck check = sieve::CheckStore(store, ctx.account_id, name, text, limits);
        if (!check.ok()) error = CheckError(check);
      }
      if (!error) {
        if (auto st = store.PutSieveScript(ctx.account_id, name, text); !st) {
          return Output::Error("serverFail", st.error().message);
        }
        changed = true;
        auto id = IdByName(ctx, name);
        if (!id) return Output::Error("serverFail", id.error().message);
        Row r{*id, name, BlobOf(text), text, false};
        json::object out{{"id", r.id}, {"blobId", r.blob_id}, {"isActive", false}};
        if (!named) out["name"] = name;
        created[cid] = std::move(out);
        created_ids[cid] = r.id;
        ctx.created_ids[cid] = r.id;
        rows->push_back(std::move(r));
        continue;
      }
      not_created[cid] = std::move(*error);
    }
  }

  if (const json::value* u = args.if_contains("update"); u && !u->is_null()) {
    if (!u->is_object()) return Output::Error("invalidArguments", "update");
    for (const auto& kv : u->as_object()) {
      std::string id(kv.key());
      Row* row = find(id);
      if (!row) {
        not_updated[id] = SetError("notFound");
        continue;
      }
      if (!kv.value().is_object()) {
        not_updated[id] = SetError("invalidProperties");
        continue;
      }
      std::optional<json::object> error;
      std::optional<std::string> text;
      std::optional<std::string> rename;
      for (const auto& p : kv.value().as_object()) {
        std::string_view k = p.key();
        if (k == "id") {
          if (!p.value().is_string() || p.value().as_string() != row->id)
            error = InvalidProperty(k);
        } else if (k == "name") {
          // A rename keeps the id (the store's, not the name).
          if (!p.value().is_string()) {
            error = InvalidProperty(k);
          } else if (p.value().as_string() != row->name) {
            std::string to(p.value().as_string());
            if (auto st = sieve::CheckScriptName(to); !st) {
              error = InvalidProperty(k, st.error().message);
            } else if (Row* other = FindByName(*rows, to)) {
              error = SetError("alreadyExists");
              (*error)["existingId"] = other->id;
            } else {
              rename = std::move(to);
            }
          }
        } else if (k == "isActive") {
          if (!p.value().is_bool() || p.value().as_bool() != row->active) {
            error = InvalidProperty(k, "use onSuccessActivateScript");
          }
        } else if (k == "blobId") {
          std::string t;
          error = blob_text(p.value(), &t);
          if (!error) text = std::move(t);
        } else {
          error = InvalidProperty(k);
        }
        if (error) break;
      }
      // The text is checked under its current name (a replacement: the
      // number of scripts stays), then the rename, then the text is stored.
      if (!error && text) {
        sieve::StoreCheck check =
            sieve::CheckStore(store, ctx.account_id, row->name, *text, limits);
        if (!check.ok()) error = CheckError(check);
      }
      if (!error && rename) {
        if (auto st = store.RenameSieveScript(ctx.account_id, row->name, *rename); !st) {
          if (st.error().kind == ErrorKind::kExists) {
            error = SetError("alreadyExists");
          } else if (st.error().kind == ErrorKind::kNotFound) {
            error = SetError("notFound");
          } else {
            return Output::Error("serverFail", st.error().message);
          }
        } else {
          changed = true;
          row->name = std::move(*rename);
        }
      }
      if (!error && text) {
        if (auto st = store.PutSieveScript(ctx.account_id, row->name, *text); !st) {
          return Output::Error("serverFail", st.error().message);
        }
        changed = true;
      }
      if (error) {
        not_updated[id] = std::move(*error);
        continue;
      }
      if (text) {
        row->text = std::move(*text);
        row->blob_id = BlobOf(row->text);
        updated[id] = json::object{{"blobId", row->blob_id}};
      } else {
        updated[id] = nullptr;
      }
    }
  }

  if (const json::value* d = args.if_contains("destroy"); d && !d->is_null()) {
    if (!d->is_array()) return Output::Error("invalidArguments", "destroy");
    for (const auto& v : d->as_array()) {
      if (!v.is_string()) return Output::Error("invalidArguments", "destroy");
      std::string id(v.as_string());
      Row* row = find(id);
      if (!row) {
        not_destroyed[id] = SetError("notFound");
        continue;
      }
      // Section 2.4: the active script cannot be destroyed.
      if (row->active) {
        not_destroyed[id] = SetError("sieveIsActive", "deactivate it first");
        continue;
      }
      if (auto st = store.DeleteSieveScript(ctx.account_id, row->name); !st) {
        if (st.error().kind == ErrorKind::kNotFound) {
          not_destroyed[id] = SetError("notFound");
          continue;
        }
        return Output::Error("serverFail", st.error().message);
      }
      changed = true;
      destroyed.push_back(json::string(id));
      rows->erase(rows->begin() + (row - rows->data()));
    }
  }

  // Activation only when every change above succeeded (section 2.4).
  bool all_ok = not_created.empty() && not_updated.empty() && not_destroyed.empty();
  const json::value* activate = args.if_contains("onSuccessActivateScript");
  const json::value* deactivate = args.if_contains("onSuccessDeactivateScript");
  Row* target = nullptr;
  if (all_ok && activate && activate->is_string()) {
    std::string id(activate->as_string());
    if (id.starts_with("#")) {
      auto it = ctx.created_ids.find(id.substr(1));
      id = it == ctx.created_ids.end() ? std::string() : it->second;
    }
    target = find(id);  // an unknown id is ignored
  }
  bool off = all_ok && deactivate && deactivate->is_bool() && deactivate->as_bool();
  if (target || off) {
    Row* previous = nullptr;
    for (auto& r : *rows) {
      if (r.active) previous = &r;
    }
    if (target != previous) {
      if (auto st = store.SetActiveSieveScript(ctx.account_id, target ? target->name : ""); !st) {
        return Output::Error("serverFail", st.error().message);
      }
      changed = true;
      // Each change reported with isActive (section 2.4).
      auto report = [&](Row& r, bool on) {
        r.active = on;
        for (const auto& [cid, sid] : created_ids) {
          if (sid == r.id) {
            created[cid].as_object()["isActive"] = on;
            return;
          }
        }
        json::value& u = updated[r.id];
        if (!u.is_object()) u = json::object{};
        u.as_object()["isActive"] = on;
      };
      if (previous) report(*previous, false);
      if (target) report(*target, true);
    }
  }

  if (changed && ctx.svc.changes) ctx.svc.changes->PublishRecords(ctx.account_id);
  json::object r{{"accountId", AccountId(ctx.account_id)},
                 {"oldState", old_state},
                 {"newState", changed ? CurrentState(ctx, old_state) : old_state}};
  if (!created.empty()) r["created"] = std::move(created);
  if (!updated.empty()) r["updated"] = std::move(updated);
  if (!destroyed.empty()) r["destroyed"] = std::move(destroyed);
  if (!not_created.empty()) r["notCreated"] = std::move(not_created);
  if (!not_updated.empty()) r["notUpdated"] = std::move(not_updated);
  if (!not_destroyed.empty()) r["notDestroyed"] = std::move(not_destroyed);
  return Output::One("SieveScript/set", std::move(r));
}

// The scripts a /query's filter and sort give, in order, into `hits` (RFC
// 9661 section 2.5: filter name (contains) and isActive, sort by name or
// isActive); the method error when an argument is refused.
std::optional<Output> Matching(const std::vector<Row>& rows, const json::object& args,
                               std::vector<const Row*>& hits) {
  const json::value* filter = args.if_contains("filter");
  for (const auto& r : rows) {
    bool ok = true;
    if (filter && !filter->is_null()) {
      if (!filter->is_object()) return Output::Error("invalidArguments", "filter");
      for (const auto& kv : filter->as_object()) {
        if (kv.key() == "name" && kv.value().is_string()) {
          ok = ok && r.name.find(std::string(kv.value().as_string())) != std::string::npos;
        } else if (kv.key() == "isActive" && kv.value().is_bool()) {
          ok = ok && r.active == kv.value().as_bool();
        } else {
          return Output::Error("unsupportedFilter", std::string(kv.key()));
        }
      }
    }
    if (ok) hits.push_back(&r);
  }
  if (const json::value* sort = args.if_contains("sort"); sort && !sort->is_null()) {
    if (!sort->is_array()) return Output::Error("invalidArguments", "sort");
    for (auto it = sort->as_array().rbegin(); it != sort->as_array().rend(); ++it) {
      if (!it->is_object() || !it->as_object().contains("property") ||
          !it->as_object().at("property").is_string()) {
        return Output::Error("invalidArguments", "sort");
      }
      std::string prop(it->as_object().at("property").as_string());
      bool asc = true;
      if (const json::value* a = it->as_object().if_contains("isAscending"); a && a->is_bool()) {
        asc = a->as_bool();
      }
      if (prop != "name" && prop != "isActive") return Output::Error("unsupportedSort", prop);
      std::stable_sort(hits.begin(), hits.end(), [&](const Row* a, const Row* b) {
        bool less = prop == "name" ? a->name < b->name : a->active < b->active;
        bool more = prop == "name" ? b->name < a->name : b->active < a->active;
        return asc ? less : more;
      });
    }
  }
  return std::nullopt;
}

// RFC 9661 section 2.5: the standard /query.
Output Query(Context& ctx, json::object& args) {
  auto loaded = LoadRows(ctx);
  if (!loaded) return Output::Error("serverFail", loaded.error().message);
  std::vector<const Row*> hits;
  if (auto refused = Matching(loaded->rows, args, hits)) return std::move(*refused);
  int64_t position = 0;
  if (const json::value* p = args.if_contains("position"); p && !p->is_null()) {
    if (!p->is_int64()) return Output::Error("invalidArguments", "position");
    position = p->as_int64();
  }
  if (position < 0) position = std::max<int64_t>(0, static_cast<int64_t>(hits.size()) + position);
  size_t limit = hits.size();
  if (const json::value* l = args.if_contains("limit"); l && !l->is_null()) {
    if (!l->is_int64() || l->as_int64() < 0) return Output::Error("invalidArguments", "limit");
    limit = static_cast<size_t>(l->as_int64());
  }
  json::array ids;
  for (size_t i = static_cast<size_t>(position); i < hits.size() && ids.size() < limit; ++i) {
    ids.push_back(json::string(hits[i]->id));
  }
  json::object r{{"accountId", AccountId(ctx.account_id)},
                 {"queryState", loaded->state},
                 {"canCalculateChanges", true},
                 {"position", position},
                 {"ids", std::move(ids)}};
  if (const json::value* t = args.if_contains("calculateTotal");
      t && t->is_bool() && t->as_bool()) {
    r["total"] = hits.size();
  }
  return Output::One("SieveScript/query", std::move(r));
}

// RFC 9661 section 2.5 (RFC 8620 section 5.6): the standard /queryChanges.
// A query state is the script state (/query's queryState). Every script
// changed since it (created, text, name or activation: the store stamps
// each with the counter) is reported as removed and, when it matches now,
// added at its index; scripts destroyed since are removed. Exact for the
// filters and sorts /query has, which read only name and isActive; those
// can change, so upToId is ignored (section 5.6). More changes than
// maxChanges: tooManyChanges.
Output QueryChanges(Context& ctx, json::object& args) {
  const json::value* since = args.if_contains("sinceQueryState");
  if (!since || !since->is_string()) return Output::Error("invalidArguments", "sinceQueryState");
  std::optional<uint64_t> max_changes;
  if (!ReadMaxChanges(args, max_changes)) return Output::Error("invalidArguments", "maxChanges");
  auto seq = SeqOf(since->as_string());
  if (!seq) return Output::Error("cannotCalculateChanges", "unknown state");
  auto loaded = LoadRows(ctx, *seq);
  if (!loaded) return Output::Error("serverFail", loaded.error().message);
  if (*seq > loaded->seq || *seq < loaded->forgotten) {
    return Output::Error("cannotCalculateChanges", "state too old or unknown");
  }
  std::vector<const Row*> hits;
  if (auto refused = Matching(loaded->rows, args, hits)) return std::move(*refused);
  json::array removed, added;
  for (const auto& r : loaded->rows) {
    if (r.changed_seq > *seq) removed.push_back(json::string(r.id));
  }
  for (const auto& id : loaded->destroyed) removed.push_back(json::string(id));
  for (size_t i = 0; i < hits.size(); ++i) {
    if (hits[i]->changed_seq <= *seq) continue;
    added.push_back(json::object{{"id", hits[i]->id}, {"index", static_cast<uint64_t>(i)}});
  }
  if (max_changes && removed.size() + added.size() > *max_changes) {
    return Output::Error("tooManyChanges");
  }
  json::object r{{"accountId", AccountId(ctx.account_id)},
                 {"oldQueryState", since->as_string()},
                 {"newQueryState", loaded->state},
                 {"removed", std::move(removed)},
                 {"added", std::move(added)}};
  if (const json::value* t = args.if_contains("calculateTotal");
      t && t->is_bool() && t->as_bool()) {
    r["total"] = hits.size();
  }
  return Output::One("SieveScript/queryChanges", std::move(r));
}

// RFC 9661 section 2 (RFC 8620 section 5.2): the standard /changes, from
// the store's counter: created and last-changed stamps of the scripts, and
// the tombstones of destroyed ones. A script created and destroyed since
// the state is not reported (section 5.2 SHOULD). More changes than
// maxChanges: cannotCalculateChanges (a client then starts over with /get;
// an account has at most [sieve] max_scripts scripts).
Output Changes(Context& ctx, json::object& args) {
  const json::value* since = args.if_contains("sinceState");
  if (!since || !since->is_string()) return Output::Error("invalidArguments", "sinceState");
  std::optional<uint64_t> max_changes;
  if (!ReadMaxChanges(args, max_changes)) return Output::Error("invalidArguments", "maxChanges");
  auto seq = SeqOf(since->as_string());
  if (!seq) return Output::Error("cannotCalculateChanges", "unknown state");
  auto all = ctx.svc.store->SieveScriptsSince(ctx.account_id, *seq);
  if (!all) return Output::Error("serverFail", all.error().message);
  if (*seq > all->state || *seq < all->forgotten) {
    return Output::Error("cannotCalculateChanges", "state too old or unknown");
  }
  json::array created, updated, destroyed;
  for (const auto& s : all->scripts) {
    if (sieve::IsReservedScriptName(s.name)) continue;
    if (s.created_seq > *seq) {
      created.push_back(json::string(IdOf(s.id)));
    } else if (s.changed_seq > *seq) {
      updated.push_back(json::string(IdOf(s.id)));
    }
  }
  for (const auto& g : all->destroyed) {
    if (sieve::IsReservedScriptName(g.name) || g.created_seq > *seq) continue;
    destroyed.push_back(json::string(IdOf(g.id)));
  }
  if (max_changes && created.size() + updated.size() + destroyed.size() > *max_changes) {
    return Output::Error("cannotCalculateChanges", "more changes than maxChanges");
  }
  json::object r{{"accountId", AccountId(ctx.account_id)}, {"oldState", since->as_string()},
                 {"newState", StateOf(all->state)},        {"hasMoreChanges", false},
                 {"created", std::move(created)},          {"updated", std::move(updated)},
                 {"destroyed", std::move(destroyed)}};
  return Output::One("SieveScript/changes", std::move(r));
}

// RFC 9661 section 2.6: compiles a blob without storing it.
Output Validate(Context& ctx, json::object& args) {
  const json::value* b = args.if_contains("blobId");
  if (!b || !b->is_string()) return Output::Error("invalidArguments", "blobId");
  std::string blob(b->as_string());
  if (blob.starts_with("#")) {
    auto it = ctx.created_ids.find(blob.substr(1));
    if (it != ctx.created_ids.end()) blob = it->second;
  }
  auto text = ReadBlob(ctx, blob);
  json::object r{{"accountId", AccountId(ctx.account_id)}};
  if (!text) {
    if (text.error().kind != ErrorKind::kNotFound) {
      return Output::Error("serverFail", text.error().message);
    }
    json::object e = SetError("blobNotFound");
    e["notFound"] = json::array{json::string(blob)};
    r["error"] = std::move(e);
    return Output::One("SieveScript/validate", std::move(r));
  }
  const config::SieveConfig& c = ctx.cfg.sieve;
  if (text->size() > c.max_script_bytes) {
    r["error"] = SetError(
        "tooLarge", "scripts are limited to " + std::to_string(c.max_script_bytes) + " bytes");
  } else if (auto script = sieve::Compile(*text, sieve::LimitsFrom(c).script); !script) {
    r["error"] = SetError("invalidSieve", script.error().message);
  } else {
    r["error"] = nullptr;
  }
  return Output::One("SieveScript/validate", std::move(r));
}

}  // namespace

// States are the store's script change counter (Store::SieveScriptsSince).
std::string SieveState(uint64_t seq) { return "c" + std::to_string(seq); }

json::object SieveSessionCapability() { return json::object{{"implementation", "Hato"}}; }

json::object SieveAccountCapability(const config::Config& cfg) {
  json::array extensions;
  for (const auto& c : sieve::Capabilities()) extensions.push_back(json::string(c));
  return json::object{{"maxSizeScriptName", 128},
                      {"maxSizeScript", cfg.sieve.max_script_bytes},
                      {"maxNumberScripts", cfg.sieve.max_scripts},
                      {"maxNumberRedirects", cfg.sieve.max_redirects},
                      {"sieveExtensions", std::move(extensions)},
                      {"notificationMethods", nullptr},
                      {"externalLists", nullptr}};
}

Result<std::string> ReadSieveBlob(Context& ctx, const std::string& hex) {
  auto loaded = LoadRows(ctx);
  if (!loaded) return loaded.error();
  for (auto& r : loaded->rows) {
    if (r.blob_id.size() == hex.size() + 1 && r.blob_id.compare(1, hex.size(), hex) == 0) {
      return std::move(r.text);
    }
  }
  return Err(ErrorKind::kNotFound, "no such blob");
}

const std::vector<MethodEntry>& SieveMethods() {
  static const std::vector<MethodEntry> methods = {
      {"SieveScript/get", kCapSieve, Get},
      {"SieveScript/changes", kCapSieve, Changes},
      {"SieveScript/set", kCapSieve, Set},
      {"SieveScript/query", kCapSieve, Query},
      {"SieveScript/queryChanges", kCapSieve, QueryChanges},
      {"SieveScript/validate", kCapSieve, Validate},
  };
  return methods;
}

}  // namespace hato::jmap
