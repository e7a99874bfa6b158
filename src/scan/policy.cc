#include "scan/policy.h"

#include <array>
#include <cstdio>

#include "base/strings.h"

namespace hato::scan {
namespace {

constexpr std::array<std::string_view, 4> kOurFields = {"x-hato-scan", "x-spam-status",
                                                        "x-spam-score", "x-spam-flag"};

std::string Score(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", d);
  return buf;
}

// A note as a header field value: printable ASCII only, bounded.
std::string Note(std::string_view s) {
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) out.push_back(c);
    if (out.size() >= 200) break;
  }
  return out;
}

}  // namespace

SpamAction ActionNamed(std::string_view name) {
  if (name == "reject") return SpamAction::kReject;
  if (name == "junk") return SpamAction::kJunk;
  if (name == "mark") return SpamAction::kMark;
  return SpamAction::kNone;
}

void ApplySpam(const config::ScanConfig& cfg, const RspamdReply& reply, Verdict& v) {
  v.spam_scanned = true;
  v.spam_score = reply.score;
  v.spam_required = reply.required_score;
  v.spam_action = SpamAction::kNone;
  // A skipped task (a pre-filter such as GTUBE decided, or settings) still
  // carries the action that decided it.
  bool reject =
      reply.action == "reject" || (cfg.reject_score > 0 && reply.score >= cfg.reject_score);
  bool spam = reply.action == "add header" || reply.action == "rewrite subject" ||
              (cfg.spam_score > 0 && reply.score >= cfg.spam_score);
  if (reject) {
    v.spam_action = ActionNamed(cfg.on_reject);
  } else if (spam) {
    v.spam_action = ActionNamed(cfg.on_spam);
  }
}

std::string ScanHeaderFields(const Verdict& v, const ScanNotes& notes) {
  std::string scan;
  if (!notes.spam.empty()) scan += "spam=" + Note(notes.spam);
  if (!notes.virus.empty()) {
    scan += std::string(scan.empty() ? "" : "; ") + "virus=" + Note(notes.virus);
  }
  std::string out;
  if (!scan.empty()) out += "X-Hato-Scan: " + scan + "\r\n";
  if (v.spam_scanned) {
    bool spam = v.spam_action != SpamAction::kNone;
    out += "X-Spam-Status: " + std::string(spam ? "Yes" : "No") + ", score=" + Score(v.spam_score) +
           " required=" + Score(v.spam_required) + "\r\n";
    out += "X-Spam-Score: " + Score(v.spam_score) + "\r\n";
    if (spam) out += "X-Spam-Flag: YES\r\n";
  }
  return out;
}

std::string RemoveScanHeaderFields(std::string_view message) {
  // The header ends at the first empty line (RFC 5322 section 2.1).
  std::string out;
  size_t pos = 0;
  bool dropping = false, changed = false;
  while (pos < message.size()) {
    size_t nl = message.find('\n', pos);
    size_t next = nl == std::string_view::npos ? message.size() : nl + 1;
    std::string_view line = message.substr(pos, next - pos);
    std::string_view bare = line;
    if (!bare.empty() && bare.back() == '\n') bare.remove_suffix(1);
    if (!bare.empty() && bare.back() == '\r') bare.remove_suffix(1);
    if (bare.empty()) break;  // the empty line that ends the header
    if (line[0] == ' ' || line[0] == '\t') {
      if (!dropping) out += line;  // continuation of the field before
    } else {
      size_t colon = bare.find(':');
      std::string name = AsciiLower(bare.substr(0, colon == std::string_view::npos ? 0 : colon));
      while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.pop_back();
      dropping = false;
      for (std::string_view f : kOurFields) dropping = dropping || name == f;
      if (dropping) {
        changed = true;
      } else {
        out += line;
      }
    }
    pos = next;
  }
  if (!changed) return std::string(message);
  out += message.substr(pos);
  return out;
}

}  // namespace hato::scan
