// A SQLite VFS that wraps the default one (unix) and consults an
// io::FaultInjector before each write, sync and truncate of the metadata
// database and its WAL, so tests and drills can make the metadata half of a
// commit fail (EIO, ENOSPC), wait (slow or stalled fsync) or tear (part of a
// write reaches the disk, then the process dies). See io/fault_fs.h for the
// rules. Reads, locks and the shared-memory index are passed through.
//
// Used only when the store's FileSystem is an io::FaultInjector (tests, and
// `hato serve` with HATO_FAULTS_FILE); production opens the default VFS.
// Thread-safety: registration is once per process and thread-safe; the
// injector is process-wide (the last one registered), which is enough for one
// store per process or for tests that share one injector.
#pragma once

#include "io/fault_fs.h"

namespace hato::store::sqlite {

// Registers (once) and points the VFS at `faults`; returns its name for
// sqlite3_open_v2.
const char* UseFaultVfs(io::FaultInjector* faults);

}  // namespace hato::store::sqlite
