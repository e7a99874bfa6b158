#include "server/memory_trim.h"

#include <malloc.h>

#include "metrics/registry.h"

namespace hato::server {

bool HeapTrimmer::Tick(uint64_t min_free) {
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
  struct mallinfo2 info = mallinfo2();
  // fordblks: free bytes in the arenas' chunks (the top included).
  free_ = info.fordblks;
  if (info.fordblks < min_free) return false;
  uint64_t before = metrics::ResidentBytes();
  malloc_trim(0);
  uint64_t after = metrics::ResidentBytes();
  if (before > after) released_ += before - after;
  ++trims_;
  return true;
#else
  (void)min_free;  // another allocator (or ASan's) manages its own memory
  return false;
#endif
}

}  // namespace hato::server
