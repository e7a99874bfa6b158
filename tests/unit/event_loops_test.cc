// server/event_loops.h and the registries that call members on their own
// loop (server/services.h, server/account_sessions.h).
#include "server/event_loops.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "imap/server/server.h"
#include "server/account_sessions.h"
#include "server/services.h"

namespace hato::server {
namespace {

// Runs fn on loop i of `loops` and waits for it.
template <typename F>
auto OnLoop(EventLoops& loops, size_t i, F fn) {
  std::packaged_task<decltype(fn())()> task(std::move(fn));
  auto f = task.get_future();
  asio::post(loops.executor(i), [&task] { task(); });
  return f.get();
}

TEST(EventLoops, ZeroMeansOnePerCoreAtLeastTwo) {
  EventLoops loops(0);
  EXPECT_EQ(loops.size(), DefaultEventLoops(std::thread::hardware_concurrency()));
  EXPECT_EQ(DefaultEventLoops(0), 2u);  // unknown
  EXPECT_EQ(DefaultEventLoops(1), 2u);  // one blocked loop never stops everyone
  EXPECT_EQ(DefaultEventLoops(8), 8u);
  EXPECT_EQ(DefaultEventLoops(128), kMaxDefaultEventLoops);
}

// Issue 11 item 4: the blocking pool grows with the loops, within a bound.
TEST(EventLoops, BlockingThreadsGrowWithTheLoops) {
  EXPECT_EQ(BlockingThreadsFor(1, 0), 4u);  // what one loop always had
  EXPECT_EQ(BlockingThreadsFor(2, 0), 6u);
  EXPECT_EQ(BlockingThreadsFor(16, 0), 34u);
  EXPECT_EQ(BlockingThreadsFor(256, 0), kMaxBlockingThreads);
  EXPECT_EQ(BlockingThreadsFor(4, 3), 3u);  // [server] blocking_threads
  EXPECT_EQ(BlockingThreadsFor(4, 1000), kMaxBlockingThreads);
}

TEST(EventLoops, RoundRobinAndOwnThreads) {
  EventLoops loops(3);
  loops.Start();
  EXPECT_EQ(loops.Next(), 0u);
  EXPECT_EQ(loops.Next(), 1u);
  EXPECT_EQ(loops.Next(), 2u);
  EXPECT_EQ(loops.Next(), 0u);
  std::thread::id ids[3];
  for (size_t i = 0; i < 3; ++i) {
    ids[i] = OnLoop(loops, i, [] { return std::this_thread::get_id(); });
    // A loop thread knows its loop.
    bool knows = OnLoop(loops, i, [&loops, i] {
      auto cur = CurrentLoop();
      return cur && *cur == asio::any_io_executor(loops.executor(i));
    });
    EXPECT_TRUE(knows);
  }
  EXPECT_NE(ids[0], ids[1]);
  EXPECT_NE(ids[1], ids[2]);
  EXPECT_FALSE(CurrentLoop());  // the test's thread is not a loop
  loops.SessionStarted(1);
  EXPECT_EQ(loops.started(1), 1u);
  EXPECT_EQ(loops.live(1), 1);
  loops.SessionEnded(1);
  EXPECT_EQ(loops.live(1), 0);
  loops.Stop();
}

struct StopMember : SessionRegistry::Member {
  std::atomic<int> stops{0};
  std::thread::id on;
  void RequestStop() override {
    on = std::this_thread::get_id();
    ++stops;
  }
};

TEST(EventLoops, RegistryStopsEachMemberOnItsLoop) {
  EventLoops loops(2);
  loops.Start();
  SessionRegistry reg;
  StopMember a, b;
  OnLoop(loops, 0, [&] {
    reg.Add(&a);
    return 0;
  });
  OnLoop(loops, 1, [&] {
    reg.Add(&b);
    return 0;
  });
  reg.StopAll();  // from this (non-loop) thread
  for (int i = 0; i < 200 && (a.stops == 0 || b.stops == 0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(a.stops, 1);
  EXPECT_EQ(b.stops, 1);
  EXPECT_EQ(a.on, OnLoop(loops, 0, [] { return std::this_thread::get_id(); }));
  EXPECT_EQ(b.on, OnLoop(loops, 1, [] { return std::this_thread::get_id(); }));
  // A member that left before the posted call ran is not called.
  OnLoop(loops, 0, [&] {
    reg.StopAll();   // posts behind this very task...
    reg.Remove(&a);  // ...which removes the member first
    return 0;
  });
  OnLoop(loops, 0, [] { return 0; });  // the posted call has run
  EXPECT_EQ(a.stops, 1);
  OnLoop(loops, 1, [&] {
    reg.Remove(&b);
    return 0;
  });
  loops.Stop();
}

struct EndMember : AccountSessions::Member {
  std::atomic<int> ended{0};
  void EndSession() override { ++ended; }
};

TEST(EventLoops, AccountSessionsEndOnTheirLoop) {
  EventLoops loops(2);
  loops.Start();
  AccountSessions reg;
  EndMember a, b;
  OnLoop(loops, 0, [&] {
    reg.Add(7, 1, &a);
    return 0;
  });
  OnLoop(loops, 1, [&] {
    reg.Add(7, 1, &b);
    return 0;
  });
  EXPECT_EQ(reg.Changed(7, 2), 2u);
  OnLoop(loops, 0, [] { return 0; });
  OnLoop(loops, 1, [] { return 0; });
  EXPECT_EQ(a.ended, 1);
  EXPECT_EQ(b.ended, 1);
  EXPECT_EQ(reg.live(), 0u);
  loops.Stop();
}

struct Watcher : imap::Hub::Listener {
  std::atomic<int> calls{0};
  std::thread::id on;
  void MailboxChanged() override {
    on = std::this_thread::get_id();
    ++calls;
  }
};

TEST(EventLoops, HubCallsEachWatcherOnItsLoop) {
  EventLoops loops(2);
  loops.Start();
  imap::Hub hub;
  Watcher a, b, other;
  OnLoop(loops, 0, [&] {
    hub.Watch(5, &a);
    return 0;
  });
  OnLoop(loops, 1, [&] {
    hub.Watch(5, &b);
    return 0;
  });
  OnLoop(loops, 1, [&] {
    hub.Watch(6, &other);
    return 0;
  });
  hub.Notify({5});  // from this thread, as the store's writer does
  OnLoop(loops, 0, [] { return 0; });
  OnLoop(loops, 1, [] { return 0; });
  EXPECT_EQ(a.calls, 1);
  EXPECT_EQ(b.calls, 1);
  EXPECT_EQ(other.calls, 0);
  EXPECT_EQ(a.on, OnLoop(loops, 0, [] { return std::this_thread::get_id(); }));
  EXPECT_EQ(b.on, OnLoop(loops, 1, [] { return std::this_thread::get_id(); }));
  // \Recent: sessions on two loops claiming at once; each UID is claimed once.
  std::atomic<uint32_t> claimed{0};
  auto claim = [&] {
    for (uint32_t uid = 1; uid <= 2000; ++uid) {
      uint32_t before = hub.ClaimRecent(5, 0, uid);
      if (before < uid) claimed += uid - before;
    }
    return 0;
  };
  auto f0 = std::async(std::launch::async, [&] { return OnLoop(loops, 0, claim); });
  auto f1 = std::async(std::launch::async, [&] { return OnLoop(loops, 1, claim); });
  f0.get();
  f1.get();
  EXPECT_EQ(claimed, 2000u);
  EXPECT_EQ(hub.Claimed(5), 2000u);
  OnLoop(loops, 0, [&] {
    hub.Unwatch(5, &a);
    return 0;
  });
  OnLoop(loops, 1, [&] {
    hub.Unwatch(5, &b);
    hub.Unwatch(6, &other);
    return 0;
  });
  loops.Stop();
}

}  // namespace
}  // namespace hato::server
