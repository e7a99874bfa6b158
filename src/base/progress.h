// Progress of a long command (backup, restore, import, export, fsck) on a
// terminal: one self-overwriting stderr line, at most a few times a second,
// with counts, rate and ETA when the total is known. Silent when stderr is not
// a terminal (logs and tests). Single-threaded.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace hato {

class Progress {
 public:
  // Also told every Update of a Progress made on this thread (the admin
  // console's backup jobs, web/admin_api.cc): label, items, total, bytes.
  // Null (the default): nothing but the terminal line.
  using Observer = std::function<void(const std::string&, uint64_t, uint64_t, uint64_t)>;
  static void ObserveThisThread(Observer observer);

  // `total` items (0: unknown).
  Progress(std::string label, uint64_t total);
  ~Progress();
  void Update(uint64_t items, uint64_t bytes);
  void SetTotal(uint64_t total) { total_ = total; }
  // Ends the terminal line.
  void Finish();
  double Seconds() const;
  // "12345 messages in 3.2 s (3858/s, 45.1 MB/s)" for summaries.
  std::string Rates(uint64_t items, uint64_t bytes, const char* unit) const;

 private:
  std::string label_;
  uint64_t total_;
  bool tty_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace hato
