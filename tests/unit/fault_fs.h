// A FileSystem for tests that forwards to the real one and injects faults:
// EIO/ENOSPC on append or sync, while a switch is on.
#pragma once

#include <atomic>

#include "io/fs.h"

namespace hato::testing {

class FaultFileSystem final : public io::FileSystem {
 public:
  std::atomic<bool> fail_sync{false};
  std::atomic<bool> fail_append{false};  // as ENOSPC
  std::atomic<int> syncs{0};

  Result<std::unique_ptr<io::WritableFile>> OpenAppend(const std::string& path) override {
    auto f = base_->OpenAppend(path);
    if (!f) return f.error();
    return std::unique_ptr<io::WritableFile>(new File(this, std::move(*f)));
  }
  Result<std::unique_ptr<io::ReadableFile>> OpenRead(const std::string& path) override {
    return base_->OpenRead(path);
  }
  Status CreateDirs(const std::string& path) override { return base_->CreateDirs(path); }
  Status SyncDir(const std::string& path) override {
    if (fail_sync) return Err(ErrorKind::kTemporary, "injected EIO on fsync " + path);
    return base_->SyncDir(path);
  }
  Result<std::vector<std::string>> ListDir(const std::string& path) override {
    return base_->ListDir(path);
  }
  bool Exists(const std::string& path) override { return base_->Exists(path); }
  Status WriteFileAtomic(const std::string& path, std::string_view data) override {
    return base_->WriteFileAtomic(path, data);
  }
  Result<std::string> ReadFile(const std::string& path) override { return base_->ReadFile(path); }
  Result<uint64_t> FreeSpace(const std::string& path) override { return base_->FreeSpace(path); }

 private:
  class File final : public io::WritableFile {
   public:
    File(FaultFileSystem* fs, std::unique_ptr<io::WritableFile> base)
        : fs_(fs), base_(std::move(base)) {}
    Status Append(std::string_view data) override {
      if (fs_->fail_append) {
        // A partial write reaches the disk, then the device is full.
        (void)base_->Append(data.substr(0, data.size() / 2));
        return Err(ErrorKind::kTemporary, "injected ENOSPC on write");
      }
      return base_->Append(data);
    }
    Status Sync() override {
      ++fs_->syncs;
      if (fs_->fail_sync) return Err(ErrorKind::kTemporary, "injected EIO on fdatasync");
      return base_->Sync();
    }
    uint64_t Size() const override { return base_->Size(); }

   private:
    FaultFileSystem* fs_;
    std::unique_ptr<io::WritableFile> base_;
  };

  io::FileSystem* base_ = io::FileSystem::Default();
};

}  // namespace hato::testing
