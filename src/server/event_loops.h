// Several event loops (issue 11, design lesson (c); issue 17 item 3): the
// sessions of every protocol are spread over N single-threaded io_contexts,
// one thread each, so that a client whose work blocks its loop (a bug, a
// slow TLS handshake, a huge response being rendered) only delays the
// sessions of that loop, and a large machine uses all its cores for protocol
// work. [server] event_loops sets N (0 = one per core; `--event-loops`).
//
// Who runs where (docs/architecture.md, "Threads"):
//   * the control loop (the thread that called Serve) accepts every
//     connection and hands each socket, round-robin, to a session loop; it
//     also runs the signals, the periodic timers (purge, disk, session ends)
//     and the graceful stop. Nothing a client controls runs there, so a
//     blocked session loop never stops new connections from being accepted
//     by the others;
//   * session loop i runs every session it was given, from accept to close
//     (a session never moves), and session loop 0 also runs the outbound
//     queue runner;
//   * the blocking, password, scan and check pools and the store's writer
//     are shared by all loops; their results come back to the loop that
//     asked (io::Offload and io::AwaitCallback resume on the coroutine's own
//     executor).
//
// One acceptor handing sockets out (not SO_REUSEPORT acceptors per loop):
// the spread is even and deterministic (the kernel's reuseport hash puts the
// connections of one client address where its 4-tuple lands, so a few busy
// clients can pile onto one loop), a blocked session loop keeps no queued
// connections hostage in its own accept queue, and closing the listeners on
// SIGTERM is one close per listener.
//
// Shared state that used to be safe because there was one thread, and how it
// is guarded now: registries whose members live on loops (the IMAP Hub, JMAP
// push waiters, SessionRegistry, AccountSessions) lock their maps and call a
// member only on its own loop (LoopOf + a posted call that re-checks the
// member is still registered); everything else in server::Services is
// thread-safe (see each header).
//
// Thread-safety: Start, Stop and Join from the control thread; everything
// else from any thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "io/asio.h"
#include "metrics/registry.h"
#include "server/isolation.h"

namespace hato::server {

// How many session loops `[server] event_loops = 0` (the default) means: one
// per core, at least kMinDefaultEventLoops (so that one blocked loop never
// stops every session, even on a 1-core machine), at most
// kMaxDefaultEventLoops (past that, more loops only add threads; an operator
// may still ask for more, up to the config's own bound). `cores` 0 = unknown.
inline constexpr size_t kMinDefaultEventLoops = 2;
inline constexpr size_t kMaxDefaultEventLoops = 16;
inline size_t DefaultEventLoops(size_t cores) {
  return std::clamp(cores, kMinDefaultEventLoops, kMaxDefaultEventLoops);
}

// The blocking pool's threads (store reads, filters, message parsing: every
// io::Offload of the sessions) for `loops` session loops: `configured` when
// not 0 ([server] blocking_threads), else kBlockingThreadsBase plus
// kBlockingThreadsPerLoop per loop, so that more loops asking for store
// reads find threads to run them; never more than kMaxBlockingThreads (each
// may hold a store reader connection and a message in memory).
inline constexpr size_t kBlockingThreadsBase = 2;
inline constexpr size_t kBlockingThreadsPerLoop = 2;
inline constexpr size_t kMaxBlockingThreads = 64;
inline size_t BlockingThreadsFor(size_t loops, size_t configured) {
  size_t n = configured != 0
                 ? configured
                 : kBlockingThreadsBase + kBlockingThreadsPerLoop * std::max<size_t>(loops, 1);
  return std::clamp<size_t>(n, 1, kMaxBlockingThreads);
}

class EventLoops {
 public:
  // `n` 0 = DefaultEventLoops(std::thread::hardware_concurrency()).
  explicit EventLoops(size_t n);
  ~EventLoops();
  EventLoops(const EventLoops&) = delete;

  size_t size() const { return loops_.size(); }
  asio::io_context& context(size_t i) { return loops_[i]->io; }
  asio::any_io_executor executor(size_t i) { return loops_[i]->io.get_executor(); }
  // The loop the next session goes to (round-robin).
  size_t Next() { return next_.fetch_add(1, std::memory_order_relaxed) % loops_.size(); }

  // Sessions on loop i: started since start, and live now. SessionStarted on
  // dispatch, SessionEnded when the session's coroutine is done.
  void SessionStarted(size_t i) {
    loops_[i]->started.fetch_add(1, std::memory_order_relaxed);
    loops_[i]->live.fetch_add(1, std::memory_order_relaxed);
  }
  void SessionEnded(size_t i) { loops_[i]->live.fetch_sub(1, std::memory_order_relaxed); }
  uint64_t started(size_t i) const { return loops_[i]->started.load(std::memory_order_relaxed); }
  int64_t live(size_t i) const { return loops_[i]->live.load(std::memory_order_relaxed); }
  // Outbound SMTP sessions opened on loop i (outbound::Queue's delivery loops).
  void OutboundSessionStarted(size_t i) {
    loops_[i]->outbound.fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t outbound_sessions(size_t i) const {
    return loops_[i]->outbound.load(std::memory_order_relaxed);
  }
  const LoopMonitor& monitor(size_t i) const { return loops_[i]->monitor; }
  // Every loop's lag in one histogram (hato_event_loop_lag_seconds).
  const metrics::Histogram& lag() const { return lag_; }
  int64_t max_lag_ms() const;
  uint64_t blocked() const;

  // Starts one thread per loop, each with its lag probe and watchdog.
  void Start();
  // Stops every loop (pending handlers are not run) and joins the threads.
  void Stop();

 private:
  struct Loop {
    asio::io_context io{1};
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
    std::thread thread;
    LoopMonitor monitor;
    std::atomic<uint64_t> started{0};
    std::atomic<int64_t> live{0};
    std::atomic<uint64_t> outbound{0};
  };
  std::vector<std::unique_ptr<Loop>> loops_;
  std::atomic<uint64_t> next_{0};
  metrics::Histogram lag_;
};

// Marks the calling thread as running `ex`'s loop until destroyed (EventLoops
// does this for its threads; `serve` for the control loop; tests for theirs).
class LoopThreadScope {
 public:
  explicit LoopThreadScope(asio::any_io_executor ex);
  ~LoopThreadScope();
  LoopThreadScope(const LoopThreadScope&) = delete;

 private:
  std::optional<asio::any_io_executor> previous_;
};

// The executor of the event loop whose thread is calling, or nullopt when the
// caller is not on a loop thread (started by EventLoops or marked by a
// LoopThreadScope). A registry records it for a member so that it can later
// reach the member on its own loop.
std::optional<asio::any_io_executor> CurrentLoop();

// Runs `fn` on `home` (posted), or at once when `home` is empty (the caller
// is not on a loop: tests and tools).
template <typename F>
void RunOnLoop(const std::optional<asio::any_io_executor>& home, F fn) {
  if (home) {
    asio::post(*home, std::move(fn));
  } else {
    fn();
  }
}

}  // namespace hato::server
