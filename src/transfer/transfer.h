// hato export / hato import (issue 6): an account's folders to and from mbox
// (mboxrd, one file per folder) or Maildir++ (one directory per folder), with
// bounded memory (one message at a time; imports keep kImportWindow writes in
// flight). Imports go through Store::RestoreMessage, so importing the same
// data twice adds nothing the second time. Formats: transfer/mbox.h.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "io/fs.h"
#include "store/store.h"

namespace hato::transfer {

inline constexpr size_t kImportWindow = 256;
inline constexpr size_t kReadChunk = 1 << 20;

enum class Format { kMbox, kMaildir };

struct TransferResult {
  uint64_t folders = 0;
  uint64_t messages = 0;
  uint64_t added = 0;    // import: new messages
  uint64_t skipped = 0;  // import: already there
  uint64_t bytes = 0;
  double seconds = 0;
  std::vector<std::string> problems;  // each names the folder and file
};

// Writes every folder of the account to `out` (which must not exist or be empty).
Result<TransferResult> Export(store::Store& store, int64_t account_id, Format format,
                              const std::string& out, io::FileSystem* fs = nullptr);

// Why `hato export` leaves folder `name` out of an mbox export (a level of
// the name is not a safe file name), or nullopt: it is written to
// "<name>.mbox". The web download (web/account_api.h) follows the same rule
// so that its archive holds exactly the files of `hato export`.
std::optional<std::string> MboxExportProblem(const std::string& name);

// Imports `path`: a Maildir++ directory (has cur/), a directory of mbox files
// (folder = relative path without ".mbox"), or one mbox file (into `folder`,
// default INBOX).
Result<TransferResult> Import(store::Store& store, int64_t account_id, const std::string& path,
                              const std::string& folder, io::FileSystem* fs = nullptr);

}  // namespace hato::transfer
