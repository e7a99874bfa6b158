// JMAP VacationResponse (RFC 8621 section 8), backed by Sieve (src/sieve):
// the singleton is stored as the account's reserved script
// sieve::kVacationScript, a generated `vacation` script whose first line
// keeps the JMAP object; delivery runs it after the user's own script, so the
// once-per-sender-and-period memory and the never-to-lists rules are the
// Sieve vacation's (RFC 5230). Blocking (the blocking pool).
#pragma once

#include <string>
#include <vector>

#include "jmap/api.h"

namespace hato::jmap {

const std::vector<MethodEntry>& VacationMethods();

// The Sieve text for a VacationResponse object (exposed for tests).
std::string VacationScript(const json::object& vacation);

}  // namespace hato::jmap
