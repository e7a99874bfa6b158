#include "jmap/vacation.h"

#include <cstring>

#include "base/digest.h"
#include "base/strings.h"
#include "sieve/deliver.h"

namespace hato::jmap {
namespace {

using Output = MethodOutput;
constexpr const char* kSingleton = "singleton";
constexpr const char* kMarker = "# jmap-vacation ";

json::object Default() {
  return json::object{{"id", kSingleton},   {"isEnabled", false}, {"fromDate", nullptr},
                      {"toDate", nullptr},  {"subject", nullptr}, {"textBody", nullptr},
                      {"htmlBody", nullptr}};
}

// The stored object, or the default (disabled) one.
Result<json::object> Load(Context& ctx) {
  auto text = ctx.svc.store->GetSieveScript(ctx.account_id, sieve::kVacationScript);
  if (!text) {
    if (text.error().kind == ErrorKind::kNotFound) return Default();
    return text.error();
  }
  if (!text->starts_with(kMarker)) return Default();
  size_t eol = text->find('\n');
  auto v = ParseJson(std::string_view(*text).substr(strlen(kMarker), eol - strlen(kMarker)));
  if (!v || !v->is_object()) return Default();
  return v->as_object();
}

std::string State(const json::object& o) {
  std::string state = "v";
  state.append(HexEncode(Sha256(json::serialize(o))), 0, 16);
  return state;
}

// A Sieve quoted string (RFC 5228 section 2.4.2).
std::string SieveString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// "2026-12-01T00:00:00Z" -> the iso8601 date-part form in UTC ("...+00:00").
std::string Iso(std::string_view utc) {
  std::string s(utc);
  if (!s.empty() && (s.back() == 'Z' || s.back() == 'z')) s = s.substr(0, s.size() - 1) + "+00:00";
  return s;
}

bool IsUtcDate(const json::value& v) {
  if (v.is_null()) return true;
  if (!v.is_string()) return false;
  std::string_view s = v.as_string();
  return s.size() == 20 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[19] == 'Z';
}

}  // namespace

std::string VacationScript(const json::object& v) {
  std::string out = kMarker + json::serialize(v) + "\n";
  if (!v.contains("isEnabled") || !v.at("isEnabled").is_bool() || !v.at("isEnabled").as_bool()) {
    return out + "# disabled\n";
  }
  out += "require [\"vacation\", \"date\", \"relational\"];\n";
  std::vector<std::string> conds;
  if (v.contains("fromDate") && v.at("fromDate").is_string()) {
    conds.push_back("currentdate :value \"ge\" \"iso8601\" " +
                    SieveString(Iso(v.at("fromDate").as_string())));
  }
  if (v.contains("toDate") && v.at("toDate").is_string()) {
    conds.push_back("currentdate :value \"lt\" \"iso8601\" " +
                    SieveString(Iso(v.at("toDate").as_string())));
  }
  std::string text;
  if (v.contains("textBody") && v.at("textBody").is_string()) {
    text = v.at("textBody").as_string();
  } else if (v.contains("htmlBody") && v.at("htmlBody").is_string()) {
    text = v.at("htmlBody").as_string();  // sent as text: no HTML part yet
  }
  if (text.empty()) text = "I am away and will read your message when I am back.";
  std::string action = "vacation :days 7 :handle \"jmap-vacation\"";
  if (v.contains("subject") && v.at("subject").is_string()) {
    action += " :subject " + SieveString(v.at("subject").as_string());
  }
  action += " " + SieveString(text) + ";\n";
  if (conds.empty()) return out + action;
  std::string test = conds.size() == 1 ? conds[0] : "allof (" + conds[0] + ", " + conds[1] + ")";
  return out + "if " + test + " {\n  " + action + "}\n";
}

namespace {

Output Get(Context& ctx, json::object& args) {
  auto v = Load(ctx);
  if (!v) return Output::Error("serverFail", v.error().message);
  json::array list, not_found;
  const json::value* ids = args.if_contains("ids");
  if (ids == nullptr || ids->is_null()) {
    list.push_back(*v);
  } else if (ids->is_array()) {
    for (const auto& id : ids->as_array()) {
      if (id.is_string() && id.as_string() == kSingleton) {
        list.push_back(*v);
      } else {
        not_found.push_back(id);
      }
    }
  } else {
    return Output::Error("invalidArguments", "ids");
  }
  json::object r{{"accountId", AccountId(ctx.account_id)},
                 {"state", State(*v)},
                 {"list", std::move(list)},
                 {"notFound", std::move(not_found)}};
  return Output::One("VacationResponse/get", std::move(r));
}

Output Set(Context& ctx, json::object& args) {
  auto v = Load(ctx);
  if (!v) return Output::Error("serverFail", v.error().message);
  std::string old_state = State(*v);
  if (const json::value* s = args.if_contains("ifInState")) {
    if (!s->is_string() || s->as_string() != old_state) return Output::Error("stateMismatch");
  }
  json::object r{{"accountId", AccountId(ctx.account_id)}, {"oldState", old_state}};
  // The singleton can be neither created nor destroyed (RFC 8621 section 8.2).
  if (const json::value* c = args.if_contains("create"); c && c->is_object()) {
    json::object nc;
    for (const auto& kv : c->as_object()) {
      nc[kv.key()] = json::object{{"type", "singleton"}};
    }
    if (!nc.empty()) r["notCreated"] = std::move(nc);
  }
  if (const json::value* d = args.if_contains("destroy"); d && d->is_array()) {
    json::object nd;
    for (const auto& id : d->as_array()) {
      if (id.is_string()) nd[id.as_string()] = json::object{{"type", "singleton"}};
    }
    if (!nd.empty()) r["notDestroyed"] = std::move(nd);
  }
  json::object updated, not_updated;
  if (const json::value* u = args.if_contains("update"); u && u->is_object()) {
    for (const auto& kv : u->as_object()) {
      if (kv.key() != kSingleton || !kv.value().is_object()) {
        not_updated[kv.key()] = json::object{{"type", "notFound"}};
        continue;
      }
      json::object next = *v;
      std::string bad;
      for (const auto& p : kv.value().as_object()) {
        std::string_view k = p.key();
        const json::value& val = p.value();
        bool ok = false;
        // The id may come back unchanged (a client sending the object it
        // got); it is not stored twice (RFC 8620 section 5.3: server-set).
        if (k == "id") {
          if (val.is_string() && val.as_string() == kSingleton) continue;
          bad = "id";
          break;
        }
        if (k == "isEnabled") ok = val.is_bool();
        if (k == "fromDate" || k == "toDate") ok = IsUtcDate(val);
        if (k == "subject" || k == "textBody" || k == "htmlBody") {
          ok = val.is_null() || val.is_string();
        }
        if (!ok) {
          bad = std::string(k);
          break;
        }
        next[k] = val;
      }
      if (!bad.empty()) {
        not_updated[kv.key()] = json::object{{"type", "invalidProperties"},
                                             {"properties", json::array{json::string(bad)}}};
        continue;
      }
      auto st = ctx.svc.store->PutSieveScript(ctx.account_id, sieve::kVacationScript,
                                              VacationScript(next));
      if (!st) return Output::Error("serverFail", st.error().message);
      *v = std::move(next);
      updated[kv.key()] = nullptr;
    }
  }
  if (!updated.empty()) r["updated"] = std::move(updated);
  if (!not_updated.empty()) r["notUpdated"] = std::move(not_updated);
  r["newState"] = State(*v);
  return Output::One("VacationResponse/set", std::move(r));
}

}  // namespace

const std::vector<MethodEntry>& VacationMethods() {
  static const std::vector<MethodEntry> methods = {
      {"VacationResponse/get", kCapVacation, Get},
      {"VacationResponse/set", kCapVacation, Set},
  };
  return methods;
}

}  // namespace hato::jmap
