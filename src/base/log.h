// Logging set-up: spdlog to stderr, one line per event, key=value fields.
#pragma once

namespace hato {
void InitLogging(bool verbose);
}
