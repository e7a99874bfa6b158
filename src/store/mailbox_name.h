// Mailbox-name hygiene (issue 11 item 4). Pure functions, no I/O; fuzzed by
// fuzz/fuzz_mailbox_name.cc.
//
// CheckNewMailboxName decides whether a name (storage form: UTF-8 levels
// separated by "/", store::kHierarchySeparator, after CanonicalMailboxName) may be
// given to a mailbox: every path that names a mailbox (IMAP CREATE and
// RENAME, hato import, restore --merge, migrate, undelete) goes through the
// store's mailbox creation, which calls it. Names already stored (by an older
// Hato, or a restored store) can still be selected, renamed and deleted.
//
// SafePathComponent decides whether one level may become one file-name
// component when mail is exported (hato export): "." and ".." levels, "/"
// and NUL can never reach a path, whatever the store holds.
//
// SECURITY: these are the only gates between a user-chosen name and a path
// an administrator's command writes to; keep them strict and total.
#pragma once

#include <cstddef>
#include <string_view>

#include "base/result.h"

namespace hato::store {

// Limits of a new mailbox name (bytes of the UTF-8 storage form). A level fits
// in a file name with ".mbox" added (NAME_MAX 255 on Linux).
inline constexpr size_t kMaxMailboxNameBytes = 1000;
inline constexpr size_t kMaxMailboxLevelBytes = 200;
inline constexpr size_t kMaxMailboxLevels = 32;

// Ok, or kInvalid naming the rule broken: empty name or level, a "." or ".."
// level, a control character (C0, DEL, C1), "*" or "%" (IMAP wildcards),
// invalid UTF-8, or a limit above exceeded.
Status CheckNewMailboxName(std::string_view name);

// True when `c` can be used as one component of an export path: non-empty,
// not "." or "..", no "/" or NUL, no control character, at most 255 bytes.
bool SafePathComponent(std::string_view c);

}  // namespace hato::store
