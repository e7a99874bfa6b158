// What FETCH returns and what SEARCH matches, for one message: pure functions
// over the message's metadata, its raw bytes and its MIME tree. The session
// runs them on the blocking pool (they may read and decode bodies), never on
// the event loop. RFC 3501 sections 6.4.4 (SEARCH) and 6.4.5, 7.4.2 (FETCH);
// RFC 3516 (BINARY); RFC 7162 (MODSEQ).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "imap/proto/command.h"
#include "mime/message.h"
#include "store/store.h"

namespace hato::imap {

// \Recent (RFC 3501 section 2.3.2) is a property of the session, not of
// the message: the session sets this bit in its copy of MessageMeta::flags
// for the messages it was the first to see. Never stored.
inline constexpr uint32_t kRecentFlag = 1u << 30;

// The flag list of a message, e.g. "(\Seen $Forwarded)".
std::string FlagList(const store::MessageMeta& m);
// System flag bits and keywords from a STORE/APPEND flag list. kInvalid for
// an unknown backslash flag (\Recent may not be set, RFC 3501 section 2.3.2).
Result<store::FlagChange> ParseFlags(const std::vector<std::string>& flags);

// Whether the FETCH items need the message content / MIME tree.
bool NeedsContent(const std::vector<FetchItem>& items);
bool NeedsTree(const std::vector<FetchItem>& items);

struct MessageData {
  const store::MessageMeta* meta = nullptr;
  uint32_t seq = 0;
  std::string_view raw;              // empty unless NeedsContent
  const mime::Part* tree = nullptr;  // null unless NeedsTree/NeedsContent
};

// Appends "* seq FETCH (...)\r\n". `uid_fetch` adds UID (RFC 3501 6.4.8),
// `with_modseq` adds MODSEQ when CONDSTORE is on (RFC 7162 3.1.4.1).
// kInvalid for a section that does not exist in this message is not an
// error: RFC 3501 returns an empty string (NIL for BINARY is not required).
void RenderFetch(std::string& out, const MessageData& m, const std::vector<FetchItem>& items,
                 bool uid_fetch, bool with_modseq);

// What a search key tree needs besides the metadata: the MIME tree (its
// envelope answers FROM, TO, CC, BCC, SUBJECT and the SENT* dates) or the
// whole content (BODY, TEXT, HEADER).
enum class SearchNeeds { kMeta, kTree, kContent };
SearchNeeds SearchNeedsOf(const SearchKey& key);
// Evaluates a key. `max_seq`/`max_uid` resolve "*".
bool Matches(const SearchKey& key, const MessageData& m, uint32_t max_seq, uint32_t max_uid);

}  // namespace hato::imap
