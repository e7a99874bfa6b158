// What `hato serve` exposes at /metrics (docs/operations.md lists every
// metric): sessions and refusals per protocol, SMTP transaction outcomes by
// reply class, the store's write backlog and commit latency, the outbound
// queue (size, oldest age, outcomes), disk reserve, and the process's
// resident memory. Thread-safety: Render reads atomics, locked snapshots and
// one store read (the queue size); call it from any thread but the event
// loop (it may block on the store: ServeMetrics offloads it).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "metrics/registry.h"
#include "server/event_loops.h"
#include "server/memory_trim.h"
#include "server/services.h"
#include "store/store.h"

namespace hato::metrics {

struct ServerSources {
  std::vector<std::pair<std::string, const server::Admission*>> protocols;  // name, admission
  const server::Counters* counters = nullptr;
  store::Store* store = nullptr;
  const Histogram* commit_latency = nullptr;
  const server::DiskMonitor* disk = nullptr;
  // Connections accepted per listener (smtp, submission, submissions, imap,
  // imaps, pop3, pop3s), before admission control.
  std::vector<std::pair<std::string, const std::atomic<uint64_t>*>> listeners;
  // Isolation and bounds (server/isolation.h, server/budget.h); null = left out.
  const server::LoopMonitor* loop = nullptr;   // the control loop
  const server::EventLoops* loops = nullptr;   // the session loops
  const io::CountingPool* blocking = nullptr;  // the blocking pool
  const server::MemoryBudget* memory = nullptr;
  const server::PasswordChecks* passwords = nullptr;
  const server::AccountSlots* scan_slots = nullptr;
  const server::HeapTrimmer* heap = nullptr;  // server/memory_trim.h
};

std::string RenderServerMetrics(const ServerSources& s);

}  // namespace hato::metrics
