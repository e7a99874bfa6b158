// The data directory lock: one `hato serve` per data directory. The server
// holds an exclusive flock(2) on DATA/hato.lock for its whole life and writes
// its PID into it; a second server (or an offline command that needs the
// server stopped) is refused with the lock's path and the holder's PID. The
// kernel drops the lock when the holder exits, however it exits (kill -9
// included), so a stale file never blocks a restart.
#pragma once

#include <string>

#include "base/result.h"

namespace hato::app {

inline constexpr const char* kLockFile = "hato.lock";

class DataDirLock {
 public:
  // Takes the lock on `data_dir`, or kInUse naming the file and the PID.
  static Result<DataDirLock> Acquire(const std::string& data_dir);
  DataDirLock(DataDirLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  DataDirLock& operator=(DataDirLock&&) = delete;
  DataDirLock(const DataDirLock&) = delete;
  ~DataDirLock();

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace hato::app
