#include "app/data_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hato::app {

Result<DataDirLock> DataDirLock::Acquire(const std::string& data_dir) {
  std::string path = data_dir + "/" + kLockFile;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Err(ErrorKind::kInternal, "cannot open the lock file " + path + ": " + strerror(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    std::string holder;
    char buf[32] = {};
    ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
    for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i) holder += buf[i];
    ::close(fd);
    if (e != EWOULDBLOCK) {
      return Err(ErrorKind::kInternal, "cannot lock " + path + ": " + strerror(e));
    }
    return Err(ErrorKind::kInUse, "the data directory " + data_dir + " is in use: " + path +
                                      " is locked by pid " + (holder.empty() ? "?" : holder) +
                                      " (another hato serve; stop it first)");
  }
  std::string pid = std::to_string(getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    int e = errno;
    ::close(fd);
    return Err(ErrorKind::kInternal, "cannot write " + path + ": " + strerror(e));
  }
  return DataDirLock(fd);
}

DataDirLock::~DataDirLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

}  // namespace hato::app
