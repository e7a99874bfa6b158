// The admin audit log (issue 13, item 3): every action taken in the admin
// console, successful or refused, one JSON object per line appended to
// DATA/audit.log (and to the server log as "audit: ..."):
//   {"at":1767225600,"admin":"root@example.com","ip":"192.0.2.1",
//    "action":"account.add","target":"bob@example.com","ok":true,"detail":""}
// Passwords are never part of a line. The file is its own (not the store), so
// it records actions even when the store refuses them, and the console reads
// its tail back (Tail). Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace hato::web {

inline constexpr size_t kAuditTailBytes = 256 * 1024;  // read back at most this much

struct AuditEntry {
  int64_t at = 0;
  std::string admin, ip, action, target, detail;
  bool ok = true;
};

// One line of the log (with its LF), and back (nullopt-like: ok=false,
// action empty when the line is not one).
std::string AuditLine(const AuditEntry& e);
bool ParseAuditLine(std::string_view line, AuditEntry& out);

class AuditLog {
 public:
  explicit AuditLog(std::string path) : path_(std::move(path)) {}
  // Appends (O_APPEND, then fdatasync); a failure is logged, never thrown.
  void Record(const AuditEntry& e);
  // The newest entries first, at most `limit`, from the last kAuditTailBytes.
  std::vector<AuditEntry> Tail(size_t limit) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  mutable std::mutex mu_;
};

}  // namespace hato::web
