// SORT and THREAD (RFC 5256, RFC 5957): the base subject, the sent date, the
// message ids of a References/In-Reply-To field, the sort order and the two
// threading algorithms (ORDEREDSUBJECT and REFERENCES) with their response
// text.
//
// Pure: the session extracts each message's keys from its stored MIME tree
// (imap/server/sort_keys.h) and hands them here; nothing below touches a
// socket or the store. Fuzzed by fuzz/fuzz_imap_command.cc (base subjects
// and threads of inputs derived from the data).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "imap/proto/command.h"

namespace hato::imap {

// The comparison form of a UTF-8 string: ASCII letters upper-cased and the
// accented Latin-1 letters decomposed into base letter and combining mark,
// so that byte order follows i;unicode-casemap (RFC 5051) for the scripts
// mail subjects and names mostly use (Dovecot's SORT order).
std::string SortFold(std::string_view utf8);

// RFC 5256 section 2.1: the base subject of a subject already decoded to
// UTF-8 (RFC 2047 encoded-words), in SortFold form. `reply_or_forward` tells whether a "Re:",
// "Fwd:", "(fwd)" or "[fwd: ...]" was removed (section 2.1, used by the
// REFERENCES algorithm's step 6).
std::string BaseSubject(std::string_view subject, bool* reply_or_forward = nullptr);

// RFC 5322 section 3.3 date-time (and the obsolete forms of section 4.3) as
// seconds since the epoch, in UTC; nullopt when it is not a valid date.
std::optional<int64_t> ParseSentDate(std::string_view value);

// The msg-ids ("<left@right>") of a References or In-Reply-To field, in
// order, without the angle brackets' surrounding CFWS.
std::vector<std::string> ParseMessageIds(std::string_view value);

// One message as SORT and THREAD see it.
struct SortInput {
  uint32_t seq = 0;     // sequence number: the final tie-break (RFC 5256 section 3)
  uint32_t number = 0;  // what the response shows: the sequence number or the UID
  int64_t arrival = 0;  // INTERNALDATE
  int64_t date = 0;     // sent date (section 2.2): Date, else INTERNALDATE
  uint64_t size = 0;
  std::string subject;                   // BaseSubject()
  bool reply = false;                    // the subject was a reply or forward
  std::string from, to, cc;              // addr-mailbox of the first address, upper-cased
  std::string display_from, display_to;  // RFC 5957, upper-cased
  std::string message_id;                // "" when missing
  std::vector<std::string> references;   // References, else the first In-Reply-To id
};

// The order of `in` (indexes) by the criteria, ties broken by sequence number.
std::vector<size_t> SortOrder(const std::vector<SortInput>& in,
                              const std::vector<SortCriterion>& criteria);

// The thread-list text of a THREAD response ("(1 2)(3 (4)(5))"), without
// "* THREAD ". RFC 5256 section 3 (ORDEREDSUBJECT) and section 3 with 2.2
// (REFERENCES).
std::string ThreadOrderedSubject(const std::vector<SortInput>& in);
std::string ThreadReferences(const std::vector<SortInput>& in);

}  // namespace hato::imap
