#include "io/fault_fs.h"

#include <thread>

#include "base/strings.h"

namespace hato::io {
namespace {

class FaultFile final : public WritableFile {
 public:
  FaultFile(FaultFileSystem* fs, std::unique_ptr<WritableFile> base)
      : fs_(fs), base_(std::move(base)) {}
  Status Append(std::string_view data) override {
    if (auto st = fs_->BeforeAppend(); !st) {
      (void)base_->Append(data.substr(0, data.size() / 2));  // a torn write reaches the disk
      return st;
    }
    return base_->Append(data);
  }
  Status Sync() override {
    if (auto st = fs_->BeforeSync("fdatasync"); !st) return st;
    return base_->Sync();
  }
  uint64_t Size() const override { return base_->Size(); }

 private:
  FaultFileSystem* fs_;
  std::unique_ptr<WritableFile> base_;
};

}  // namespace

Result<std::unique_ptr<WritableFile>> FaultFileSystem::OpenAppend(const std::string& path) {
  auto f = base_->OpenAppend(path);
  if (!f) return f.error();
  return std::unique_ptr<WritableFile>(new FaultFile(this, std::move(*f)));
}

Status FaultFileSystem::SyncDir(const std::string& path) {
  if (auto st = BeforeSync("fsync " + path); !st) return st;
  return base_->SyncDir(path);
}

void FaultFileSystem::Refresh() {
  if (control_file_.empty()) return;
  std::lock_guard lock(mu_);
  auto now = std::chrono::steady_clock::now();
  if (now - last_check_ < std::chrono::milliseconds(50)) return;
  last_check_ = now;
  auto text = base_->ReadFile(control_file_);
  if (!text || *text == last_text_) return;
  last_text_ = *text;
  int delay = 0;
  bool sync_err = false, append_err = false;
  size_t pos = 0;
  while (pos < text->size()) {
    size_t end = text->find('\n', pos);
    if (end == std::string::npos) end = text->size();
    std::string_view line(text->data() + pos, end - pos);
    pos = end + 1;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = TrimSpaces(line.substr(0, eq));
    auto value = ParseUint(TrimSpaces(line.substr(eq + 1)));
    if (!value) continue;
    if (key == "sync_delay_ms") delay = static_cast<int>(*value);
    if (key == "sync_error") sync_err = *value != 0;
    if (key == "append_error") append_err = *value != 0;
  }
  sync_delay_ms = delay;
  sync_error = sync_err;
  append_error = append_err;
}

Status FaultFileSystem::BeforeSync(const std::string& what) {
  Refresh();
  ++syncs;
  int delay = sync_delay_ms.load();
  if (delay > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay));
  if (sync_error) return Err(ErrorKind::kTemporary, "injected EIO on " + what);
  return Ok();
}

Status FaultFileSystem::BeforeAppend() {
  Refresh();
  if (append_error) return Err(ErrorKind::kTemporary, "injected ENOSPC on write");
  return Ok();
}

}  // namespace hato::io
