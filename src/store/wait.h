// Wait(): turns an async store write into a blocking call (CLI, tests).
#pragma once

#include <future>

namespace hato::store {

template <typename T, typename Op>
Result<T> Wait(Op&& op) {
  std::promise<Result<T>> promise;
  auto future = promise.get_future();
  op([&promise](Result<T> r) { promise.set_value(std::move(r)); });
  return future.get();
}

}  // namespace hato::store
