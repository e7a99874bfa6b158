// An optional capability of a store backend: a tiny durable write for the
// health watchdog (src/web/watchdog.h). One row is updated and group-
// committed (fsync) like any other write, so a stalled commit shows even when
// nothing else writes. A backend offers it by also deriving from WriteProbe;
// the watchdog finds it with dynamic_cast and, without it, relies on
// Store::Health() alone. Kept out of store.h so that backends need not change.
#pragma once

#include "store/store.h"

namespace hato::store {

class WriteProbe {
 public:
  virtual ~WriteProbe() = default;
  // Completes (on the writer thread) once the probe's commit is durable, or
  // with the commit's error.
  virtual void ProbeWrite(Done<void> done) = 0;
};

}  // namespace hato::store
