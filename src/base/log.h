// Logging set-up: spdlog to stderr, one line per event, key=value fields,
// timestamps in UTC with the zone ("2026-12-02T04:30:00.123Z").
// `[log] format = "json"` writes one JSON object per line instead:
// {"time":"...Z","level":"info","msg":"smtp: id=... ip=... stored"}.
#pragma once

#include <string>

#include "base/result.h"

namespace hato {
void InitLogging(bool verbose);
// "text" or "json"; kInvalid otherwise.
Status SetLogFormat(const std::string& format);
// "debug", "info", "warn" or "error"; kInvalid otherwise.
Status SetLogLevel(const std::string& level);
// The JSON string body of `s` (quotes, backslashes, control bytes escaped).
std::string JsonEscape(std::string_view s);
}  // namespace hato
