#include "io/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hato::io {
namespace {

Error ErrnoError(const std::string& what, const std::string& path, int err) {
  // ENOSPC, EIO, EDQUOT and friends are temporary from a mail client's view:
  // the client must retry later, and nothing was acknowledged.
  ErrorKind kind = err == ENOENT ? ErrorKind::kNotFound : ErrorKind::kTemporary;
  return Err(kind, what + " " + path + ": " + std::strerror(err));
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  ~PosixWritableFile() override { ::close(fd_); }

  Status Append(std::string_view data) override {
    bool partial = false;
    while (!data.empty()) {
      ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoError("write", path_, errno);
      }
      data.remove_prefix(static_cast<size_t>(n));
      partial = partial || !data.empty();
    }
    // O_APPEND: the position after the write is the end of what we wrote,
    // even when another process appended to the file meanwhile.
    off_t end = ::lseek(fd_, 0, SEEK_CUR);
    if (end < 0) return ErrnoError("lseek", path_, errno);
    size_ = static_cast<uint64_t>(end);
    if (partial) {
      // A record split over several writes may interleave with another writer's.
      return Err(ErrorKind::kTemporary, "short write to " + path_);
    }
    return Ok();
  }

  Status Sync() override {
    if (::fdatasync(fd_) != 0) return ErrnoError("fdatasync", path_, errno);
    return Ok();
  }

  uint64_t Size() const override { return size_; }

 private:
  std::string path_;
  int fd_;
  uint64_t size_;
};

class PosixReadableFile final : public ReadableFile {
 public:
  PosixReadableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixReadableFile() override { ::close(fd_); }

  Result<std::string> ReadAt(uint64_t offset, size_t n) const override {
    std::string out(n, '\0');
    size_t got = 0;
    while (got < n) {
      ssize_t r = ::pread(fd_, out.data() + got, n - got, static_cast<off_t>(offset + got));
      if (r < 0) {
        if (errno == EINTR) continue;
        return ErrnoError("pread", path_, errno);
      }
      if (r == 0) return Err(ErrorKind::kCorrupt, "short read in " + path_);
      got += static_cast<size_t>(r);
    }
    return out;
  }

 private:
  std::string path_;
  int fd_;
};

class PosixFileSystem final : public FileSystem {
 public:
  Result<std::unique_ptr<WritableFile>> OpenAppend(const std::string& path) override {
    // O_NOFOLLOW: never append through a link planted where a file is expected.
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return ErrnoError("open", path, errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      int e = errno;
      ::close(fd);
      return ErrnoError("fstat", path, e);
    }
    return std::unique_ptr<WritableFile>(
        new PosixWritableFile(path, fd, static_cast<uint64_t>(st.st_size)));
  }

  Result<std::unique_ptr<ReadableFile>> OpenRead(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoError("open", path, errno);
    return std::unique_ptr<ReadableFile>(new PosixReadableFile(path, fd));
  }

  Status CreateDirs(const std::string& path) override {
    std::string cur;
    size_t pos = 0;
    while (pos != std::string::npos) {
      pos = path.find('/', pos + 1);
      cur = path.substr(0, pos);
      if (cur.empty()) continue;
      if (::mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) {
        return ErrnoError("mkdir", cur, errno);
      }
    }
    return Ok();
  }

  Status SyncDir(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoError("open", path, errno);
    int rc = ::fsync(fd);
    int e = errno;
    ::close(fd);
    if (rc != 0) return ErrnoError("fsync", path, e);
    return Ok();
  }

  Result<std::vector<std::string>> ListDir(const std::string& path) override {
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) return ErrnoError("opendir", path, errno);
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(std::move(n));
    }
    ::closedir(d);
    return names;
  }

  bool Exists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }

  Status WriteFileAtomic(const std::string& path, std::string_view data) override {
    std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return ErrnoError("open", tmp, errno);
    PosixWritableFile f(tmp, fd, 0);  // closes fd
    if (auto st = f.Append(data); !st) return st;
    if (::fsync(fd) != 0) return ErrnoError("fsync", tmp, errno);
    if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoError("rename", path, errno);
    size_t slash = path.rfind('/');
    return SyncDir(slash == std::string::npos ? "." : path.substr(0, slash));
  }

  Result<std::string> ReadFile(const std::string& path) override {
    auto f = OpenRead(path);
    if (!f) return f.error();
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return ErrnoError("stat", path, errno);
    return (*f)->ReadAt(0, static_cast<size_t>(st.st_size));
  }

  Result<uint64_t> FreeSpace(const std::string& path) override {
    struct statvfs s {};
    if (::statvfs(path.c_str(), &s) != 0) return ErrnoError("statvfs", path, errno);
    return static_cast<uint64_t>(s.f_bavail) * s.f_frsize;
  }

  Result<uint64_t> FileSize(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return ErrnoError("stat", path, errno);
    return static_cast<uint64_t>(st.st_size);
  }

  Status WriteFile(const std::string& path, std::string_view data) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return ErrnoError("open", path, errno);
    PosixWritableFile f(path, fd, 0);  // closes fd
    return f.Append(data);
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return ErrnoError("rename", from, errno);
    return Ok();
  }

  Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoError("unlink", path, errno);
    return Ok();
  }

  Status SyncFileSystem(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoError("open", path, errno);
    int rc = ::syncfs(fd);
    int e = errno;
    ::close(fd);
    if (rc != 0) return ErrnoError("syncfs", path, e);
    return Ok();
  }
};

// Opens `path` for reading only if it is a regular file and not a link.
Result<int> OpenRegularFd(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ELOOP) return Err(ErrorKind::kInvalid, path + " is a symbolic link");
    return ErrnoError("open", path, errno);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return ErrnoError("fstat", path, e);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Err(ErrorKind::kInvalid, path + " is not a regular file");
  }
  return fd;
}

}  // namespace

Result<FileSystem::FileType> FileSystem::Lstat(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return FileType::kMissing;
    return ErrnoError("lstat", path, errno);
  }
  if (S_ISLNK(st.st_mode)) return FileType::kSymlink;
  if (S_ISREG(st.st_mode)) return FileType::kRegular;
  if (S_ISDIR(st.st_mode)) return FileType::kDirectory;
  return FileType::kOther;
}

Result<std::unique_ptr<ReadableFile>> FileSystem::OpenRegularFile(const std::string& path) {
  auto fd = OpenRegularFd(path);
  if (!fd) return fd.error();
  return std::unique_ptr<ReadableFile>(new PosixReadableFile(path, *fd));
}

Result<std::string> FileSystem::ReadRegularFile(const std::string& path) {
  auto fd = OpenRegularFd(path);
  if (!fd) return fd.error();
  PosixReadableFile f(path, *fd);  // closes fd
  struct stat st {};
  if (::fstat(*fd, &st) != 0) return ErrnoError("fstat", path, errno);
  return f.ReadAt(0, static_cast<size_t>(st.st_size));
}

Status CheckNoSymlinkBelow(FileSystem& fs, const std::string& base, const std::string& path) {
  if (path.compare(0, base.size(), base) != 0 ||
      (path.size() > base.size() && path[base.size()] != '/')) {
    return Err(ErrorKind::kInvalid, path + " is not below " + base);
  }
  for (size_t pos = base.size() + 1; pos <= path.size();) {
    size_t slash = path.find('/', pos);
    if (slash == std::string::npos) slash = path.size();
    std::string prefix = path.substr(0, slash);
    auto type = fs.Lstat(prefix);
    if (!type) return type.error();
    if (*type == FileSystem::FileType::kSymlink) {
      return Err(ErrorKind::kInvalid, prefix + " is a symbolic link; refusing to write through it");
    }
    if (*type == FileSystem::FileType::kMissing) break;
    pos = slash + 1;
  }
  return Ok();
}

FileSystem* FileSystem::Default() {
  static PosixFileSystem fs;
  return &fs;
}

}  // namespace hato::io
