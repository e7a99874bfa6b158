// Bridges between blocking/callback code and coroutines on the event loop.
//
// Offload(pool, f): runs a blocking f() (a store read, a password check) on a
// thread pool and resumes the coroutine on its own executor with the result,
// so the event loop never blocks on disk or CPU-heavy work.
// AwaitCallback<T>(start): awaits an async store write that reports through a
// callback on another thread (store::Done<T>).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

#include "base/result.h"
#include "io/asio.h"

namespace hato::io {

// g++ 12 relocates temporaries of a co_await expression without running their
// move constructors (a lambda capturing a std::string by value ends up freeing
// a pointer into the coroutine frame). So: pass these functions a *named*
// callable with std::move, never a lambda written inside the co_await.
// They are plain functions returning an awaitable, not coroutines, so the
// callable is moved into the operation at once.
namespace detail {
template <typename F, typename R>
awaitable<R> Offload(asio::thread_pool& pool, std::atomic<int64_t>* pending, F f) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(R)>(
      [&pool, pending](auto handler, F fn) {
        auto ex = asio::get_associated_executor(handler);
        if (pending) pending->fetch_add(1, std::memory_order_relaxed);
        asio::post(pool, [ex, pending, fn = std::move(fn), h = std::move(handler)]() mutable {
          R r = fn();
          if (pending) pending->fetch_sub(1, std::memory_order_relaxed);
          asio::post(
              ex, [h = std::move(h), r = std::move(r)]() mutable { std::move(h)(std::move(r)); });
        });
      },
      asio::use_awaitable, std::move(f));
}
}  // namespace detail

template <typename F, typename R = std::invoke_result_t<F&>>
awaitable<R> Offload(asio::thread_pool& pool, F f) {
  return detail::Offload<F, R>(pool, nullptr, std::move(f));
}

// A thread pool whose size is known and whose Offload calls are counted
// while queued or running (the blocking pool: hato_blocking_pool_threads and
// hato_blocking_pool_pending, issue 11 item 4).
class CountingPool : public asio::thread_pool {
 public:
  explicit CountingPool(size_t threads) : asio::thread_pool(threads), threads_(threads) {}
  size_t threads() const { return threads_; }
  int64_t pending() const { return pending_.load(std::memory_order_relaxed); }
  std::atomic<int64_t>* pending_counter() { return &pending_; }

 private:
  size_t threads_;
  std::atomic<int64_t> pending_{0};
};

template <typename F, typename R = std::invoke_result_t<F&>>
awaitable<R> Offload(CountingPool& pool, F f) {
  return detail::Offload<F, R>(pool, pool.pending_counter(), std::move(f));
}

namespace detail {
// Shared by the two ways an AwaitCallback can finish (result or timeout):
// whichever comes first takes the handler.
template <typename H>
struct CallbackState {
  explicit CallbackState(const asio::any_io_executor& ex) : timer(ex) {}
  std::mutex mu;
  std::optional<H> handler;
  asio::steady_timer timer;

  template <typename R>
  void Finish(R&& r) {
    std::optional<H> h;
    {
      std::lock_guard lock(mu);
      if (!handler) return;  // the other path already resumed the coroutine
      h.emplace(std::move(*handler));
      handler.reset();
    }
    timer.cancel();
    std::move (*h)(std::forward<R>(r));
  }
};
}  // namespace detail

// `start` receives a std::function<void(Result<T>)> and must call it exactly once,
// from any thread. If it has not called back within `timeout`, the coroutine
// resumes with a kTemporary error and the late result is dropped (the caller
// must then answer "try later": the operation may or may not complete).
template <typename T, typename Start>
awaitable<Result<T>> AwaitCallback(Start start, std::chrono::milliseconds timeout) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<T>)>(
      [timeout](auto handler, Start start) {
        asio::any_io_executor ex = asio::get_associated_executor(handler);
        using State = detail::CallbackState<decltype(handler)>;
        auto state = std::make_shared<State>(ex);
        state->handler.emplace(std::move(handler));
        state->timer.expires_after(timeout);
        state->timer.async_wait([state](boost::system::error_code ec) {
          if (!ec)
            state->Finish(Result<T>(Err(ErrorKind::kTemporary, "timed out waiting for the store")));
        });
        start([ex, state](Result<T> r) mutable {
          asio::post(ex, [state, r = std::move(r)]() mutable { state->Finish(std::move(r)); });
        });
      },
      asio::use_awaitable, std::move(start));
}

}  // namespace hato::io
