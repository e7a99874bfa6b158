// Mailing list archives as shared, read-only IMAP mailboxes (issue 14 item
// 7; RFC 2342 section 5, "other users' and shared namespaces"). Each list's
// posts are copied, in the fan-out's transaction (Store::PostToList), into
// the INBOX of a system account of the list (store::ListInfo::
// archive_account_id); a member of the list sees it as the mailbox
// "#lists/LIST@DOMAIN" in the shared namespace "#lists/". The session reads
// that mailbox with the archive account's id; every write (STORE, EXPUNGE,
// APPEND, COPY/MOVE into it, CREATE/DELETE/RENAME under "#lists/") is
// answered NO [NOPERM] (RFC 5530). Who may read: any member of the live list
// (any role, delivery on or off); anyone else gets [NONEXISTENT], the answer
// for a list that does not exist, so a non-member learns nothing.
//
// Pure functions over the store; they block (store reads): call them on the
// blocking pool. Thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "store/store.h"

namespace hato::imap {

// Whether `name` (UTF-8, canonical) is in the list archives' namespace:
// "#lists" itself or below it.
bool IsArchiveName(std::string_view name);

struct Archive {
  int64_t account_id = 0;  // the list's archive account
  // Its INBOX as the shared mailbox: name kListArchivePrefix + LIST@DOMAIN,
  // counts and ids of the stored mailbox, not subscribed.
  store::MailboxInfo mailbox;
};

// The archive `name` ("#lists/LIST@DOMAIN") when `user` may read it;
// kNotFound otherwise (no such list, not a member, not an archive name).
Result<Archive> FindArchive(store::Store& store, const std::string& user, std::string_view name);

// The archives `user` may read (one per list it is a member of).
Result<std::vector<Archive>> ListArchives(store::Store& store, const std::string& user);

}  // namespace hato::imap
