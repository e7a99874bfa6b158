// The health snapshot behind /status, /healthz and /readyz (issue 13): what
// the watchdog (web/watchdog.h) gathered, judged into up / degraded / down
// per protocol, and the status page rendered from it in English and
// Japanese, as HTML and JSON. Pure: values in, text out; no I/O, never the
// store (the point of the page is to keep telling the truth while the store
// is stalled).
//
// Admin notes ("we are restoring from backup, your old mail will come back
// by ...") live in a small file of their own (DATA/status-notes.txt, one note
// per line: "<unix time> TAB <text>"), written by `hato status note`; parsed
// here (fuzzed by fuzz/fuzz_status_notes.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.h"

namespace hato::web {

enum class Level { kUp, kDegraded, kDown, kOff };

std::string_view LevelName(Level l);  // "up", "degraded", "down", "off"

// Limits of the notes file: past them the rest is ignored (a status page
// must stay small and quick).
inline constexpr size_t kMaxNotes = 20;
inline constexpr size_t kMaxNoteBytes = 2000;

struct Note {
  int64_t at = 0;  // unix seconds
  std::string text;
};

std::vector<Note> ParseNotes(std::string_view file_text);
std::string FormatNotes(const std::vector<Note>& notes);

// One protocol as the watchdog sees it.
struct ProtocolInput {
  std::string name;  // "smtp", "imap", ...
  bool listening = false;
  bool writes =
      false;  // its main work is writing (SMTP delivery): storage stalls take it down to degraded
  size_t live = 0;
  size_t max = 0;  // its connection limit; 0 = none
};

// What the watchdog gathered, all from memory.
struct HealthInputs {
  int64_t now = 0;  // unix seconds
  store::StoreHealth store;
  int64_t probe_in_flight_ms = 0;  // the watchdog's write probe, waiting on the store; 0 = none
  int64_t last_commit_ms = -1;     // duration of the last commit seen (any write); -1 = none yet
  int64_t last_commit_age_s = -1;  // how long ago it ended
  std::string last_write_error;    // the last commit or probe failed with this ("" = fine)
  bool disk_low = false;
  int slow_commit_ms = 1000;  // store.slow_commit_ms
  size_t max_pending_writes = 10000;
  std::optional<store::QueueStats> queue;
  std::vector<ProtocolInput> protocols;
  std::vector<Note> notes;
};

struct ProtocolHealth {
  std::string name;
  Level level = Level::kUp;
  std::string reason;  // English, short; empty when up
};

struct HealthSnapshot {
  int64_t at = 0;
  Level overall = Level::kUp;
  Level storage = Level::kUp;
  std::string storage_reason;
  int64_t commit_latency_ms = -1;  // the worse of the last commit and the one in flight
  size_t pending_writes = 0;
  std::optional<store::QueueStats> queue;
  std::vector<ProtocolHealth> protocols;
  std::vector<Note> notes;
};

HealthSnapshot Assess(const HealthInputs& in);

// A snapshot older than this (the watchdog itself is stuck) is reported
// degraded by the renderers.
inline constexpr int64_t kStaleSnapshotSeconds = 10;

// The same snapshot judged at `now` (marks it degraded when stale).
HealthSnapshot AtTime(HealthSnapshot s, int64_t now);

enum class Lang { kEn, kJa };
// From an Accept-Language header: Japanese when "ja" comes before "en".
Lang PickLang(std::string_view accept_language);

// The status page: self-contained HTML (no script; CSP kStatusCsp), refreshed
// by the browser every 30 s.
std::string RenderStatusHtml(const HealthSnapshot& s, Lang lang);
std::string RenderStatusJson(const HealthSnapshot& s);

// The page's Content-Security-Policy: no script at all.
inline constexpr std::string_view kStatusCsp =
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

// A page for when the server does not answer (`hato status publish` while
// hato serve is down): every protocol down, and the notes.
HealthSnapshot UnreachableSnapshot(int64_t now, std::vector<Note> notes,
                                   const std::vector<std::string>& protocols);

}  // namespace hato::web
