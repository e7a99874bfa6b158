// URLAUTH (RFC 4467): access keys, tokens and authorized fetches (see
// urlauth.h), and the IMAP session's GENURLAUTH, RESETKEY and URLFETCH.
#include "imap/server/urlauth.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <mutex>

#include "base/digest.h"
#include "base/strings.h"
#include "http/request.h"
#include "imap/proto/strings.h"
#include "imap/server/session.h"
#include "imap/server/url_fetch.h"
#include "io/await.h"

namespace hato::imap {
namespace {

namespace json = boost::json;

constexpr const char* kUrlAuthDocument = "imap-urlauth";
constexpr size_t kKeyBytes = 32;

// Serializes this process's read-modify-write of the keys document.
std::mutex& KeysMutex() {
  static std::mutex m;
  return m;
}

Result<json::object> LoadKeys(store::Store& store, int64_t account) {
  auto text = store.GetJmapDocument(account, kUrlAuthDocument);
  if (!text) {
    if (text.error().kind == ErrorKind::kNotFound) return json::object{};
    return text.error();
  }
  boost::system::error_code ec;
  json::value v = json::parse(*text, ec);
  if (ec || !v.is_object()) return json::object{};  // unreadable: every URL is dead
  return std::move(v.as_object());
}

std::string NewKey() {
  std::string raw(kKeyBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size())) != 1) {
    std::abort();  // the OpenSSL DRBG does not fail once seeded; never use a weak key
  }
  return HexEncode(raw);
}

// The mailbox's key ("" when it has none and `create` is false).
Result<std::string> AccessKey(store::Store& store, int64_t account, int64_t mailbox_id,
                              bool create) {
  std::lock_guard lock(KeysMutex());
  auto keys = LoadKeys(store, account);
  if (!keys) return keys.error();
  std::string id = std::to_string(mailbox_id);
  if (const json::value* k = keys->if_contains(id); k && k->is_string()) {
    return std::string(k->as_string());
  }
  if (!create) return std::string();
  std::string key = NewKey();
  (*keys)[id] = key;
  if (auto st = store.PutJmapDocument(account, kUrlAuthDocument, json::serialize(*keys)); !st) {
    return st.error();
  }
  return key;
}

// INTERNAL (RFC 4467 section 7): HMAC over the rump URL with the access key.
std::string Token(std::string_view key, std::string_view rump) {
  return HexEncode(HmacSha256(key, rump));
}

Error NotFound(std::string what) { return Err(ErrorKind::kNotFound, std::move(what)); }

// The mailbox an absolute URL names in the owner's account.
Result<store::MailboxInfo> FindMailbox(store::Store& store, int64_t account, const ImapUrl& url) {
  auto name = store::CanonicalMailboxName(url.mailbox);
  if (!name) return NotFound("bad mailbox name");
  auto boxes = store.ListMailboxHeads(account);
  if (!boxes) return boxes.error();
  for (auto& b : *boxes) {
    if (b.name == *name) {
      if (url.uidvalidity && *url.uidvalidity != b.uidvalidity) break;
      return std::move(b);
    }
  }
  return NotFound("no such mailbox");
}

bool OurServer(const ImapUrl& url, const std::vector<std::string>& servers) {
  return std::find(servers.begin(), servers.end(), url.host) != servers.end();
}

// The user an access identifier "user+X" / "submit+X" names (decoded).
std::optional<std::string> AccessUser(std::string_view access, std::string_view prefix) {
  if (!StartsWithIgnoreCase(access, prefix) || access.size() == prefix.size()) return std::nullopt;
  return http::PercentDecode(access.substr(prefix.size()));
}

// access = ("submit+" enc-user) / ("user+" enc-user) / "authuser" /
// "anonymous" (RFC 4467 section 3, RFC 5092 section 11).
bool ValidAccess(std::string_view access) {
  return EqualsIgnoreCase(access, "anonymous") || EqualsIgnoreCase(access, "authuser") ||
         AccessUser(access, "user+") || AccessUser(access, "submit+");
}

// Whether `who` may use a URL with this access identifier: "user+X" only X
// in IMAP, "submit+X" only the submission server acting for X.
bool AccessAllows(std::string_view access, const UrlAuthRequester& who) {
  if (EqualsIgnoreCase(access, "anonymous")) return true;
  if (who.user.empty()) return false;
  if (EqualsIgnoreCase(access, "authuser")) return true;
  if (auto u = AccessUser(access, "user+")) return !who.submit && EqualsIgnoreCase(*u, who.user);
  if (auto u = AccessUser(access, "submit+")) return who.submit && EqualsIgnoreCase(*u, who.user);
  return false;
}

}  // namespace

std::optional<std::time_t> ParseRfc3339(std::string_view t) {
  // date-time = full-date "T" full-time; full-time = partial-time time-offset
  // (RFC 3339 section 5.6): YYYY-MM-DDTHH:MM:SS[.frac](Z / +HH:MM / -HH:MM).
  auto num = [&](size_t pos, size_t len, int& out) {
    if (pos + len > t.size()) return false;
    out = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (t[i] < '0' || t[i] > '9') return false;
      out = out * 10 + (t[i] - '0');
    }
    return true;
  };
  int y, mo, d, h, mi, s;
  if (!num(0, 4, y) || t.size() < 19 || t[4] != '-' || !num(5, 2, mo) || t[7] != '-' ||
      !num(8, 2, d) || (t[10] != 'T' && t[10] != 't') || !num(11, 2, h) || t[13] != ':' ||
      !num(14, 2, mi) || t[16] != ':' || !num(17, 2, s)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return std::nullopt;
  size_t pos = 19;
  if (pos < t.size() && t[pos] == '.') {
    ++pos;
    size_t start = pos;
    while (pos < t.size() && t[pos] >= '0' && t[pos] <= '9') ++pos;
    if (pos == start) return std::nullopt;
  }
  int offset = 0;
  if (pos < t.size() && (t[pos] == 'Z' || t[pos] == 'z') && pos + 1 == t.size()) {
    offset = 0;
  } else if (pos + 6 == t.size() && (t[pos] == '+' || t[pos] == '-') && t[pos + 3] == ':') {
    int oh, om;
    if (!num(pos + 1, 2, oh) || !num(pos + 4, 2, om) || oh > 23 || om > 59) return std::nullopt;
    offset = (oh * 60 + om) * 60 * (t[pos] == '-' ? -1 : 1);
  } else {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return timegm(&tm) - offset;
}

Result<std::string> GenerateUrlAuth(store::Store& store, int64_t account_id,
                                    const std::string& account_address,
                                    const std::vector<std::string>& servers,
                                    std::string_view rump_url) {
  auto url = ParseImapUrl(rump_url);
  if (!url) return url.error();
  // authimapurlrump = "imap://" enc-user "@" hostport "/" imessagepart
  // iurlauth-rump (RFC 5092 section 11): absolute, with a user, no verifier.
  if (url->form != ImapUrl::Form::kAbsolute || url->user.empty() || !url->auth.empty() ||
      url->access.empty() || !url->token.empty() || url->rump_end != rump_url.size()) {
    return Err(ErrorKind::kInvalid, "not a URLAUTH rump URL");
  }
  if (!ValidAccess(url->access)) return Err(ErrorKind::kInvalid, "unknown access identifier");
  if (!url->expire.empty() && !ParseRfc3339(url->expire)) {
    return Err(ErrorKind::kInvalid, "bad EXPIRE");
  }
  if (!OurServer(*url, servers)) return NotFound("the URL names another server");
  if (!EqualsIgnoreCase(url->user, account_address)) return NotFound("the URL names another user");
  auto box = FindMailbox(store, account_id, *url);
  if (!box) return box.error();
  auto key = AccessKey(store, account_id, box->id, /*create=*/true);
  if (!key) return key.error();
  return std::string(rump_url) + ":internal:" + Token(*key, rump_url);
}

Status ResetUrlAuthKeys(store::Store& store, int64_t account_id,
                        const std::optional<std::string>& mailbox) {
  std::optional<int64_t> id;
  if (mailbox) {
    auto boxes = store.ListMailboxHeads(account_id);
    if (!boxes) return boxes.error();
    for (const auto& b : *boxes) {
      if (b.name == *mailbox) id = b.id;
    }
    if (!id) return NotFound("no such mailbox");
  }
  std::lock_guard lock(KeysMutex());
  auto keys = LoadKeys(store, account_id);
  if (!keys) return keys.error();
  if (id) {
    // A new key at once, so that the next GENURLAUTH need not write.
    (*keys)[std::to_string(*id)] = NewKey();
  } else {
    keys->clear();
  }
  return store.PutJmapDocument(account_id, kUrlAuthDocument, json::serialize(*keys));
}

Result<std::string> FetchAuthorizedUrl(store::Store& store, std::string_view url_text,
                                       const UrlAuthRequester& who,
                                       const std::vector<std::string>& servers, std::time_t now) {
  auto url = ParseImapUrl(url_text);
  if (!url) return NotFound(url.error().message);
  // RFC 4467 section 3: an authorized URL is absolute, names its owner, and
  // carries access, mechanism and token; its rump is what the token signs.
  if (url->form != ImapUrl::Form::kAbsolute || url->user.empty() || url->access.empty() ||
      url->token.empty() || !EqualsIgnoreCase(url->mechanism, "INTERNAL")) {
    return NotFound("not a URLAUTH URL");
  }
  if (!OurServer(*url, servers)) return NotFound("the URL names another server");
  if (!AccessAllows(url->access, who)) return NotFound("access denied");
  if (!url->expire.empty()) {
    auto when = ParseRfc3339(url->expire);
    if (!when || *when <= now) return NotFound("expired");
  }
  auto owner = store.FindAccount(url->user);
  if (!owner) {
    if (owner.error().kind == ErrorKind::kNotFound) return NotFound("no such user");
    return owner.error();
  }
  auto box = FindMailbox(store, owner->id, *url);
  if (!box) return box.error();
  auto key = AccessKey(store, owner->id, box->id, /*create=*/false);
  if (!key) return key.error();
  if (key->empty()) return NotFound("no access key");
  std::string want = Token(*key, url_text.substr(0, url->rump_end));
  std::string got = AsciiLower(url->token);
  if (got.size() != want.size() || CRYPTO_memcmp(got.data(), want.data(), want.size()) != 0) {
    return NotFound("bad token");
  }
  UrlContext ctx;
  ctx.account_id = owner->id;
  ctx.user = url->user;
  ctx.servers = servers;
  return FetchUrl(store, *url, ctx);
}

// ---- The session's commands ----

awaitable<bool> Session::HandleUrlAuth(const Command& c) {
  store::Store* store = svc_.store;
  std::vector<std::string> servers = ThisServerNames(cfg_->hostname);
  int64_t account = account_id_;
  std::string address = address_;
  if (c.verb == Verb::kResetKey) {
    const auto& a = c.As<ResetKeyArgs>();
    for (const auto& m : a.mechanisms) {
      if (m != "INTERNAL") {
        Tagged(c, "NO", "unknown URLAUTH mechanism " + m);
        co_return true;
      }
    }
    std::optional<std::string> name;
    if (a.mailbox) {
      auto n = FromWire(*a.mailbox);
      if (!n) {
        Tagged(c, "NO", "no such mailbox");
        co_return true;
      }
      name = *n;
    }
    auto reset = [store, account, name]() { return ResetUrlAuthKeys(*store, account, name); };
    Status st = co_await io::Offload(*svc_.blocking, std::move(reset));
    if (!st) {
      if (st.error().kind == ErrorKind::kNotFound) {
        Tagged(c, "NO", "[NONEXISTENT] no such mailbox");
      } else {
        spdlog::error("imap: RESETKEY for {}: {}", address_, st.error().message);
        Tagged(c, "NO", "[UNAVAILABLE] try again later");
      }
      co_return true;
    }
    Tagged(c, "OK", "RESETKEY completed");
    co_return true;
  }
  if (c.verb == Verb::kGenUrlAuth) {
    const auto& a = c.As<GenUrlAuthArgs>();
    for (const auto& u : a.urls) {
      if (u.second != "INTERNAL") {
        Tagged(c, "NO", "unknown URLAUTH mechanism " + u.second);
        co_return true;
      }
    }
    // All or none: one untagged GENURLAUTH with every URL (RFC 4467 section 6.2).
    auto gen = [store, account, address, servers, &a]() -> Result<std::vector<std::string>> {
      std::vector<std::string> out;
      for (const auto& u : a.urls) {
        auto full = GenerateUrlAuth(*store, account, address, servers, u.first);
        if (!full) return full.error();
        out.push_back(std::move(*full));
      }
      return out;
    };
    auto r = co_await io::Offload(*svc_.blocking, std::move(gen));
    if (!r) {
      if (r.error().kind == ErrorKind::kInvalid) {
        Tagged(c, "BAD", "GENURLAUTH: " + r.error().message);
      } else if (r.error().kind == ErrorKind::kNotFound) {
        Tagged(c, "NO", "GENURLAUTH: " + r.error().message);
      } else {
        spdlog::error("imap: GENURLAUTH for {}: {}", address_, r.error().message);
        Tagged(c, "NO", "[UNAVAILABLE] try again later");
      }
      co_return true;
    }
    std::string line = "* GENURLAUTH";
    for (const auto& full : *r) {
      line += ' ';
      AppendString(line, full);
    }
    Reply(line);
    Tagged(c, "OK", "GENURLAUTH completed");
    co_return true;
  }
  // URLFETCH: one "* URLFETCH url nstring" per URL, NIL for those that do
  // not verify (RFC 4467 section 6.3); the command itself succeeds.
  // One URL at a time, each written (and flushed past a slice) before the
  // next is read: a URLFETCH naming many large messages holds one in memory.
  const auto& a = c.As<UrlFetchArgs>();
  for (const std::string& url : a.urls) {
    auto fetch = [store, address, servers, &url]() {
      auto data = FetchAuthorizedUrl(*store, url, {address, false}, servers, std::time(nullptr));
      if (!data && data.error().kind != ErrorKind::kNotFound) {
        spdlog::error("imap: URLFETCH: {}", data.error().message);
      }
      return data;
    };
    auto data = co_await io::Offload(*svc_.blocking, std::move(fetch));
    std::string& out = conn_.output();
    out += "* URLFETCH ";
    AppendString(out, url);
    out += ' ';
    if (data) {
      out += '{' + std::to_string(data->size()) + "}\r\n";
      out += *data;
    } else {
      out += "NIL";
    }
    out += "\r\n";
    bool flushed = co_await FlushSlice();
    if (!flushed) co_return false;
  }
  Tagged(c, "OK", "URLFETCH completed");
  co_return true;
}

}  // namespace hato::imap
