// Fault injection for tests and drills only (issue 4: reliability under
// faults). A FaultInjector holds rules that make chosen file-system
// operations fail (EIO, ENOSPC), wait (slow or stalled storage) or tear (only
// part of a write reaches the disk, then the process dies). Two seams consult
// it: FaultFileSystem (the blob segments, through io::FileSystem) and the
// SQLite VFS of the embedded store (store/sqlite/fault_vfs.h: the metadata
// database), so both halves of a commit can be made to fail.
//
// `hato serve` uses it only when the environment variable HATO_FAULTS_FILE
// names a control file, which it re-reads when it changes (at most every
// 50 ms); never enabled by hato.toml. Control file, one rule per line:
//
//   <op> [file=db|blobs|any] [error=EIO|ENOSPC] [delay_ms=N] [torn]
//        [nth=N] [count=N]
//
//   op      write | fsync | truncate | rename | mkdir
//   file    which files: the metadata database (db), blob segments (blobs),
//           or both (any, the default)
//   error   the errno the operation fails with (it then has no effect;
//           an ENOSPC write to a blob segment leaves half the bytes behind)
//   delay_ms  waits this long before the operation
//   torn    writes only the first half, then the process SIGKILLs itself
//   nth     applies only from the Nth matching operation after the rule was
//           loaded (1-based; default 1) ...
//   count   ... for this many operations (default: all from nth on)
//
//   fsync file=db error=EIO nth=3 count=1    # the 3rd metadata fsync fails
//   write file=blobs error=ENOSPC            # every blob write: disk full
//   fsync delay_ms=5000                      # every fsync takes 5 s
//   write file=db torn nth=2 count=1         # 2nd metadata write tears, crash
//
// Counters restart whenever the file changes; an empty file clears every
// fault. The older keys still work and act on blob segments only:
// `sync_delay_ms = N`, `sync_error = 1`, `append_error = 1`.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "io/fault_rules.h"
#include "io/fs.h"

namespace hato::io {

// What one operation must suffer.
struct FaultOutcome {
  int error = 0;
  int delay_ms = 0;
  bool torn = false;
};

class FaultInjector {
 public:
  explicit FaultInjector(FileSystem* base, std::string control_file = "")
      : control_base_(base), control_file_(std::move(control_file)) {}
  virtual ~FaultInjector() = default;

  // Direct knobs for unit tests (blob segments only), besides the rules.
  std::atomic<int> sync_delay_ms{0};
  std::atomic<bool> sync_error{false};
  std::atomic<bool> append_error{false};
  std::atomic<int> syncs{0};  // blob-segment syncs attempted, for tests

  // Replaces the rules (resetting their counters).
  void SetRules(std::vector<FaultRule> rules);
  // Counts one operation against the rules and returns its fault.
  FaultOutcome Check(FaultOp op, FaultFile file);
  // Check() plus the waiting: returns the fault still to apply (error, torn).
  FaultOutcome Before(FaultOp op, FaultFile file);
  // Applies the control file if it changed.
  void Refresh();
  // The process dies here (a torn write's crash): SIGKILL, no clean-up.
  [[noreturn]] static void Crash();

 private:
  struct Counted {
    FaultRule rule;
    uint64_t seen = 0;
  };
  FileSystem* control_base_;
  std::string control_file_;
  std::mutex mu_;
  std::vector<Counted> rules_;                        // guarded by mu_
  std::string last_text_;                             // guarded by mu_
  std::chrono::steady_clock::time_point last_check_;  // guarded by mu_
};

class FaultFileSystem final : public FileSystem, public FaultInjector {
 public:
  explicit FaultFileSystem(FileSystem* base, std::string control_file = "")
      : FaultInjector(base, std::move(control_file)), base_(base) {}

  Result<std::unique_ptr<WritableFile>> OpenAppend(const std::string& path) override;
  Result<std::unique_ptr<ReadableFile>> OpenRead(const std::string& path) override {
    return base_->OpenRead(path);
  }
  Status CreateDirs(const std::string& path) override;
  Status SyncDir(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& path) override {
    return base_->ListDir(path);
  }
  bool Exists(const std::string& path) override { return base_->Exists(path); }
  Status WriteFileAtomic(const std::string& path, std::string_view data) override;
  Result<std::string> ReadFile(const std::string& path) override { return base_->ReadFile(path); }
  Result<uint64_t> FreeSpace(const std::string& path) override { return base_->FreeSpace(path); }
  Result<uint64_t> FileSize(const std::string& path) override { return base_->FileSize(path); }
  Status WriteFile(const std::string& path, std::string_view data) override {
    return base_->WriteFile(path, data);
  }
  Status Rename(const std::string& from, const std::string& to) override {
    return base_->Rename(from, to);
  }
  Status Remove(const std::string& path) override { return base_->Remove(path); }
  Status SyncFileSystem(const std::string& path) override { return base_->SyncFileSystem(path); }

  // The fault to apply to one blob-segment sync: waits the delay, then maybe fails.
  Status BeforeSync(const std::string& what);
  // For one blob-segment append: an error, and whether a torn half is written.
  FaultOutcome BeforeAppend();

 private:
  FileSystem* base_;
};

}  // namespace hato::io
