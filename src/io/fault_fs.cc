#include "io/fault_fs.h"

#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <thread>

namespace hato::io {
namespace {

Status Injected(int error, const std::string& what) {
  return Err(ErrorKind::kTemporary,
             "injected " + std::string(error == ENOSPC ? "ENOSPC" : "EIO") + " on " + what);
}

}  // namespace

void FaultInjector::SetRules(std::vector<FaultRule> rules) {
  std::lock_guard lock(mu_);
  rules_.clear();
  for (auto& r : rules) rules_.push_back(Counted{r, 0});
}

FaultOutcome FaultInjector::Check(FaultOp op, FaultFile file) {
  FaultOutcome out;
  if (file == FaultFile::kBlobs) {
    if (op == FaultOp::kSync) {
      out.delay_ms = sync_delay_ms.load();
      if (sync_error) out.error = EIO;
    }
    if (op == FaultOp::kWrite && append_error) out.error = ENOSPC;
  }
  std::lock_guard lock(mu_);
  for (auto& c : rules_) {
    const FaultRule& r = c.rule;
    if (r.op != op || (r.file != FaultFile::kAny && r.file != file)) continue;
    uint64_t n = ++c.seen;
    if (n < r.nth || (r.count != 0 && n >= r.nth + r.count)) continue;
    out.delay_ms += r.delay_ms;
    if (r.error && !out.error) out.error = r.error;
    out.torn = out.torn || r.torn;
  }
  return out;
}

FaultOutcome FaultInjector::Before(FaultOp op, FaultFile file) {
  Refresh();
  FaultOutcome out = Check(op, file);
  if (out.delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(out.delay_ms));
  return out;
}

void FaultInjector::Refresh() {
  if (control_file_.empty()) return;
  std::string text;
  {
    std::lock_guard lock(mu_);
    auto now = std::chrono::steady_clock::now();
    if (now - last_check_ < std::chrono::milliseconds(50)) return;
    last_check_ = now;
    auto read = control_base_->ReadFile(control_file_);
    if (!read || *read == last_text_) return;
    last_text_ = *read;
    text = std::move(*read);
  }
  auto rules = ParseFaultRules(text);
  if (!rules) {
    // Test-only input: a rule that does not parse is loud, and nothing applies.
    static constexpr char kBad[] = "hato: HATO_FAULTS_FILE: ignoring: ";
    (void)!::write(2, kBad, sizeof(kBad) - 1);
    (void)!::write(2, rules.error().message.data(), rules.error().message.size());
    (void)!::write(2, "\n", 1);
    SetRules({});
    return;
  }
  SetRules(std::move(*rules));
}

void FaultInjector::Crash() {
  ::kill(::getpid(), SIGKILL);
  ::_exit(137);  // not reached
}

namespace {

class FaultWritableFile final : public WritableFile {
 public:
  FaultWritableFile(FaultFileSystem* fs, std::unique_ptr<WritableFile> base)
      : fs_(fs), base_(std::move(base)) {}
  Status Append(std::string_view data) override {
    FaultOutcome f = fs_->BeforeAppend();
    if (f.torn) {
      (void)base_->Append(data.substr(0, data.size() / 2));
      FaultInjector::Crash();
    }
    if (f.error) {
      // A full disk takes what fits: part of the write reaches the file.
      if (f.error == ENOSPC) (void)base_->Append(data.substr(0, data.size() / 2));
      return Injected(f.error, "write");
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
  return std::unique_ptr<WritableFile>(new FaultWritableFile(this, std::move(*f)));
}

Status FaultFileSystem::CreateDirs(const std::string& path) {
  FaultOutcome f = Before(FaultOp::kMkdir, FaultFile::kBlobs);
  if (f.error) return Injected(f.error, "mkdir " + path);
  return base_->CreateDirs(path);
}

Status FaultFileSystem::SyncDir(const std::string& path) {
  if (auto st = BeforeSync("fsync " + path); !st) return st;
  return base_->SyncDir(path);
}

Status FaultFileSystem::WriteFileAtomic(const std::string& path, std::string_view data) {
  FaultOutcome f = Before(FaultOp::kRename, FaultFile::kBlobs);
  if (f.error) return Injected(f.error, "rename to " + path);
  return base_->WriteFileAtomic(path, data);
}

Status FaultFileSystem::BeforeSync(const std::string& what) {
  ++syncs;
  FaultOutcome f = Before(FaultOp::kSync, FaultFile::kBlobs);
  if (f.error) return Injected(f.error, what);
  return Ok();
}

FaultOutcome FaultFileSystem::BeforeAppend() { return Before(FaultOp::kWrite, FaultFile::kBlobs); }

}  // namespace hato::io
