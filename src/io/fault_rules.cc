#include "io/fault_rules.h"

#include <cerrno>
#include <optional>
#include <string>

#include "base/strings.h"

namespace hato::io {
namespace {

constexpr uint64_t kMaxDelayMs = 3600 * 1000;  // an hour: a stall, not a hang forever

std::optional<FaultOp> ParseOp(std::string_view w) {
  if (w == "write") return FaultOp::kWrite;
  if (w == "fsync" || w == "sync") return FaultOp::kSync;
  if (w == "truncate") return FaultOp::kTruncate;
  if (w == "rename") return FaultOp::kRename;
  if (w == "mkdir") return FaultOp::kMkdir;
  return std::nullopt;
}

// The older `key = value` knobs, which act on blob segments only.
std::optional<FaultRule> ParseLegacy(std::string_view line, bool& is_legacy) {
  size_t eq = line.find('=');
  is_legacy = false;
  if (eq == std::string_view::npos) return std::nullopt;
  std::string_view key = TrimSpaces(line.substr(0, eq));
  if (key != "sync_delay_ms" && key != "sync_error" && key != "append_error") return std::nullopt;
  is_legacy = true;
  auto value = ParseUint(TrimSpaces(line.substr(eq + 1)));
  if (!value || *value > kMaxDelayMs) return std::nullopt;
  FaultRule r;
  r.file = FaultFile::kBlobs;
  if (key == "sync_delay_ms") {
    r.op = FaultOp::kSync;
    r.delay_ms = static_cast<int>(*value);
  } else if (key == "sync_error") {
    r.op = FaultOp::kSync;
    r.error = *value ? EIO : 0;
  } else {
    r.op = FaultOp::kWrite;
    r.error = *value ? ENOSPC : 0;
  }
  return r;
}

}  // namespace

Result<std::vector<FaultRule>> ParseFaultRules(std::string_view text) {
  std::vector<FaultRule> rules;
  size_t pos = 0;
  int lineno = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++lineno;
    if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = TrimSpaces(line);
    if (line.empty()) continue;
    auto bad = [&](std::string_view why) {
      return Err(ErrorKind::kInvalid, "faults line " + std::to_string(lineno) + ": " +
                                          std::string(why) + ": " + std::string(line));
    };
    bool legacy = false;
    auto old = ParseLegacy(line, legacy);
    if (legacy) {
      if (!old) return bad("bad value");
      if (old->error || old->delay_ms) rules.push_back(*old);
      continue;
    }
    auto words = SplitWords(line);
    auto op = ParseOp(words[0]);
    if (!op) return bad("unknown operation");
    FaultRule r;
    r.op = *op;
    for (size_t i = 1; i < words.size(); ++i) {
      std::string_view w = words[i];
      if (w == "torn") {
        r.torn = true;
        continue;
      }
      size_t eq = w.find('=');
      if (eq == std::string_view::npos) return bad("expected key=value");
      std::string_view key = w.substr(0, eq), value = w.substr(eq + 1);
      if (key == "file") {
        if (value == "db") {
          r.file = FaultFile::kDb;
        } else if (value == "blobs") {
          r.file = FaultFile::kBlobs;
        } else if (value == "any") {
          r.file = FaultFile::kAny;
        } else {
          return bad("file must be db, blobs or any");
        }
      } else if (key == "error") {
        if (value == "EIO") {
          r.error = EIO;
        } else if (value == "ENOSPC") {
          r.error = ENOSPC;
        } else {
          return bad("error must be EIO or ENOSPC");
        }
      } else {
        auto n = ParseUint(value);
        if (!n) return bad("expected a number");
        if (key == "delay_ms" && *n <= kMaxDelayMs) {
          r.delay_ms = static_cast<int>(*n);
        } else if (key == "nth" && *n >= 1) {
          r.nth = *n;
        } else if (key == "count") {
          r.count = *n;
        } else {
          return bad("unknown key or value out of range");
        }
      }
    }
    if (r.torn && r.op != FaultOp::kWrite) return bad("only a write can be torn");
    rules.push_back(r);
  }
  return rules;
}

}  // namespace hato::io
