// Names the calling thread (Linux: at most 15 bytes, shown as `comm` in
// /proc/PID/task/TID/comm, top -H and perf), so that per-thread CPU time can
// be told apart: bench/thread_cpu.sh sums utime/stime by these names.
#pragma once

#include <pthread.h>

namespace hato {

// `name`: at most 15 bytes (longer names are cut, not refused).
inline void NameThisThread(const char* name) {
  char cut[16] = {};
  for (int i = 0; i < 15 && name[i] != '\0'; ++i) cut[i] = name[i];
  (void)pthread_setname_np(pthread_self(), cut);
}

}  // namespace hato
