// Filtering at delivery: scripts from the store, run by the pure
// interpreter, turned into filings, redirects and vacation replies.
#include "sieve/deliver.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "base/digest.h"
#include "base/strings.h"
#include "config/config.h"
#include "mime/header.h"
#include "mime/message.h"
#include "outbound/dsn.h"
#include "store/wait.h"

namespace hato::sieve {
namespace {

constexpr const char* kRedirectMarker = "X-Hato-Redirected-By";

// Redirects per account in the current hour (in memory: a restart forgets).
class RedirectRate {
 public:
  bool Take(int64_t account_id, int64_t now, size_t limit) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& e = counts_[account_id];
    if (e.first != now / 3600) e = {now / 3600, 0};
    if (e.second >= limit) return false;
    ++e.second;
    return true;
  }

 private:
  std::mutex mu_;
  std::unordered_map<int64_t, std::pair<int64_t, size_t>> counts_;
};

RedirectRate& Rate() {
  static RedirectRate rate;
  return rate;
}

// A compiled script, prepared to run (its tests bound once, interpret.h
// Prepared), with what it was compiled from: its text and the limits of the
// configuration then (a reload that changes [sieve] compiles again, so the
// current limits apply to cached scripts too). A replaced or newly activated
// script has another text: it is compiled again at its first delivery.
struct Compiled {
  std::string text;
  Limits limits;
  std::shared_ptr<const Prepared> script;
};

// What this process last recorded as each account's status, and each
// account's last compiled script (by its text and limits): a clean run of an
// unchanged script then costs no status read and no compile
// (bench/sieve_run.sh).
// Bounds of the caches below: past them a cache starts empty again.
constexpr size_t kMaxCachedStatuses = 100000;
constexpr size_t kMaxCachedScripts = 10000;

struct Caches {
  std::mutex mu;
  std::unordered_map<int64_t, std::string> status;  // guarded by mu
  std::unordered_map<int64_t, Compiled> scripts;    // guarded by mu
  // The same text under the same limits compiles to one Prepared shared by
  // every account that has it (immutable, so runs on several threads share
  // it): the blocking pool's threads then keep one script warm in their
  // caches, not one copy per account (bench/README.md "Sieve at delivery":
  // with 20 accounts the runs' time was set by cache misses, not instructions).
  std::unordered_map<std::string, Compiled> by_text;  // guarded by mu
};

Caches& Cache() {
  static Caches caches;
  return caches;
}

void RecordStatus(store::Store& store, int64_t account_id, const std::string& error) {
  Caches& c = Cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.status.find(account_id);
    if (it != c.status.end() && it->second == error) return;
  }
  if (auto st = store.SetSieveStatus(account_id, error); !st) {
    spdlog::warn("sieve: account {}: cannot record status: {}", account_id, st.error().message);
    return;
  }
  std::lock_guard<std::mutex> lock(c.mu);
  if (c.status.size() > kMaxCachedStatuses) c.status.clear();
  c.status[account_id] = error;
}

// The compiled form of an account's script text (cached while the text and
// the limits are unchanged), by `key`: the account's id for its active
// script, minus it for its vacation response.
Result<std::shared_ptr<const Prepared>> CompileCached(int64_t key, const std::string& text,
                                                      const Limits& limits) {
  Caches& c = Cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.scripts.find(key);
    if (it != c.scripts.end() && it->second.text == text && it->second.limits == limits) {
      return it->second.script;
    }
  }
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.by_text.find(text);
    if (it != c.by_text.end() && it->second.limits == limits) {
      if (c.scripts.size() > kMaxCachedScripts) c.scripts.clear();
      c.scripts[key] = {text, limits, it->second.script};
      return it->second.script;
    }
  }
  auto script = Compile(text, limits);
  if (!script) return script.error();
  auto shared = std::make_shared<const Prepared>(std::move(*script));
  std::lock_guard<std::mutex> lock(c.mu);
  if (c.scripts.size() > kMaxCachedScripts) c.scripts.clear();
  if (c.by_text.size() > kMaxCachedScripts) c.by_text.clear();
  c.scripts[key] = {text, limits, shared};
  c.by_text[text] = {text, limits, shared};
  return shared;
}

// The header fields of a message named `name` (unfolded values).
std::vector<std::string> Fields(std::string_view content, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& f : mime::internal::ScanHeader(content).fields) {
    if (EqualsIgnoreCase(f.name, name)) out.push_back(mime::internal::Unfold(f.value));
  }
  return out;
}

}  // namespace

bool IsReservedScriptName(std::string_view name) {
  return StartsWithIgnoreCase(name, kReservedPrefix);
}

DeliveryLimits LimitsFrom(const config::SieveConfig& c) {
  DeliveryLimits d;
  d.script.max_script_bytes = c.max_script_bytes;
  d.script.max_nesting = c.max_nesting;
  d.script.max_nodes = c.max_nodes;
  d.script.max_actions = c.max_actions;
  d.script.max_redirects = c.max_redirects;
  d.script.max_includes = c.max_includes;
  d.max_redirects_per_hour = c.max_redirects_per_hour;
  return d;
}

StoreCheck CheckStore(store::Store& store, int64_t account_id, std::string_view name,
                      std::string_view text, const config::SieveConfig& c) {
  using Kind = StoreCheck::Kind;
  if (text.size() > c.max_script_bytes) {
    return {Kind::kTooLarge,
            "scripts are limited to " + std::to_string(c.max_script_bytes) + " bytes"};
  }
  auto script = Compile(text, LimitsFrom(c).script);
  if (!script) {
    return {script.error().kind == ErrorKind::kTooLarge ? Kind::kTooLarge : Kind::kInvalid,
            script.error().message};
  }
  auto list = store.ListSieveScripts(account_id);
  if (!list) return {Kind::kTemporary, list.error().message};
  size_t own = 0;
  for (const auto& s : *list) {
    if (s.name == name) return {};  // a replacement: the count stays
    if (!IsReservedScriptName(s.name)) ++own;
  }
  if (own >= c.max_scripts) {
    return {Kind::kTooMany, "at most " + std::to_string(c.max_scripts) + " scripts per account"};
  }
  return {};
}

Status CheckScriptName(std::string_view name) {
  if (name.empty() || name.size() > 128) {
    return Err(ErrorKind::kInvalid, "script name must be 1 to 128 bytes");
  }
  if (!IsValidUtf8(name)) return Err(ErrorKind::kInvalid, "script name is not UTF-8");
  if (IsReservedScriptName(name)) {
    return Err(ErrorKind::kInvalid, "script names starting with \"jmap.\" are reserved");
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f || c == '/') {
      return Err(ErrorKind::kInvalid, "script name has a control character or \"/\"");
    }
  }
  return Ok();
}

namespace {
constexpr std::string_view kForwardMarker = "# hato-forward ";

// A Sieve quoted string (RFC 5228 section 2.4.2).
std::string Quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}
}  // namespace

std::string ForwardScript(const Forwarding& f) {
  // The setting line holds only the address (no quotes or line ends: the
  // caller checked it is an address) and the keep flag.
  std::string out = std::string(kForwardMarker) + (f.keep ? "keep " : "nokeep ") + f.to + "\n";
  out += "redirect " + Quoted(f.to) + ";\n";
  if (f.keep) out += "keep;\n";
  return out;
}

std::optional<Forwarding> ParseForwardScript(std::string_view text) {
  if (!text.starts_with(kForwardMarker)) return std::nullopt;
  std::string_view line = text.substr(kForwardMarker.size());
  line = line.substr(0, line.find('\n'));
  Forwarding f;
  if (line.starts_with("keep ")) {
    f.keep = true;
    line.remove_prefix(5);
  } else if (line.starts_with("nokeep ")) {
    f.keep = false;
    line.remove_prefix(7);
  } else {
    return std::nullopt;
  }
  if (line.empty()) return std::nullopt;
  f.to = std::string(line);
  return f;
}

namespace {

// The folder an RFC 5233 detail names for `account`: an existing folder of
// that name (any case; the first one), or the detail itself when folders may
// be created; nullopt for INBOX (no such folder, an invalid name, or a store
// error: the message is never lost over a folder).
std::optional<std::string> DetailFolder(store::Store& store, int64_t account,
                                        const std::string& detail, bool create) {
  auto canonical = store::CanonicalMailboxName(detail);
  if (!canonical || *canonical == "INBOX") return std::nullopt;
  auto list = store.ListMailboxes(account);
  if (!list) return std::nullopt;
  std::string lower = AsciiLower(*canonical);
  for (const auto& m : *list) {
    if (m.name == *canonical) return m.name;
  }
  for (const auto& m : *list) {
    if (AsciiLower(m.name) == lower) return m.name;
  }
  if (create) return *canonical;
  return std::nullopt;
}

}  // namespace

FilterResult Filter(store::Store& store, const FilterInput& in, const DeliveryLimits& limits) {
  FilterResult r;
  // One pass over the header (every delivery comes here, with or without a
  // script): the Received count and the redirect markers (loop checks).
  size_t received = 0;
  std::vector<std::string> redirected_by;
  for (const auto& f : mime::internal::ScanHeader(in.content).fields) {
    if (EqualsIgnoreCase(f.name, "Received")) {
      ++received;
    } else if (EqualsIgnoreCase(f.name, kRedirectMarker)) {
      redirected_by.push_back(AsciiLower(TrimSpaces(mime::internal::Unfold(f.value))));
    }
  }
  // One redirect of `user`'s copy to `to`, unless it loops or passes the
  // hourly rate: "" when taken, else why not.
  auto take_redirect = [&](int64_t account, const std::string& user,
                           const std::string& to) -> std::string {
    std::string lower = AsciiLower(user);
    bool loop = received > limits.max_received_for_redirect ||
                std::find(redirected_by.begin(), redirected_by.end(), lower) != redirected_by.end();
    if (loop)
      return "redirect to <" + to + "> refused: the message has been redirected before (loop)";
    if (!Rate().Take(account, in.now, limits.max_redirects_per_hour)) {
      return "redirect to <" + to + "> refused: more than " +
             std::to_string(limits.max_redirects_per_hour) + " redirects this hour";
    }
    r.redirects.push_back(to);
    if (std::find(r.redirected_by.begin(), r.redirected_by.end(), lower) == r.redirected_by.end()) {
      r.redirected_by.push_back(lower);
    }
    return "";
  };
  for (size_t i = 0; i < in.accounts.size(); ++i) {
    int64_t account = in.accounts[i];
    std::string user = i < in.rcpts.size() ? in.rcpts[i] : std::string();
    bool have_vacation = false;
    size_t rejected_before = r.rejected;
    // The member's forwarding (kForwardScript) comes first: without a kept
    // copy the account's own script does not run (nothing is filed here).
    bool forwarded_away = false;
    // One read for the account: its active script and the server's own
    // (forwarding, vacation response).
    auto scripts = store.DeliverySieveScripts(account, kReservedPrefix);
    const store::SieveScriptText* active = nullptr;
    const store::SieveScriptText* forward = nullptr;
    const store::SieveScriptText* vacation = nullptr;
    if (scripts) {
      for (const auto& s : *scripts) {
        if (s.active) active = &s;
        if (s.name == kForwardScript) forward = &s;
        if (s.name == kVacationScript) vacation = &s;
      }
    }
    if (forward) {
      if (auto fwd = ParseForwardScript(forward->content)) {
        r.filtered = true;
        std::string error = take_redirect(account, user, fwd->to);
        if (!error.empty()) {
          spdlog::warn("sieve: <{}>: forwarding: {}; kept", LogSafe(user), LogSafe(error));
        } else {
          forwarded_away = !fwd->keep;
        }
      }
    }
    // The account's active script (or the default policy); `return` ends it.
    auto run_active = [&]() {
      auto keep_inbox = [&](const std::string& error) {
        store::Filing f{account, in.junk ? "\\Junk" : "", {}, false, {}, {}, {}, {}};
        r.filings.push_back(std::move(f));
        if (!error.empty()) {
          spdlog::warn("sieve: <{}>: {}; kept in INBOX", LogSafe(user), LogSafe(error));
          RecordStatus(store, account, error);
        }
      };
      if (!scripts) {
        spdlog::warn("sieve: account {}: cannot read its script: {}", account,
                     scripts.error().message);
        keep_inbox("");
        return;
      }
      if (!active) {
        // No script: the operator's spam policy (hato.toml [scan]), then
        // the subaddress folder (RFC 5233, [delivery] subaddress_folders).
        store::Filing f{account, "", {}, false, {}, {}, {}, {}};
        if (in.junk || in.verdict.spam_action == scan::SpamAction::kJunk) {
          f.mailbox = "\\Junk";
          r.filtered = true;
        } else if (in.verdict.spam_action == scan::SpamAction::kMark) {
          f.flags.push_back("$Junk");
          r.filtered = true;
        }
        if (f.mailbox.empty() && i < in.details.size() && !in.details[i].empty()) {
          if (auto folder = DetailFolder(store, account, in.details[i], in.create_detail_folders)) {
            f.mailbox = *folder;
            f.create = in.create_detail_folders;
            r.filtered = true;
          }
        }
        r.filings.push_back(std::move(f));
        return;
      }
      r.filtered = true;
      const std::string& script_name = active->name;
      auto script = CompileCached(account, active->content, limits.script);
      if (!script) {
        keep_inbox("script \"" + script_name + "\": " + script.error().message);
        return;
      }
      Environment env;
      env.message = in.content;
      env.envelope.from = in.return_path;
      env.envelope.to = user;
      env.verdict = in.verdict;
      env.now = in.now;
      env.addresses.push_back(user);
      std::optional<std::vector<std::string>> mailboxes;
      env.mailbox_exists = [&](const std::string& name) {
        if (!mailboxes) {
          mailboxes.emplace();
          if (auto list = store.ListMailboxes(account)) {
            for (const auto& m : *list) mailboxes->push_back(m.name);
          }
        }
        auto canonical = store::CanonicalMailboxName(name);
        return canonical &&
               std::find(mailboxes->begin(), mailboxes->end(), *canonical) != mailboxes->end();
      };
      env.load_script = [&](const std::string& name, bool global) -> Result<std::string> {
        if (global) return Err(ErrorKind::kNotFound, "no global scripts on this server");
        // The server's own scripts do not exist for the user's (IsReservedScriptName).
        if (IsReservedScriptName(name)) return Err(ErrorKind::kNotFound, "no such script: " + name);
        return store.GetSieveScript(account, name);
      };
      env.duplicate_seen = [&](const std::string& key, int64_t) {
        auto seen = store.SieveMemoSeen(account, store::SieveMemo::kDuplicate, key, in.now);
        return seen && *seen;
      };
      auto out = Run(**script, env, limits.script);
      if (!out) {
        keep_inbox("script \"" + script_name + "\": " + out.error().message);
        return;
      }
      if (out->reject) {
        ++r.rejected;
        r.reject_reason = out->reject_reason;
        r.rejections.emplace_back(user, out->reject_reason);
        spdlog::info("sieve: <{}>: rejected by script: {}", LogSafe(user),
                     LogSafe(out->reject_reason));
        RecordStatus(store, account, "");
        return;
      }
      std::string error;
      // editheader (RFC 5293 section 5): keep and fileinto store the
      // message with the edited header, as a copy of its own.
      std::string edited, edited_mime;
      if (out->header) {
        edited = *out->header;
        edited += in.content.substr(mime::internal::ScanHeader(in.content).end);
        auto tree = mime::Parse(edited);
        edited_mime = tree ? mime::Serialize(*tree) : std::string();
      }
      for (const auto& f : out->files) {
        std::string mailbox = f.mailbox;
        // A DMARC quarantine still lands in Junk when the script only kept it.
        if (mailbox.empty() && out->implicit_keep && in.junk) mailbox = "\\Junk";
        r.filings.push_back({account, mailbox, f.flags, f.create, edited, edited_mime, {}, {}});
      }
      for (const auto& to : out->redirects) {
        std::string refused = take_redirect(account, user, to);
        if (refused.empty()) continue;
        error = refused;
        // A refused redirect keeps the message (never lost).
        bool kept = std::any_of(r.filings.begin(), r.filings.end(),
                                [&](const store::Filing& f) { return f.account_id == account; });
        if (!kept) r.filings.push_back({account, "", {}, false, {}, {}, {}, {}});
      }
      if (out->vacation) {
        r.vacations.push_back({account, user, *out->vacation});
        have_vacation = true;
      }
      for (const auto& d : out->duplicates) r.duplicates.emplace_back(account, d);
      if (!error.empty()) spdlog::warn("sieve: <{}>: {}", LogSafe(user), LogSafe(error));
      RecordStatus(store, account, error);
    };
    if (!forwarded_away) run_active();
    // JMAP's VacationResponse (jmap/vacation.h): its generated script runs
    // after the user's own, unless that rejected or already replied.
    if (!have_vacation && r.rejected == rejected_before) {
      if (vacation && vacation->content.find("vacation") != std::string::npos) {
        // Cached under the account's negative id (its own script has the positive one).
        auto script = CompileCached(-account, vacation->content, limits.script);
        Environment env;
        env.message = in.content;
        env.envelope.from = in.return_path;
        env.envelope.to = user;
        env.now = in.now;
        env.addresses.push_back(user);
        auto out = script ? Run(**script, env, limits.script) : Result<Outcome>(script.error());
        if (out && out->vacation) {
          r.vacations.push_back({account, user, *out->vacation});
        } else if (!out) {
          spdlog::warn("sieve: <{}>: vacation response: {}", LogSafe(user), out.error().message);
        }
      }
    }
  }
  r.all_rejected = !in.accounts.empty() && r.rejected == in.accounts.size();
  r.none_kept = r.filings.empty();
  return r;
}

std::optional<store::OutboundRequest> RedirectRequest(const FilterResult& result,
                                                      std::string_view content,
                                                      const std::string& sender) {
  if (result.redirects.empty()) return std::nullopt;
  store::OutboundRequest out;
  // The stored copy starts with our Return-Path: not part of what is relayed.
  if (content.starts_with("Return-Path:")) {
    size_t eol = content.find("\r\n");
    content.remove_prefix(eol == std::string_view::npos ? content.size() : eol + 2);
  }
  for (const auto& who : result.redirected_by) {
    out.content += std::string(kRedirectMarker) + ": " + who + "\r\n";
  }
  out.content += content;
  out.sender = sender;
  out.eight_bit = true;
  out.smtputf8 =
      !IsValidUtf8(sender) ? false : std::any_of(sender.begin(), sender.end(), [](char c) {
        return static_cast<unsigned char>(c) >= 0x80;
      });
  for (const auto& to : result.redirects) out.recipients.push_back({to, 0, ""});
  return out;
}

std::string VacationMessage(const Reply& reply, std::string_view original,
                            const std::string& hostname, int64_t now) {
  const VacationAction& v = reply.vacation;
  std::string from = v.from.empty() ? reply.user : v.from;
  std::string id = HexEncode(Sha256(reply.user + v.to + std::to_string(now))).substr(0, 24);
  std::string msg;
  msg += "From: <" + from + ">\r\n";
  msg += "To: <" + v.to + ">\r\n";
  // RFC 2047 is not applied: a non-ASCII subject is sent as UTF-8 (RFC 6532).
  std::string subject = v.subject;
  for (char& c : subject) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  msg += "Subject: " + subject + "\r\n";
  msg += "Date: " + outbound::Rfc5322Date(now) + "\r\n";
  msg += "Message-ID: <vacation." + id + "@" + hostname + ">\r\n";
  auto ids = Fields(original, "Message-ID");
  if (!ids.empty()) {
    std::string mid(TrimSpaces(ids[0]));
    msg += "In-Reply-To: " + mid + "\r\n";
    auto refs = Fields(original, "References");
    msg += "References: " + (refs.empty() ? "" : std::string(TrimSpaces(refs[0])) + " ") + mid +
           "\r\n";
  }
  // RFC 3834 section 5: marks the reply as automatic.
  msg += "Auto-Submitted: auto-replied (vacation)\r\n";
  msg += "MIME-Version: 1.0\r\n";
  if (v.mime) {
    msg += v.reason;  // a MIME entity: its own header fields, blank line, body
  } else {
    msg += "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n";
    std::string body;
    for (size_t i = 0; i < v.reason.size(); ++i) {
      if (v.reason[i] == '\n' && (i == 0 || v.reason[i - 1] != '\r')) body += '\r';
      body += v.reason[i];
    }
    if (!body.ends_with("\r\n")) body += "\r\n";
    msg += body;
  }
  return msg;
}

bool HasAfterCommitWork(const FilterResult& result, const store::DeliveryReceipt& receipt) {
  return !receipt.fell_back.empty() || !result.duplicates.empty() || !result.vacations.empty() ||
         !result.rejections.empty();
}

size_t Finish(store::Store& store, const FilterInput& in, const FilterResult& result,
              const store::DeliveryReceipt& receipt, const std::string& hostname) {
  for (size_t idx : receipt.fell_back) {
    if (idx >= result.filings.size()) continue;
    const store::Filing& f = result.filings[idx];
    std::string error = "fileinto \"" + f.mailbox +
                        "\": no such mailbox (or a name that cannot be created); filed into INBOX";
    spdlog::warn("sieve: account {}: {}", f.account_id, LogSafe(error));
    RecordStatus(store, f.account_id, error);
  }
  for (const auto& [account, d] : result.duplicates) {
    if (auto st =
            store.SieveMemoRecord(account, store::SieveMemo::kDuplicate, d.key, in.now + d.seconds);
        !st) {
      spdlog::warn("sieve: account {}: duplicate tracking: {}", account, st.error().message);
    }
  }
  size_t sent = 0;
  auto queue = [&](std::string content, const std::string& to) {
    store::DeliveryRequest req;
    req.received_at = in.now;
    store::OutboundRequest out;
    out.content = std::move(content);
    out.sender = "";  // RFC 3834 section 3.3 / RFC 5230 section 5.1: the null path
    out.eight_bit = true;
    out.recipients.push_back({to, 0, ""});
    req.outbound = std::move(out);
    auto done = store::Wait<store::DeliveryReceipt>([&](store::Done<store::DeliveryReceipt> cb) {
      store.Deliver(std::move(req), std::move(cb));
    });
    if (!done)
      spdlog::warn("sieve: reply to <{}> not queued: {}", LogSafe(to), done.error().message);
    return done.ok();
  };
  // Rejected by some recipients but accepted for others: a bounce to the
  // sender (never for the null path, never for automatic mail).
  if (!result.rejections.empty() && !in.return_path.empty()) {
    std::string msg = "From: Mail Delivery System <MAILER-DAEMON@" + hostname + ">\r\n";
    msg += "To: <" + in.return_path + ">\r\n";
    msg += "Subject: Message rejected by its recipient\r\n";
    msg += "Date: " + outbound::Rfc5322Date(in.now) + "\r\n";
    msg += "Auto-Submitted: auto-replied (rejected)\r\n";
    msg += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n";
    for (const auto& [user, reason] : result.rejections) {
      std::string text = reason;
      for (char& c : text) {
        if (c == '\r' || c == '\n') c = ' ';
      }
      msg += "<" + user + ">: " + text + "\r\n";
    }
    auto subject = Fields(in.content, "Subject");
    if (!subject.empty()) msg += "\r\nThe message's subject: " + subject[0] + "\r\n";
    if (queue(std::move(msg), in.return_path)) ++sent;
  }
  for (const auto& reply : result.vacations) {
    // Once per sender and period (RFC 5230 section 4.2), per handle.
    std::string key = reply.vacation.handle + "\n" + AsciiLower(reply.vacation.to);
    auto seen = store.SieveMemoSeen(reply.account_id, store::SieveMemo::kVacation, key, in.now);
    if (!seen || *seen) continue;
    if (auto st = store.SieveMemoRecord(reply.account_id, store::SieveMemo::kVacation, key,
                                        in.now + reply.vacation.seconds);
        !st) {
      continue;  // not remembered: better no reply than one per message
    }
    if (!queue(VacationMessage(reply, in.content, hostname, in.now), reply.vacation.to)) {
      continue;
    }
    spdlog::info("sieve: <{}>: vacation reply to <{}> queued", LogSafe(reply.user),
                 LogSafe(reply.vacation.to));
    ++sent;
  }
  return sent;
}

}  // namespace hato::sieve
