// The rules of fault injection (io/fault_fs.h documents the control-file
// syntax): which operation on which files fails, waits or tears. Pure: text
// in, rules out (fuzzed by fuzz/fuzz_faults.cc).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hato::io {

enum class FaultOp { kWrite, kSync, kTruncate, kRename, kMkdir };
enum class FaultFile { kAny, kDb, kBlobs };

struct FaultRule {
  FaultOp op = FaultOp::kWrite;
  FaultFile file = FaultFile::kAny;
  int error = 0;  // errno (EIO, ENOSPC); 0 = the operation succeeds
  int delay_ms = 0;
  bool torn = false;
  uint64_t nth = 1;
  uint64_t count = 0;  // 0 = unlimited
};

// Parses the control-file text. Lines
// that do not parse are reported in the error; nothing is applied then.
Result<std::vector<FaultRule>> ParseFaultRules(std::string_view text);

}  // namespace hato::io
