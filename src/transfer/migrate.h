// hato migrate (issue 6): pulls every folder, message, flag and internal date
// of an account on another IMAP server (RFC 3501 / RFC 9051 client: LOGIN,
// LIST, EXAMINE, UID FETCH) into a local account while both servers run.
//
// Resumable and idempotent: the last UID copied per folder (with its
// UIDVALIDITY) is kept in DATA/migrate/, so a re-run fetches only newer
// messages; and every message goes through Store::RestoreMessage, so even a
// re-fetch adds nothing twice. One message in memory at a time.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "io/fs.h"
#include "store/store.h"

namespace hato::transfer {

struct MigrateSource {
  bool tls = true;  // imaps:// (implicit TLS, RFC 8314) or imap:// (plain: loopback, tests)
  bool verify_tls = true;
  std::string host;
  int port = 993;
  std::string user;
  std::string password;
};

// "imaps://user@host:port" (user may be %-escaped, e.g. %40 for @).
Result<MigrateSource> ParseMigrateUrl(const std::string& url);

struct MigrateResult {
  uint64_t folders = 0;
  uint64_t fetched = 0;
  uint64_t added = 0;
  uint64_t skipped = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  std::vector<std::string> problems;
};

Result<MigrateResult> Migrate(store::Store& store, int64_t account_id, const std::string& address,
                              const MigrateSource& source, const std::string& state_dir,
                              io::FileSystem* fs = nullptr);

}  // namespace hato::transfer
