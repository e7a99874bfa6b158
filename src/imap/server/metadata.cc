// METADATA (RFC 5464): GETMETADATA and SETMETADATA for the server ("") and
// for each mailbox of the account.
//
// The entries live in the store as one per-account document (kind
// "imap-metadata", Store::GetJmapDocument/PutJmapDocument, so they are in
// backups and shared by every node of one PostgreSQL database): a JSON object
// from the owner ("" for the server, else the mailbox id, never reused, so a
// DELETE drops its entries and a RENAME keeps them, section 3.3) to an object
// from the lower-cased entry name to its value in base64 (values may be any
// octets, section 5: literal8). /private/ and /shared/ entries of a mailbox are
// the account's own (no other user sees its mailboxes); the server's /shared/
// entries are the administrator's and read-only here (NO, as Dovecot).
//
// Limits (section 4.3): kMaxMetadataValueBytes per value (NO [METADATA
// MAXSIZE n]) and kMaxMetadataEntries per owner (NO [METADATA TOOMANY]).
// A write is announced to the account's NOTIFY sessions (notify.cc).
// Writes in this process are serialized; two nodes writing the same
// account's document at once keep the last write.
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <functional>
#include <map>
#include <mutex>

#include "base/strings.h"
#include "imap/proto/strings.h"
#include "imap/server/session.h"
#include "io/await.h"

namespace hato::imap {
namespace {

namespace json = boost::json;

constexpr const char* kMetadataDocument = "imap-metadata";
// Below imap.max_command_literal (64 KiB), which bounds any value sent.
constexpr size_t kMaxMetadataValueBytes = 16 * 1024;
constexpr size_t kMaxMetadataEntries = 128;

using Entries = std::map<std::string, std::string>;  // name -> value, sorted

struct Outcome {
  std::string untagged;  // "* METADATA ..." (CRLF-terminated lines)
  std::string status = "OK";
  std::string text;
};

// The document, or an empty object when none was stored yet.
Result<json::object> LoadDocument(store::Store& store, int64_t account) {
  auto text = store.GetJmapDocument(account, kMetadataDocument);
  if (!text) {
    if (text.error().kind == ErrorKind::kNotFound) return json::object{};
    return text.error();
  }
  boost::system::error_code ec;
  json::value v = json::parse(*text, ec);
  if (ec || !v.is_object()) return json::object{};  // unreadable: start again
  return std::move(v.as_object());
}

Entries EntriesOf(const json::object& doc, const std::string& owner) {
  Entries out;
  auto it = doc.find(owner);
  if (it == doc.end() || !it->value().is_object()) return out;
  for (const auto& [k, v] : it->value().as_object()) {
    if (!v.is_string()) continue;
    auto raw = Base64Decode(std::string_view(v.as_string()));
    if (raw) out.emplace(std::string(k), std::move(*raw));
  }
  return out;
}

// A value as the response carries it: nstring, or literal8 when it holds NUL.
void AppendValue(std::string& out, const std::string& v) {
  if (v.find('\0') != std::string::npos) {
    out += "~{" + std::to_string(v.size()) + "}\r\n" + v;
  } else {
    AppendString(out, v, /*utf8=*/false);
  }
}

// The owner key of a mailbox name: "" for the server, else the mailbox id;
// nullopt when there is no such mailbox.
std::optional<std::string> OwnerOf(store::Store& store, int64_t account,
                                   const std::optional<std::string>& canonical) {
  if (!canonical) return std::string();
  auto boxes = store.ListMailboxHeads(account);
  if (!boxes) return std::nullopt;
  for (const auto& b : *boxes) {
    if (b.name == *canonical) return std::to_string(b.id);
  }
  return std::nullopt;
}

Outcome Get(store::Store& store, int64_t account, const std::optional<std::string>& canonical,
            const std::string& wire_name, const GetMetadataArgs& a) {
  Outcome o;
  auto owner = OwnerOf(store, account, canonical);
  if (!owner) return {"", "NO", "[NONEXISTENT] no such mailbox"};
  auto doc = LoadDocument(store, account);
  if (!doc) return {"", "NO", "[UNAVAILABLE] try again later"};
  Entries entries = EntriesOf(*doc, *owner);
  std::vector<std::pair<std::string, const std::string*>> found;  // value null: NIL
  uint64_t longest = 0;
  auto add = [&](const std::string& name, const std::string* value) {
    if (value && a.max_size && value->size() > *a.max_size) {
      longest = std::max<uint64_t>(longest, value->size());  // section 4.2.1
      return;
    }
    found.emplace_back(name, value);
  };
  for (const auto& e : a.entries) {
    auto it = entries.find(e);
    if (a.depth == 0) {
      add(e, it == entries.end() ? nullptr : &it->second);
      continue;
    }
    // Section 4.2.2: the entry (when it exists) and its descendants, one
    // level (DEPTH 1) or all (DEPTH infinity).
    if (it != entries.end()) add(e, &it->second);
    std::string prefix = e + "/";
    for (auto d = entries.lower_bound(prefix); d != entries.end() && d->first.starts_with(prefix);
         ++d) {
      if (a.depth == 1 && d->first.find('/', prefix.size()) != std::string::npos) continue;
      add(d->first, &d->second);
    }
  }
  if (!found.empty()) {
    std::string line = "* METADATA ";
    AppendString(line, wire_name);
    line += " (";
    for (size_t i = 0; i < found.size(); ++i) {
      if (i > 0) line += ' ';
      line += found[i].first;
      line += ' ';
      if (found[i].second) {
        AppendValue(line, *found[i].second);
      } else {
        line += "NIL";
      }
    }
    o.untagged = line + ")\r\n";
  }
  o.text = longest ? "[METADATA LONGENTRIES " + std::to_string(longest) + "] GETMETADATA completed"
                   : "GETMETADATA completed";
  return o;
}

Outcome Set(store::Store& store, int64_t account, const std::optional<std::string>& canonical,
            const SetMetadataArgs& a) {
  for (const auto& [name, value] : a.entries) {
    if (!canonical && name.starts_with("/shared/")) {
      return {"", "NO", "[NOPERM] the server's /shared/ entries are read-only"};
    }
    if (value && value->size() > kMaxMetadataValueBytes) {
      return {"", "NO",
              "[METADATA MAXSIZE " + std::to_string(kMaxMetadataValueBytes) + "] value too large"};
    }
  }
  static std::mutex write_mu;  // one read-modify-write at a time in this process
  std::lock_guard lock(write_mu);
  auto owner = OwnerOf(store, account, canonical);
  if (!owner) return {"", "NO", "[NONEXISTENT] no such mailbox"};
  auto doc = LoadDocument(store, account);
  if (!doc) return {"", "NO", "[UNAVAILABLE] try again later"};
  Entries entries = EntriesOf(*doc, *owner);
  for (const auto& [name, value] : a.entries) {
    if (value) {
      entries[name] = *value;
    } else {
      entries.erase(name);
    }
  }
  if (entries.size() > kMaxMetadataEntries) {
    return {"", "NO",
            "[METADATA TOOMANY] at most " + std::to_string(kMaxMetadataEntries) +
                " entries per mailbox"};
  }
  // Entries of mailboxes that are gone are dropped on the way.
  auto boxes = store.ListMailboxHeads(account);
  if (!boxes) return {"", "NO", "[UNAVAILABLE] try again later"};
  json::object next;
  for (const auto& [k, v] : *doc) {
    bool live = k.empty();
    for (const auto& b : *boxes) live = live || std::to_string(b.id) == k;
    if (live && k != *owner) next[k] = v;
  }
  if (!entries.empty()) {
    json::object mine;
    for (const auto& [k, v] : entries) mine[k] = Base64Encode(v);
    next[*owner] = std::move(mine);
  }
  auto st = store.PutJmapDocument(account, kMetadataDocument, json::serialize(next));
  if (!st) {
    spdlog::error("imap: SETMETADATA: {}", st.error().message);
    return {"", "NO", "[UNAVAILABLE] try again later"};
  }
  return {"", "OK", "SETMETADATA completed"};
}

}  // namespace

Result<MetadataByOwner> ReadMetadata(store::Store& store, int64_t account) {
  auto doc = LoadDocument(store, account);
  if (!doc) return doc.error();
  MetadataByOwner out;
  for (const auto& [owner, v] : *doc) {
    std::string key(owner);
    Entries entries = EntriesOf(*doc, key);
    if (!entries.empty()) out.emplace(std::move(key), std::move(entries));
  }
  return out;
}

awaitable<bool> Session::HandleMetadata(const Command& c) {
  std::string wire = c.verb == Verb::kGetMetadata ? c.As<GetMetadataArgs>().mailbox
                                                  : c.As<SetMetadataArgs>().mailbox;
  std::optional<std::string> canonical;  // nullopt: the server
  if (!wire.empty()) {
    auto name = FromWire(wire);
    if (!name) {
      Tagged(c, "NO", "[NONEXISTENT] invalid mailbox name");
      co_return true;
    }
    canonical = *name;
  }
  store::Store* store = svc_.store;
  int64_t account = account_id_;
  // One named callable, built before the co_await (GCC 12 mishandles
  // lambda temporaries inside a co_await in a branch).
  std::function<Outcome()> work;
  if (c.verb == Verb::kGetMetadata) {
    work = [store, account, canonical, wire, a = c.As<GetMetadataArgs>()] {
      return Get(*store, account, canonical, wire, a);
    };
  } else {
    work = [store, account, canonical, a = c.As<SetMetadataArgs>()] {
      return Set(*store, account, canonical, a);
    };
  }
  Outcome o = co_await io::Offload(*svc_.blocking, std::move(work));
  // NOTIFY's MailboxMetadataChange and ServerMetadataChange (RFC 5465
  // sections 5.6, 5.7): this node's sessions hear it here, other nodes' by
  // the record channel PutJmapDocument writes on.
  if (c.verb == Verb::kSetMetadata && o.status == "OK") AnnounceMailboxList();
  conn_.output() += o.untagged;
  if (state_ == State::kSelected) co_await SendUpdates(true);
  Tagged(c, o.status, o.text);
  co_return true;
}

}  // namespace hato::imap
