// Credentials for an authenticated smarthost ([outbound] relay_auth_file):
// one line "username:password" (the password may itself contain ':'), in a
// file only its owner may read, like Postfix's sasl_passwd. Read at start
// (a bad file stops `hato serve` with the reason) and again for each relay
// delivery, so a changed password applies without a restart.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace hato::outbound {

struct RelayCredentials {
  std::string username;
  std::string password;
};

// The largest credentials file read: a user name and a password, not a file
// that happens to be at that path.
constexpr size_t kMaxRelayAuthFileBytes = 4096;

// Pure: the file's text. The first line counts; a trailing CR/LF is dropped;
// an empty user name or password is refused.
Result<RelayCredentials> ParseRelayCredentials(std::string_view text);

// Reads and parses `path`, refusing anything that is not a regular file
// (no symlinks) or that group or others may read or write (mode & 077).
Result<RelayCredentials> LoadRelayCredentials(const std::string& path);

}  // namespace hato::outbound
