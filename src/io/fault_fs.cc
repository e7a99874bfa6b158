#include "io/fault_fs.h"

#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <thread>

#include "base/strings.h"

namespace hato::io {
namespace {

constexpr uint64_t kMaxDelayMs = 3600 * 1000;  // an hour: a stall, not a hang forever

Status Injected(int error, const std::string& what) {
  return Err(ErrorKind::kTemporary,
             "injected " + std::string(error == ENOSPC ? "ENOSPC" : "EIO") + " on " + what);
}

std::optional<FaultOp> ParseOp(std::string_view w) {
  if (w == "write") return FaultOp::kWrite;
  if (w == "fsync" || w == "sync") return FaultOp::kSync;
  if (w == "truncate") return FaultOp::kTruncate;
  if (w == "rename") return FaultOp::kRename;
  if (w == "mkdir") return FaultOp::kMkdir;
  return std::nullopt;
}

// The older `key = value` knobs, which act on blob segments only.
std::optional<FaultRule> ParseLegacy(std::string_view line, bool& is_legacy) {
  size_t eq = line.find('=');
  is_legacy = false;
  if (eq == std::string_view::npos) return std::nullopt;
  std::string_view key = TrimSpaces(line.substr(0, eq));
  if (key != "sync_delay_ms" && key != "sync_error" && key != "append_error") return std::nullopt;
  is_legacy = true;
  auto value = ParseUint(TrimSpaces(line.substr(eq + 1)));
  if (!value || *value > kMaxDelayMs) return std::nullopt;
  FaultRule r;
  r.file = FaultFile::kBlobs;
  if (key == "sync_delay_ms") {
    r.op = FaultOp::kSync;
    r.delay_ms = static_cast<int>(*value);
  } else if (key == "sync_error") {
    r.op = FaultOp::kSync;
    r.error = *value ? EIO : 0;
  } else {
    r.op = FaultOp::kWrite;
    r.error = *value ? ENOSPC : 0;
  }
  return r;
}

}  // namespace

Result<std::vector<FaultRule>> ParseFaultRules(std::string_view text) {
  std::vector<FaultRule> rules;
  size_t pos = 0;
  int lineno = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++lineno;
    if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = TrimSpaces(line);
    if (line.empty()) continue;
    auto bad = [&](std::string_view why) {
      return Err(ErrorKind::kInvalid, "faults line " + std::to_string(lineno) + ": " +
                                          std::string(why) + ": " + std::string(line));
    };
    bool legacy = false;
    auto old = ParseLegacy(line, legacy);
    if (legacy) {
      if (!old) return bad("bad value");
      if (old->error || old->delay_ms) rules.push_back(*old);
      continue;
    }
    auto words = SplitWords(line);
    auto op = ParseOp(words[0]);
    if (!op) return bad("unknown operation");
    FaultRule r;
    r.op = *op;
    for (size_t i = 1; i < words.size(); ++i) {
      std::string_view w = words[i];
      if (w == "torn") {
        r.torn = true;
        continue;
      }
      size_t eq = w.find('=');
      if (eq == std::string_view::npos) return bad("expected key=value");
      std::string_view key = w.substr(0, eq), value = w.substr(eq + 1);
      if (key == "file") {
        if (value == "db") {
          r.file = FaultFile::kDb;
        } else if (value == "blobs") {
          r.file = FaultFile::kBlobs;
        } else if (value == "any") {
          r.file = FaultFile::kAny;
        } else {
          return bad("file must be db, blobs or any");
        }
      } else if (key == "error") {
        if (value == "EIO") {
          r.error = EIO;
        } else if (value == "ENOSPC") {
          r.error = ENOSPC;
        } else {
          return bad("error must be EIO or ENOSPC");
        }
      } else {
        auto n = ParseUint(value);
        if (!n) return bad("expected a number");
        if (key == "delay_ms" && *n <= kMaxDelayMs) {
          r.delay_ms = static_cast<int>(*n);
        } else if (key == "nth" && *n >= 1) {
          r.nth = *n;
        } else if (key == "count") {
          r.count = *n;
        } else {
          return bad("unknown key or value out of range");
        }
      }
    }
    if (r.torn && r.op != FaultOp::kWrite) return bad("only a write can be torn");
    rules.push_back(r);
  }
  return rules;
}

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
