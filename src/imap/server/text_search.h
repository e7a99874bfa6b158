// SEARCH BODY and TEXT through the store's full-text index (RFC 3501 section
// 6.4.4; the index holds decoded text, as RFC 9051 section 6.4.4.1 expects).
// Each BODY/TEXT key of a search tree is answered by the index and replaced
// with the UID set it matched, so that the per-message evaluation (render.h
// Matches) needs neither the content nor a MIME decode for it. Messages the
// index does not cover (stored before it existed) keep the original key and
// are scanned as before.
//
// Threading: reads the store; run it on the blocking pool.
#pragma once

#include "imap/proto/command.h"
#include "store/store.h"

namespace hato::imap {

// Rewrites `key` in place. A store error leaves the key as it was (a scan).
void UseTextIndex(store::Store& store, int64_t mailbox_id, SearchKey& key);

// The same for EMAILID (RFC 8474 section 6): each key is answered by the
// body-hash index (Store::FindEmailRows: the id is a prefix of the body's
// SHA-256, object_ids.h) and replaced with the UIDs of `mailbox_id` it
// names, so SEARCH EMAILID reads no body. A store without the index, or an
// error, leaves the key (a scan).
void UseEmailIdIndex(store::Store& store, int64_t account_id, int64_t mailbox_id, SearchKey& key);

}  // namespace hato::imap
