// A FileSystem that forwards to another and injects faults, for tests and
// drills only: a delay on every sync (slow or stalled storage), EIO on sync,
// ENOSPC (with a torn, partial write) on append. Its knobs can be changed
// while a server runs: `hato serve` uses it only when the environment
// variable HATO_FAULTS_FILE names a file, which it re-reads when it changes:
//
//   sync_delay_ms = 3000
//   sync_error = 1
//   append_error = 0
//
// Never enabled by hato.toml. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>

#include "io/fs.h"

namespace hato::io {

class FaultFileSystem final : public FileSystem {
 public:
  explicit FaultFileSystem(FileSystem* base, std::string control_file = "")
      : base_(base), control_file_(std::move(control_file)) {}

  std::atomic<int> sync_delay_ms{0};
  std::atomic<bool> sync_error{false};
  std::atomic<bool> append_error{false};
  std::atomic<int> syncs{0};  // syncs attempted, for tests

  Result<std::unique_ptr<WritableFile>> OpenAppend(const std::string& path) override;
  Result<std::unique_ptr<ReadableFile>> OpenRead(const std::string& path) override {
    return base_->OpenRead(path);
  }
  Status CreateDirs(const std::string& path) override { return base_->CreateDirs(path); }
  Status SyncDir(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& path) override {
    return base_->ListDir(path);
  }
  bool Exists(const std::string& path) override { return base_->Exists(path); }
  Status WriteFileAtomic(const std::string& path, std::string_view data) override {
    return base_->WriteFileAtomic(path, data);
  }
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

  // Applies the control file if it changed (called before each injected effect).
  void Refresh();
  // The fault to apply to one sync: waits the delay, then maybe fails.
  Status BeforeSync(const std::string& what);
  Status BeforeAppend();

 private:
  FileSystem* base_;
  std::string control_file_;
  std::mutex mu_;
  std::string last_text_;                             // guarded by mu_
  std::chrono::steady_clock::time_point last_check_;  // guarded by mu_
};

}  // namespace hato::io
