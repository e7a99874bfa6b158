// The file-system seam. Every file-system effect of the store goes through a
// FileSystem, so tests can swap in one that injects EIO, ENOSPC or slow fsync
// (issue: reliability under faults). Errors are values: Status/Result.
//
// Thread-safety: FileSystem methods are thread-safe. A WritableFile is used by
// one thread at a time (the store's writer); a ReadableFile may be shared by
// many readers (pread has no file position).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hato::io {

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Appends at the end of the file in one write (O_APPEND), so that another
  // process appending to the same file (a CLI restore next to the server)
  // never interleaves with it: the data lands at Size() - data.size(). Not
  // durable until Sync() returns Ok.
  virtual Status Append(std::string_view data) = 0;
  // fdatasync(2). A failed Sync is final for this file: the caller must not
  // retry it into a success (after a failed fsync the kernel may have dropped
  // the dirty pages), it must abandon the file and fail the transaction.
  virtual Status Sync() = 0;
  // The end of the file after the last Append (or at open).
  virtual uint64_t Size() const = 0;
};

class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  // Reads exactly n bytes at offset or fails (a short read is kCorrupt).
  virtual Result<std::string> ReadAt(uint64_t offset, size_t n) const = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  // Opens (creating if needed) a file for appending.
  virtual Result<std::unique_ptr<WritableFile>> OpenAppend(const std::string& path) = 0;
  virtual Result<std::unique_ptr<ReadableFile>> OpenRead(const std::string& path) = 0;
  virtual Status CreateDirs(const std::string& path) = 0;
  // fsync(2) of a directory, so that a created or renamed entry is durable.
  virtual Status SyncDir(const std::string& path) = 0;
  virtual Result<std::vector<std::string>> ListDir(const std::string& path) = 0;
  virtual bool Exists(const std::string& path) = 0;
  // Writes a whole file durably: write to a temp name, fsync, rename, fsync dir.
  virtual Status WriteFileAtomic(const std::string& path, std::string_view data) = 0;
  virtual Result<std::string> ReadFile(const std::string& path) = 0;
  // Bytes available to an unprivileged user on the file system holding path.
  virtual Result<uint64_t> FreeSpace(const std::string& path) = 0;
  // Size of a regular file (kNotFound when missing).
  virtual Result<uint64_t> FileSize(const std::string& path) = 0;
  // Writes a whole file (truncating) without fsync: for bulk copies made
  // durable at once with SyncFileSystem (backup bodies).
  virtual Status WriteFile(const std::string& path, std::string_view data) = 0;
  // rename(2): atomic replacement of `to`.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // Removes a file (Ok when it is already gone).
  virtual Status Remove(const std::string& path) = 0;
  // syncfs(2) of the file system holding path: everything written there is durable.
  virtual Status SyncFileSystem(const std::string& path) = 0;

  // What is at `path` itself, a symbolic link not followed (lstat(2)).
  // Virtual with a POSIX default, so wrappers need not implement it.
  enum class FileType { kMissing, kRegular, kDirectory, kSymlink, kOther };
  virtual Result<FileType> Lstat(const std::string& path);
  // ReadFile of a regular file reached without following a symbolic link at
  // `path` (O_NOFOLLOW, then fstat): kInvalid for a link, a FIFO, a device...
  // For reading trees a user may have planted links in (hato import).
  virtual Result<std::string> ReadRegularFile(const std::string& path);
  // OpenRead with the same rule as ReadRegularFile.
  virtual Result<std::unique_ptr<ReadableFile>> OpenRegularFile(const std::string& path);

  // The real, POSIX file system.
  static FileSystem* Default();
};

// Ok when no component of `path` below `base` (path = base + "/" + ...) is a
// symbolic link; missing components are fine (nothing to follow). Writers
// into a tree someone else can change (export, backup DEST, restore) call it
// before writing, and open the last component with O_NOFOLLOW.
Status CheckNoSymlinkBelow(FileSystem& fs, const std::string& base, const std::string& path);

}  // namespace hato::io
