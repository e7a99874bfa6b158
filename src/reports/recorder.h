// Where the results behind the daily aggregate reports are recorded
// (issue 18): outbound TLS sessions for TLS-RPT (RFC 8460) and inbound
// DMARC evaluations (RFC 7489 section 7.2), one JSON line each
// (reports/format.h), in DATA/reports/KIND/YYYYMMDD.jsonl for the UTC day.
// A day whose reports went out is renamed YYYYMMDD.sent (kept keep_days).
//
// Best effort: a lost line costs one count in a report, never mail, so lines
// are appended without fsync and errors are logged, not returned. On
// PostgreSQL with several nodes each node records and reports its own
// sessions (each node is a sending MTA of its own).
// Thread-safety: Add may be called from any thread (one mutex per recorder;
// the appends are short: call it off the network event loop).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "io/fs.h"

namespace hato::reports {

enum class Kind { kTls, kDmarc };
std::string_view KindName(Kind kind);  // "tls", "dmarc": the folder name

class Recorder {
 public:
  Recorder(io::FileSystem* fs, std::string data_dir);
  // Appends one JSON line to the file of `when`'s UTC day.
  void Add(Kind kind, int64_t when, std::string_view json_line);

 private:
  io::FileSystem* fs_;
  std::string data_dir_;
  std::mutex mu_;
};

// "YYYYMMDD" of a unix time (UTC), and the first second of that day.
std::string DayName(int64_t t);
int64_t DayStart(int64_t t);

// The folder of a kind's files: DATA/reports/KIND.
std::string KindDir(const std::string& data_dir, Kind kind);

}  // namespace hato::reports
