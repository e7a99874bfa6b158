// IMAP response helpers: date-time (RFC 3501 section 9 `date-time`, used by
// INTERNALDATE and APPEND) and search dates, flag lists (section 7.2.6),
// ESEARCH responses (RFC 4731 section 3.1), sequence sets (via seqset.h), and
// the tagged/untagged reply for a CommandReader error (RFC 7888 section 4,
// RFC 7889 section 4, RFC 9051 section 7.1 [TOOBIG]).
// Strings are quoted with imap/proto/strings.h. Pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"
#include "imap/proto/command.h"
#include "imap/proto/seqset.h"

namespace hato::imap {

struct ReadError;  // imap/proto/reader.h

// "Jan".."Dec" for 1..12 ("???" otherwise).
const char* MonthName(int month);
// Days in `month` of `year` (proleptic Gregorian).
int DaysInMonth(int year, int month);

// "dd-Mon-yyyy hh:mm:ss +zzzz" (RFC 3501 date-time without the DQUOTEs;
// the day zero-padded, which is the 2DIGIT form of date-day-fixed).
std::string FormatDateTime(const DateTime& t);
// Parses the text between the DQUOTEs of a date-time; the day may be " 1",
// "1" or "01". kInvalid on any syntax or range error.
Result<DateTime> ParseDateTime(std::string_view s);
// "d-Mon-yyyy" (search date, RFC 3501 date-text), and its parser (day 1*2DIGIT).
std::string FormatDate(const Date& d);
Result<Date> ParseDate(std::string_view s);

// Seconds since the Unix epoch of a date-time (its zone applied), and back,
// expressed in the zone `zone_minutes` east of UTC.
int64_t ToUnixTime(const DateTime& t);
DateTime FromUnixTime(int64_t seconds, int zone_minutes = 0);
// Midnight UTC of a date (search keys compare dates, RFC 3501 section 6.4.4).
int64_t ToUnixTime(const Date& d);

// "(\Seen \Answered $Forwarded)" (RFC 3501 section 7.2.6 flag-list).
std::string FormatFlagList(std::span<const std::string> flags);
void AppendFlagList(std::string& out, std::span<const std::string> flags);

// "* ESEARCH (TAG "a1") UID MIN 1 MAX 7 COUNT 4 ALL 1:3,7\r\n" for the sorted
// or unsorted `matches` of a SEARCH with RETURN options (RFC 4731 section 3.1;
// an empty RETURN () means ALL). MIN/MAX/ALL are left out when nothing
// matched, as the RFC requires; `highest_modseq` adds MODSEQ (RFC 7162
// section 3.1.5) when the search used MODSEQ.
// The numbers in the order given as a sequence-set: each run of consecutive
// ascending numbers becomes "first:last" ("5:7,1:2,9"; RFC 5267 section 3.2
// for ESORT's ALL, in sort order).
std::string SequenceInOrder(std::span<const uint32_t> numbers);
// The PARTIAL result of RFC 5267 section 4.4 / RFC 9394 section 3.1 for the
// ordered `results`: " PARTIAL (first:last set)", NIL for the set when no
// result is in the range.
std::string FormatPartial(std::pair<int64_t, int64_t> range, std::span<const uint32_t> results);
// The positions [first, second) of a list of `n` a partial range names.
std::pair<size_t, size_t> PartialSlice(std::pair<int64_t, int64_t> range, size_t n);
std::string FormatEsearch(std::string_view tag, bool uid, const SearchArgs& args,
                          std::span<const uint32_t> matches,
                          std::optional<uint64_t> highest_modseq = std::nullopt);

// The reply to a CommandReader error, with CRLF: "tag BAD ...", "tag NO
// [TOOBIG] ..." for a refused synchronizing literal, "* BAD ..." when the tag
// is unknown, or "* BYE ..." when the connection must close.
std::string FormatReadError(const ReadError& e);

}  // namespace hato::imap
