// How a list post's recipients are queued and sent (issue 14), shared by the
// stores' fan-out (sqlite/list_ops.cc, postgres/pg_lists.cc) and the outbound
// runner (outbound/queue.cc).
#pragma once

#include <cstdint>

namespace hato::lists {

// A post's recipients are queued with the domains interleaved in runs of at
// most this many members of one domain (the first run of every domain before
// the second of any): a scan of the queue finds work for many destinations
// at once, and the runner sends a run to its domain as one job, one VERP
// transaction after the other over one connection (Queue::Scan).
inline constexpr int64_t kFanOutRun = 20;

}  // namespace hato::lists
