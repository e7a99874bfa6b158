#include "base/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace hato {

namespace {
constexpr auto kInterval = std::chrono::milliseconds(200);
}

Progress::Progress(std::string label, uint64_t total)
    : label_(std::move(label)),
      total_(total),
      tty_(::isatty(2) == 1),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

Progress::~Progress() { Finish(); }

double Progress::Seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

namespace {
thread_local Progress::Observer observer;
}  // namespace

void Progress::ObserveThisThread(Observer o) { observer = std::move(o); }

void Progress::Update(uint64_t items, uint64_t bytes) {
  if (observer) observer(label_, items, total_, bytes);
  if (!tty_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_ < kInterval) return;
  last_ = now;
  double secs = std::max(Seconds(), 1e-3);
  double rate = items / secs;
  char eta[32] = "";
  if (total_ > items && rate > 0) {
    std::snprintf(eta, sizeof(eta), ", ETA %.0f s", (total_ - items) / rate);
  }
  char total[32] = "";
  if (total_ > 0) std::snprintf(total, sizeof(total), "/%llu", (unsigned long long)total_);
  std::fprintf(stderr, "\r%s: %llu%s, %.1f MB, %.0f/s, %.1f MB/s%s   ", label_.c_str(),
               (unsigned long long)items, total, bytes / 1e6, rate, bytes / 1e6 / secs, eta);
  shown_ = true;
}

void Progress::Finish() {
  if (shown_) std::fputc('\n', stderr);
  shown_ = false;
}

std::string Progress::Rates(uint64_t items, uint64_t bytes, const char* unit) const {
  double secs = std::max(Seconds(), 1e-3);
  char buf[160];
  std::snprintf(buf, sizeof(buf), "%llu %s in %.1f s (%.0f %s/s, %.1f MB/s)",
                (unsigned long long)items, unit, secs, items / secs, unit, bytes / 1e6 / secs);
  return buf;
}

}  // namespace hato
