// The manifest of a backup set (docs/operations.md, "Backup format"): a small
// self-describing, versioned text file written last, so a set without one is
// incomplete. Pure: Parse/Format do no I/O (fuzz/fuzz_manifest.cc).
//
//   hato-backup 1
//   id 20261122T031650Z
//   created 1763781410
//   schema 4
//   file meta.db 123456 <sha256 hex>
//   count accounts 3
//   ...
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hato::backup {

inline constexpr int kFormatVersion = 1;
inline constexpr size_t kMaxManifestSize = 1 << 20;  // bytes; a manifest is a few hundred

struct ManifestFile {
  std::string path;  // relative to the set directory
  uint64_t size = 0;
  std::string sha256_hex;
};

struct Manifest {
  int version = kFormatVersion;
  std::string id;
  int64_t created = 0;  // unix seconds
  int schema = 0;       // metadata schema version of the snapshot
  std::vector<ManifestFile> files;
  std::map<std::string, uint64_t> counts;  // accounts, messages, bodies, body_bytes, copied_...
};

std::string FormatManifest(const Manifest& m);
// kInvalid with the line number for anything malformed; unknown keys are
// ignored (a newer hato may add some), a newer format version is refused.
Result<Manifest> ParseManifest(std::string_view text);

}  // namespace hato::backup
