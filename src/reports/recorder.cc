#include "reports/recorder.h"

#include <spdlog/spdlog.h>

#include <ctime>

namespace hato::reports {

std::string_view KindName(Kind kind) { return kind == Kind::kTls ? "tls" : "dmarc"; }

std::string KindDir(const std::string& data_dir, Kind kind) {
  return data_dir + "/reports/" + std::string(KindName(kind));
}

std::string DayName(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[16];
  std::strftime(buf, sizeof(buf), "%Y%m%d", &tm);
  return buf;
}

int64_t DayStart(int64_t t) { return t - ((t % 86400) + 86400) % 86400; }

Recorder::Recorder(io::FileSystem* fs, std::string data_dir)
    : fs_(fs), data_dir_(std::move(data_dir)) {}

void Recorder::Add(Kind kind, int64_t when, std::string_view json_line) {
  std::string dir = KindDir(data_dir_, kind);
  std::string path = dir + "/" + DayName(when) + ".jsonl";
  std::string line(json_line);
  line += '\n';
  std::lock_guard lock(mu_);
  if (!fs_->Exists(dir)) {
    if (auto st = fs_->CreateDirs(dir); !st) {
      spdlog::warn("reports: cannot create {}: {}", dir, st.error().message);
      return;
    }
  }
  auto file = fs_->OpenAppend(path);
  if (!file) {
    spdlog::warn("reports: cannot open {}: {}", path, file.error().message);
    return;
  }
  if (auto st = (*file)->Append(line); !st) {
    spdlog::warn("reports: cannot append to {}: {}", path, st.error().message);
  }
}

}  // namespace hato::reports
