// The Sender Rewriting Scheme (SRS; Shevek, "Sender Rewriting Scheme", 2004,
// as implemented by libsrs2 and postsrsd): mail that Hato forwards (a Sieve
// redirect) leaves with an envelope sender in one of our domains, so SPF
// (RFC 7208) still passes at the destination, and a bounce to that address
// comes back to us, is checked and goes on to the original sender.
//
//   SRS0=HHHH=TT=domain=local@srs-domain        forwarding local@domain
//   SRS1=HHHH=first-host==HHHH=TT=domain=local@srs-domain
//                                               forwarding an SRS0 address again
//
// TT is the day (Unix days mod 1024) in two base32 characters; HHHH the first
// four base64 characters of HMAC-SHA1(secret, lower-case of what follows
// it), compared without regard to case (some MTAs fold the local part).
// A reverse address older than max_age_days, or with a wrong hash, is refused:
// nobody can make us relay to an address we did not forward for.
//
// Pure functions, no I/O (fuzz/fuzz_srs.cc); the secret is read by the caller
// (DATA/srs.key, LoadOrCreateSrsSecret).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"
#include "io/fs.h"

namespace hato::outbound {

inline constexpr int kSrsMaxAgeDays = 21;  // libsrs2's default
inline constexpr size_t kSrsHashChars = 4;

// The envelope sender to use when forwarding mail from `sender` through
// `srs_domain`. The null path stays null (RFC 5321 section 4.5.5); a sender
// already in `srs_domain` is kept as it is.
std::string SrsForward(std::string_view sender, std::string_view srs_domain,
                       std::string_view secret, int64_t now);

// Whether `local_part` is an SRS address (SRS0/SRS1 and a separator).
bool IsSrsLocalPart(std::string_view local_part);

// The address an SRS local part (of an address in one of our domains) stands
// for: local@domain for SRS0, SRS0...@first-host for SRS1. kInvalid when it
// is malformed, has a wrong hash or is older than `max_age_days`.
Result<std::string> SrsReverse(std::string_view local_part, std::string_view secret, int64_t now,
                               int max_age_days = kSrsMaxAgeDays);

// The SRS secret of a data dir: DATA/srs.key (64 hex characters, mode 0600),
// created with random bytes the first time. Carried by backups, so that
// bounces to addresses given out before a restore still come back.
inline constexpr const char* kSrsKeyFile = "srs.key";
Result<std::string> LoadOrCreateSrsSecret(io::FileSystem& fs, const std::string& data_dir);

}  // namespace hato::outbound
