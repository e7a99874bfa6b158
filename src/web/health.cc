#include "web/health.h"

#include <algorithm>
#include <ctime>

#include "base/strings.h"
#include "web/escape.h"

namespace hato::web {

std::string_view LevelName(Level l) {
  switch (l) {
    case Level::kUp:
      return "up";
    case Level::kDegraded:
      return "degraded";
    case Level::kDown:
      return "down";
    case Level::kOff:
      return "off";
  }
  return "down";
}

namespace {

Level Worse(Level a, Level b) {
  auto rank = [](Level l) {
    return l == Level::kDown ? 3 : l == Level::kDegraded ? 2 : l == Level::kUp ? 1 : 0;
  };
  return rank(a) >= rank(b) ? a : b;
}

std::string Iso8601(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Human(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

}  // namespace

std::vector<Note> ParseNotes(std::string_view text) {
  std::vector<Note> out;
  while (!text.empty() && out.size() < kMaxNotes) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t tab = line.find('\t');
    if (tab == std::string_view::npos) continue;  // not a note (a comment, a blank line)
    auto at = ParseUint(line.substr(0, tab));
    // Control characters (a stray CR, a NUL) become spaces.
    std::string text(line.substr(tab + 1));
    for (char& c : text)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    std::string_view body = TrimSpaces(text);
    if (!at || *at > (uint64_t{1} << 40) || body.empty()) continue;
    if (body.size() > kMaxNoteBytes) body = TrimSpaces(body.substr(0, kMaxNoteBytes));
    out.push_back(Note{static_cast<int64_t>(*at), std::string(body)});
  }
  return out;
}

std::string FormatNotes(const std::vector<Note>& notes) {
  std::string out =
      "# Status page notes (hato status note add|clear): <unix time> TAB <text>, one a line.\n";
  for (const auto& n : notes) {
    std::string text = n.text;
    std::replace(text.begin(), text.end(), '\n', ' ');
    std::replace(text.begin(), text.end(), '\r', ' ');
    out += std::to_string(n.at) + "\t" + text + "\n";
  }
  return out;
}

HealthSnapshot Assess(const HealthInputs& in) {
  HealthSnapshot s;
  s.at = in.now;
  s.pending_writes = in.store.pending_writes;
  s.queue = in.queue;
  s.notes = in.notes;
  // Storage: a commit (a delivery's, or the watchdog's probe) that does not
  // come back within store.slow_commit_ms means writes are stalled.
  int64_t in_flight = std::max(in.store.commit_in_flight_ms, in.probe_in_flight_ms);
  s.commit_latency_ms = std::max(in_flight, in.last_commit_ms);
  if (in.last_commit_ms < 0 && in_flight == 0) s.commit_latency_ms = -1;
  if (!in.last_write_error.empty()) {
    s.storage = Level::kDown;
    s.storage_reason = "storage writes are failing: " + in.last_write_error;
  } else if (in_flight > in.slow_commit_ms) {
    s.storage = Level::kDegraded;
    s.storage_reason = "a storage commit has been waiting " + std::to_string(in_flight) + " ms";
  } else if (in.store.last_commit_ms > in.slow_commit_ms) {
    s.storage = Level::kDegraded;
    s.storage_reason =
        "storage commits are slow (" + std::to_string(in.store.last_commit_ms) + " ms)";
  } else if (in.disk_low) {
    s.storage = Level::kDegraded;
    s.storage_reason = "the disk is nearly full: new mail is refused";
  } else if (in.max_pending_writes > 0 && in.store.pending_writes * 2 > in.max_pending_writes) {
    s.storage = Level::kDegraded;
    s.storage_reason = "the write queue is more than half full";
  }
  s.overall = s.storage;
  for (const auto& p : in.protocols) {
    ProtocolHealth h{p.name, Level::kUp, ""};
    if (!p.listening) {
      h.level = Level::kOff;
    } else {
      if (s.storage == Level::kDown) {
        h.level = p.writes ? Level::kDown : Level::kDegraded;
        h.reason = p.writes ? "mail cannot be stored now" : "reading works; changes fail";
      } else if (s.storage == Level::kDegraded) {
        h.level = Level::kDegraded;
        h.reason = p.writes ? "new mail gets \"try again later\"" : "changes are slow";
      }
      if (p.max > 0 && p.live >= p.max) {
        h.level = Worse(h.level, Level::kDegraded);
        h.reason = "at its connection limit";
      }
    }
    s.overall = Worse(s.overall, h.level);
    s.protocols.push_back(std::move(h));
  }
  return s;
}

HealthSnapshot AtTime(HealthSnapshot s, int64_t now) {
  if (now - s.at > kStaleSnapshotSeconds) {
    s.overall = Worse(s.overall, Level::kDegraded);
    if (s.storage == Level::kUp) {
      s.storage = Level::kDegraded;
      s.storage_reason = "health data is " + std::to_string(now - s.at) + " s old";
    }
  }
  return s;
}

Lang PickLang(std::string_view accept) {
  // The first of "ja" and "en" in the list wins (q-values in practice follow order).
  size_t pos = 0;
  while (pos < accept.size()) {
    size_t comma = accept.find(',', pos);
    std::string_view item = TrimSpaces(accept.substr(pos, comma - pos));
    pos = comma == std::string_view::npos ? accept.size() : comma + 1;
    item = item.substr(0, item.find(';'));
    if (StartsWithIgnoreCase(item, "ja")) return Lang::kJa;
    if (StartsWithIgnoreCase(item, "en")) return Lang::kEn;
  }
  return Lang::kEn;
}

namespace {

struct Words {
  const char* title;
  const char* all_up;
  const char* some_degraded;
  const char* down;
  const char* service;
  const char* state;
  const char* storage;
  const char* latency;
  const char* backlog;
  const char* oldest;
  const char* notes;
  const char* updated;
  const char* up;
  const char* degraded;
  const char* down_word;
  const char* off;
  const char* unknown;
};

constexpr Words kEn{"Service status",
                    "All services are running normally.",
                    "Some services are slow or limited. We are working on it.",
                    "Some services are not available right now.",
                    "Service",
                    "State",
                    "Mail storage",
                    "Storage commit time",
                    "Outgoing mail waiting",
                    "oldest queued",
                    "Notes from the administrators",
                    "Updated",
                    "Up",
                    "Degraded",
                    "Down",
                    "Off",
                    "unknown"};
constexpr Words kJa{"サービスの状態",
                    "すべてのサービスは正常に動いています。",
                    "一部のサービスが遅くなっているか、制限されています。対応中です。",
                    "一部のサービスが現在ご利用いただけません。",
                    "サービス",
                    "状態",
                    "メールの保存",
                    "保存にかかる時間",
                    "送信待ちのメール",
                    "最も古いもの",
                    "管理者からのお知らせ",
                    "更新",
                    "正常",
                    "低下",
                    "停止",
                    "無効",
                    "不明"};

const char* Display(const Words& w, Level l) {
  switch (l) {
    case Level::kUp:
      return w.up;
    case Level::kDegraded:
      return w.degraded;
    case Level::kDown:
      return w.down_word;
    case Level::kOff:
      return w.off;
  }
  return w.down_word;
}

std::string ProtocolLabel(const std::string& name) {
  if (name == "smtp") return "SMTP (receiving mail)";
  if (name == "submission" || name == "submissions") return "SMTP submission (" + name + ")";
  if (name == "imap" || name == "imaps") return "IMAP (" + name + ")";
  if (name == "pop3" || name == "pop3s") return "POP3 (" + name + ")";
  if (name == "http" || name == "https") return "Web and JMAP (" + name + ")";
  return name;
}

}  // namespace

std::string RenderStatusHtml(const HealthSnapshot& s, Lang lang) {
  const Words& w = lang == Lang::kJa ? kJa : kEn;
  std::string level(LevelName(s.overall));
  std::string out;
  out += "<!doctype html>\n<html lang=\"";
  out += lang == Lang::kJa ? "ja" : "en";
  out +=
      "\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
      "content=\"width=device-width, initial-scale=1\"><meta http-equiv=\"refresh\" "
      "content=\"30\"><title>";
  out += w.title;
  out +=
      "</title><style>body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f6f7f9;"
      "color:#1f2328}main{max-width:720px;margin:0 auto;padding:24px 16px}h1{font-size:24px}"
      ".banner{padding:14px 16px;border-radius:8px;font-weight:600;margin:16px 0}"
      ".up{background:#dafbe1;color:#116329}.degraded{background:#fff8c5;color:#7d4e00}"
      ".down{background:#ffebe9;color:#a40e26}.off{background:#eaeef2;color:#57606a}"
      "table{width:100%;border-collapse:collapse;background:#fff;border-radius:8px}"
      "td,th{padding:10px 12px;border-bottom:1px solid #e1e4e8;text-align:left;vertical-align:top}"
      ".pill{display:inline-block;padding:0 10px;border-radius:12px;font-size:14px}"
      ".reason{color:#57606a;font-size:13px}.note{background:#fff;border-left:4px solid #1f6feb;"
      "padding:10px 14px;margin:10px 0;white-space:pre-wrap}.when{color:#57606a;font-size:13px}"
      "footer{color:#57606a;font-size:13px;margin-top:24px}</style></head><body><main>\n";
  out += "<h1>" + std::string(w.title) + "</h1>\n";
  out += "<div class=\"banner " + level + "\" id=\"overall\" data-state=\"" + level + "\">";
  out += s.overall == Level::kUp         ? w.all_up
         : s.overall == Level::kDegraded ? w.some_degraded
                                         : w.down;
  out += " (" + level + ")</div>\n";
  if (!s.notes.empty()) {
    out += "<h2>" + std::string(w.notes) + "</h2>\n";
    for (auto it = s.notes.rbegin(); it != s.notes.rend(); ++it) {
      out += "<div class=\"note\"><div class=\"when\">" + Human(it->at) + "</div>" +
             HtmlEscape(it->text) + "</div>\n";
    }
  }
  out += "<table><thead><tr><th>" + std::string(w.service) + "</th><th>" + w.state +
         "</th></tr></thead><tbody>\n";
  auto row = [&](const std::string& name, const std::string& label, Level l,
                 const std::string& reason) {
    std::string ln(LevelName(l));
    out += "<tr data-protocol=\"" + HtmlEscape(name) + "\" data-state=\"" + ln + "\"><td>" +
           HtmlEscape(label) + "</td><td><span class=\"pill " + ln + "\">" + Display(w, l) +
           (lang == Lang::kJa ? " (" + ln + ")" : std::string()) + "</span>";
    if (!reason.empty()) out += "<div class=\"reason\">" + HtmlEscape(reason) + "</div>";
    out += "</td></tr>\n";
  };
  row("storage", w.storage, s.storage, s.storage_reason);
  for (const auto& p : s.protocols) {
    if (p.level == Level::kOff) continue;
    row(p.name, ProtocolLabel(p.name), p.level, p.reason);
  }
  out += "</tbody></table>\n<table style=\"margin-top:16px\"><tbody>\n";
  out += "<tr><td>" + std::string(w.latency) + "</td><td id=\"commit-latency\">" +
         (s.commit_latency_ms < 0 ? std::string(w.unknown)
                                  : std::to_string(s.commit_latency_ms) + " ms") +
         "</td></tr>\n";
  out += "<tr><td>" + std::string(w.backlog) + "</td><td id=\"queue\">";
  if (s.queue) {
    out += std::to_string(s.queue->messages);
    if (s.queue->oldest_created_at > 0)
      out += " <span class=\"reason\">(" + std::string(w.oldest) + ": " +
             Human(s.queue->oldest_created_at) + ")</span>";
  } else {
    out += w.unknown;
  }
  out += "</td></tr>\n</tbody></table>\n";
  out += "<footer>" + std::string(w.updated) + ": <time datetime=\"" + Iso8601(s.at) + "\">" +
         Human(s.at) + "</time> · <a href=\"status.json\">JSON</a></footer>\n";
  out += "</main></body></html>\n";
  return out;
}

std::string RenderStatusJson(const HealthSnapshot& s) {
  std::string out = "{";
  out += "\"status\":" + JsonString(LevelName(s.overall));
  out += ",\"updated\":" + JsonString(Iso8601(s.at));
  out += ",\"storage\":{\"status\":" + JsonString(LevelName(s.storage)) +
         ",\"reason\":" + JsonString(s.storage_reason) +
         ",\"commitLatencyMs\":" + std::to_string(s.commit_latency_ms) +
         ",\"pendingWrites\":" + std::to_string(s.pending_writes) + "}";
  out += ",\"queue\":";
  if (s.queue) {
    out += "{\"messages\":" + std::to_string(s.queue->messages) +
           ",\"held\":" + std::to_string(s.queue->held) + ",\"oldest\":" +
           (s.queue->oldest_created_at > 0 ? JsonString(Iso8601(s.queue->oldest_created_at))
                                           : std::string("null")) +
           "}";
  } else {
    out += "null";
  }
  out += ",\"protocols\":{";
  bool first = true;
  for (const auto& p : s.protocols) {
    if (!first) out += ",";
    first = false;
    out += JsonString(p.name) + ":{\"status\":" + JsonString(LevelName(p.level)) +
           ",\"reason\":" + JsonString(p.reason) + "}";
  }
  out += "},\"notes\":[";
  for (size_t i = 0; i < s.notes.size(); ++i) {
    if (i) out += ",";
    out += "{\"at\":" + JsonString(Iso8601(s.notes[i].at)) +
           ",\"text\":" + JsonString(s.notes[i].text) + "}";
  }
  out += "]}\n";
  return out;
}

HealthSnapshot UnreachableSnapshot(int64_t now, std::vector<Note> notes,
                                   const std::vector<std::string>& protocols) {
  HealthSnapshot s;
  s.at = now;
  s.overall = Level::kDown;
  s.storage = Level::kDown;
  s.storage_reason = "the mail server does not answer";
  s.notes = std::move(notes);
  for (const auto& p : protocols) s.protocols.push_back({p, Level::kDown, "not answering"});
  return s;
}

}  // namespace hato::web
