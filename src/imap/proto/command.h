// IMAP command AST and parser: IMAP4rev1 (RFC 3501 section 6 and the grammar
// of section 9, with RFC 9051 where compatible) plus the syntax of IDLE (RFC
// 2177), UIDPLUS (RFC 4315 section 2.1: UID EXPUNGE), MOVE (RFC 6851),
// LITERAL+ (RFC 7888), NAMESPACE (RFC 2342), ID (RFC 2971), ENABLE (RFC 5161),
// UNSELECT (RFC 3691), LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819),
// SPECIAL-USE (RFC 6154), CONDSTORE/QRESYNC (RFC 7162), ESEARCH (RFC 4731),
// SASL-IR (RFC 4959), QUOTA (RFC 9208), APPENDLIMIT (RFC 7889), BINARY
// (RFC 3516: BINARY fetch items, APPEND with a literal8), STATUS=SIZE (RFC
// 8438), PREVIEW (RFC 8970), MULTIAPPEND (RFC 3502), CATENATE (RFC 4469), URLAUTH (RFC 4467),
// COMPRESS (RFC 4978), SORT and THREAD (RFC 5256, RFC 5957 DISPLAYFROM and DISPLAYTO), ESORT
// (RFC 5267 section 3: SORT RETURN (...)) and CONTEXT (RFC 5267 section 4: the UPDATE and
// CONTEXT return options, CANCELUPDATE).
//
// Pure: ParseCommand takes one complete command as framed by CommandReader
// (imap/proto/reader.h): the bytes from the tag to the final CRLF (excluded),
// with every literal inline as "{n}\r\n" + n bytes. It never touches a socket
// or the store; fuzzed by fuzz/fuzz_imap_command.cc. Whether a command is
// allowed in the session's state is the session's business, not the parser's.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "base/result.h"
#include "imap/proto/seqset.h"

namespace hato::imap {

// Every limit the parser and the reader enforce. A value of a limit is part
// of the server configuration; the defaults are the ones below.
struct Limits {
  // One line of a command (the text between literals), line end included.
  size_t max_line = 64 * 1024;
  // One literal, and so one APPENDed message (APPENDLIMIT, RFC 7889).
  uint64_t max_literal = 50 * 1024 * 1024;
  // A literal of any command other than APPEND (a LOGIN password, a mailbox
  // name, a SEARCH string): big literals are for messages only (issue 11).
  uint64_t max_other_literal = 50 * 1024 * 1024;
  // A whole command: its lines and literals together.
  uint64_t max_command = 51 * 1024 * 1024;
  // Literals in one command (each synchronizing one costs a prefix re-parse).
  size_t max_literals = 64;
  // Nesting of parentheses (search keys, NOT/OR chains, section lists).
  size_t max_depth = 32;
  // Ranges in one sequence set (Thunderbird sends long UID lists: "1,3,5,...").
  size_t max_seq_ranges = 16384;
  // Search keys in one SEARCH, counting nested ones.
  size_t max_search_keys = 1000;
  // Items in one parenthesized list other than sequence sets and search keys
  // (FETCH attributes, flags, header field names, ID parameters, ...).
  size_t max_list_items = 1000;
  // Input the reader skips to resynchronize after an error (an over-long line,
  // an over-limit LITERAL+ literal) before it gives up and asks for a close.
  uint64_t max_discard = 1024 * 1024;
};

enum class Verb {
  // Any state (RFC 3501 section 6.1).
  kCapability,
  kNoop,
  kLogout,
  // Not authenticated (section 6.2).
  kStartTls,
  kAuthenticate,
  kLogin,
  // Authenticated (section 6.3).
  kSelect,
  kExamine,
  kCreate,
  kDelete,
  kRename,
  kSubscribe,
  kUnsubscribe,
  kList,
  kLsub,
  kStatus,
  kAppend,
  kIdle,          // RFC 2177
  kNamespace,     // RFC 2342
  kId,            // RFC 2971 (any state)
  kEnable,        // RFC 5161
  kGetQuota,      // RFC 9208 section 4.2
  kGetQuotaRoot,  // RFC 9208 section 4.3
  kSetQuota,      // RFC 9208 section 4.4
  kCompress,      // RFC 4978
  kGetMetadata,   // RFC 5464 section 4.2
  kSetMetadata,   // RFC 5464 section 4.3
  kResetKey,      // RFC 4467 section 6.1
  kGenUrlAuth,    // RFC 4467 section 6.2
  kUrlFetch,      // RFC 4467 section 6.3
  kNotify,        // RFC 5465 section 3
  // Selected (section 6.4).
  kCheck,
  kClose,
  kUnselect,      // RFC 3691
  kCancelUpdate,  // RFC 5267 section 4.3.5
  kExpunge,       // and UID EXPUNGE (RFC 4315 section 2.1)
  kSearch,
  kFetch,
  kStore,
  kCopy,
  kMove,    // RFC 6851
  kSort,    // RFC 5256 section 3 (and UID SORT)
  kThread,  // RFC 5256 section 3 (and UID THREAD)
};

// The command name as sent on the wire ("UID" is a prefix, not a verb).
const char* VerbName(Verb v);

struct Date {
  int year = 1970;  // 4 digits
  int month = 1;    // 1..12
  int day = 1;      // 1..31, checked against the month
  bool operator==(const Date&) const = default;
};

struct DateTime {
  Date date;
  int hour = 0, minute = 0, second = 0;
  int zone_minutes = 0;  // east of UTC: "+0130" -> 90
  bool operator==(const DateTime&) const = default;
};

// ---- Per-command arguments ----

// AUTHENTICATE mechanism [initial-response] (RFC 3501 section 6.2.2, RFC 4959).
struct AuthenticateArgs {
  std::string mechanism;                        // upper-cased
  std::optional<std::string> initial_response;  // raw base64, or "=" for an empty one
};

struct LoginArgs {
  std::string user;
  std::string password;
};

// QRESYNC parameters of SELECT/EXAMINE (RFC 7162 section 3.2.5).
struct QresyncParams {
  uint32_t uidvalidity = 0;
  uint64_t modseq = 0;
  std::optional<SeqSet> known_uids;
  std::optional<SeqSet> known_seqs;      // seq-match-data: sequence numbers...
  std::optional<SeqSet> known_seq_uids;  // ...and their UIDs
};

// SELECT / EXAMINE mailbox [(CONDSTORE | QRESYNC (...))] (RFC 4466 section 2.4, RFC 7162).
struct SelectArgs {
  std::string mailbox;
  bool condstore = false;
  std::optional<QresyncParams> qresync;
};

// DELETE, SUBSCRIBE, UNSUBSCRIBE, GETQUOTAROOT: one mailbox name.
struct MailboxArgs {
  std::string mailbox;
};

// CREATE mailbox [(USE (\Sent ...))] (RFC 6154 section 3).
struct CreateArgs {
  std::string mailbox;
  std::vector<std::string> special_use;  // as sent, e.g. "\Sent"
};

struct RenameArgs {
  std::string from;
  std::string to;
};

enum class StatusItem {
  kMessages,
  kRecent,
  kUidNext,
  kUidValidity,
  kUnseen,
  kHighestModSeq,   // RFC 7162 section 3.1.10
  kSize,            // RFC 8438
  kAppendLimit,     // RFC 7889 section 5
  kDeleted,         // RFC 9051 section 6.3.11
  kDeletedStorage,  // RFC 9208 section 4.2: KiB of the \Deleted messages
  kMailboxId,       // RFC 8474 section 4.2
};
const char* StatusItemName(StatusItem item);

// LIST (basic and RFC 5258 extended, RFC 5819 STATUS return) and LSUB.
struct ListArgs {
  // Selection options (RFC 5258 section 3.1, RFC 6154 section 4).
  bool select_subscribed = false;
  bool select_remote = false;
  bool select_recursive_match = false;
  bool select_special_use = false;
  std::string reference;
  std::vector<std::string> patterns;  // one for basic LIST/LSUB; may be empty-string patterns
  // Return options (RFC 5258 section 3.2, RFC 6154, RFC 5819).
  bool return_subscribed = false;
  bool return_children = false;
  bool return_special_use = false;
  std::optional<std::vector<StatusItem>> return_status;
  // Any extended syntax was used: selection options, several patterns or RETURN.
  bool extended = false;
};

struct StatusArgs {
  std::string mailbox;
  std::vector<StatusItem> items;
};

// One part of a CATENATE list (RFC 4469 section 5): cat-part = text-literal
// / url. A TEXT part holds its literal's bytes; a URL part the IMAP URL as
// sent (RFC 5092, parsed by imap/proto/url.h when the message is built).
struct CatPart {
  bool url = false;
  std::string data;
};

// One message of an APPEND: [flags] [date-time] literal, or [flags]
// [date-time] CATENATE (cat-part ...) (RFC 4469 section 5): then `message` is
// empty and `catenate` lists the parts.
struct AppendMessage {
  std::vector<std::string> flags;
  std::optional<DateTime> date_time;
  std::string message;
  std::vector<CatPart> catenate;
};

// APPEND mailbox [flags] [date-time] literal (RFC 3501 section 6.3.11), and
// more messages after it (MULTIAPPEND, RFC 3502 section 6).
struct AppendArgs {
  std::string mailbox;
  std::vector<std::string> flags;  // of the first message
  std::optional<DateTime> date_time;
  std::string message;
  std::vector<CatPart> catenate;    // of the first message (RFC 4469)
  std::vector<AppendMessage> more;  // the second message on
};

// ---- SEARCH (RFC 3501 section 6.4.4, RFC 7162 section 3.1.5, RFC 4731) ----

enum class SearchOp {
  kAll,
  kAnd,  // a parenthesized list, and the implicit AND of the top-level keys
  kOr,   // two children
  kNot,  // one child
  kSequenceSet,
  kUid,
  // Flags.
  kAnswered,
  kDeleted,
  kDraft,
  kFlagged,
  kNew,
  kOld,
  kRecent,
  kSeen,
  kUnanswered,
  kUndeleted,
  kUndraft,
  kUnflagged,
  kUnseen,
  kKeyword,    // text = keyword
  kUnkeyword,  // text = keyword
  // Strings (text = the string).
  kBcc,
  kBody,
  kCc,
  kFrom,
  kSubject,
  kText,
  kTo,
  kHeader,  // field = header name, text = value
  // Dates (date).
  kBefore,
  kOn,
  kSince,
  kSentBefore,
  kSentOn,
  kSentSince,
  // The save date (RFC 8514 section 4.2): SAVEDBEFORE / SAVEDON / SAVEDSINCE date.
  kSavedBefore,
  kSavedOn,
  kSavedSince,
  // SAVEDATESUPPORTED (RFC 8514 section 4.2): every message when the mailbox
  // keeps save dates (here always).
  kSaveDateSupported,
  // Sizes (number).
  kLarger,
  kSmaller,
  // MODSEQ [entry-name entry-type] value (number; RFC 7162 section 3.1.5).
  kModSeq,
  // EMAILID / THREADID objectid (RFC 8474 section 6), in `text`.
  kEmailId,
  kThreadId,
};

struct SearchKey {
  SearchOp op = SearchOp::kAll;
  std::string text;        // string/keyword argument
  std::string field;       // HEADER field name; MODSEQ entry name ("/flags/\\Seen")
  std::string entry_type;  // MODSEQ entry type: "priv", "shared" or "all" (lower-cased)
  uint64_t number = 0;     // LARGER/SMALLER size, MODSEQ value
  Date date;
  SeqSet set;                       // sequence set / UID set
  std::vector<SearchKey> children;  // AND: 1+, OR: 2, NOT: 1
};

// SORT criteria (RFC 5256 section 3; DISPLAYFROM/DISPLAYTO: RFC 5957).
enum class SortField {
  kArrival,
  kCc,
  kDate,
  kFrom,
  kSize,
  kSubject,
  kTo,
  kDisplayFrom,
  kDisplayTo
};
const char* SortFieldName(SortField f);
struct SortCriterion {
  SortField field = SortField::kArrival;
  bool reverse = false;
  bool operator==(const SortCriterion&) const = default;
};

// THREAD algorithms (RFC 5256 section 3).
enum class ThreadAlgorithm { kOrderedSubject, kReferences };

// SEARCH, and the search part of SORT and THREAD (whose CHARSET is required).
struct SearchArgs {
  std::optional<std::string> charset;  // as sent
  SearchKey key;                       // kAnd of the top-level keys
  // ESEARCH (RFC 4731 section 3.1): RETURN (...) present; an empty list means ALL.
  bool esearch = false;
  bool return_min = false;
  bool return_max = false;
  bool return_all = false;
  bool return_count = false;
  bool return_save = false;  // RFC 5182 SAVE: parsed, the server may reject it
  // UPDATE (RFC 5267 section 4.3): ADDTO/REMOVEFROM updates while selected;
  // CONTEXT (section 4.2): a hint that UPDATE or PARTIAL may follow.
  bool return_update = false;
  bool return_context = false;
  // PARTIAL (RFC 5267 section 4.4, RFC 9394 section 3.1): the results at
  // positions first..last (1-based, either order), or, both negative, counted
  // from the end (-1 is the last); as sent, for the response to echo.
  std::optional<std::pair<int64_t, int64_t>> partial;
  std::vector<SortCriterion> sort;                            // SORT: at least one
  ThreadAlgorithm thread = ThreadAlgorithm::kOrderedSubject;  // THREAD
};

// CANCELUPDATE 1*(SP quoted) (RFC 5267 section 4.3.5): the tags of the
// searches whose updates stop.
struct CancelUpdateArgs {
  std::vector<std::string> tags;
};

// ---- FETCH (RFC 3501 section 6.4.5, RFC 3516 BINARY, RFC 7162 MODSEQ) ----

enum class FetchAtt {
  kEnvelope,
  kFlags,
  kInternalDate,
  kRfc822,        // = BODY[]
  kRfc822Header,  // = BODY.PEEK[HEADER]
  kRfc822Size,
  kRfc822Text,  // = BODY[TEXT]
  kBody,        // BODY without a section: non-extensible BODYSTRUCTURE
  kBodyStructure,
  kUid,
  kModSeq,
  kBodySection,  // BODY[section]<partial> / BODY.PEEK[...]
  kBinary,       // BINARY[part]<partial> / BINARY.PEEK[...] (RFC 3516)
  kBinarySize,   // BINARY.SIZE[part]
  kPreview,      // PREVIEW [(LAZY)] (RFC 8970); `peek` holds LAZY
  kEmailId,      // EMAILID (RFC 8474 section 5.1)
  kThreadId,     // THREADID (RFC 8474 section 5.2)
  kSaveDate,     // SAVEDATE (RFC 8514 section 4.1)
};

// section-spec (RFC 3501 section 9).
struct Section {
  enum class Text { kNone, kHeader, kHeaderFields, kHeaderFieldsNot, kText, kMime };
  std::vector<uint32_t> part;  // "1.2.3" -> {1, 2, 3}; empty for the whole message
  Text text = Text::kNone;
  std::vector<std::string> fields;  // HEADER.FIELDS[.NOT] names as sent
  // What the response echoes between the brackets: keywords upper-cased, the
  // field names as sent (quoted when they are not atoms), single spaces.
  std::string canonical;
};

struct Partial {
  uint64_t offset = 0;
  uint64_t count = 0;  // nz-number
};

struct FetchItem {
  FetchAtt att = FetchAtt::kFlags;
  bool peek = false;  // BODY.PEEK / BINARY.PEEK: do not set \Seen
  Section section;    // kBodySection, kBinary, kBinarySize
  std::optional<Partial> partial;
};

struct FetchArgs {
  SeqSet set;
  std::vector<FetchItem> items;           // macros ALL/FAST/FULL are expanded
  std::optional<uint64_t> changed_since;  // CHANGEDSINCE (RFC 7162 section 3.1.4.1)
  bool vanished = false;                  // VANISHED (RFC 7162 section 3.2.6), UID FETCH only
  // PARTIAL (RFC 9394 section 3.2): only the messages at these positions
  // of the set (as SearchArgs::partial), in UID order.
  std::optional<std::pair<int64_t, int64_t>> partial;
};

// STORE (RFC 3501 section 6.4.6, RFC 7162 section 3.1.3).
enum class StoreMode { kReplace, kAdd, kRemove };
struct StoreArgs {
  SeqSet set;
  StoreMode mode = StoreMode::kReplace;
  bool silent = false;
  std::vector<std::string> flags;
  std::optional<uint64_t> unchanged_since;
};

// COPY / MOVE set mailbox.
struct CopyArgs {
  SeqSet set;
  std::string mailbox;
};

// UID EXPUNGE set (RFC 4315 section 2.1). Plain EXPUNGE has no arguments.
struct ExpungeArgs {
  SeqSet set;
};

// ID (params) or ID NIL (RFC 2971 section 3.1).
struct IdArgs {
  std::optional<std::vector<std::pair<std::string, std::optional<std::string>>>> params;
};

struct EnableArgs {
  std::vector<std::string> capabilities;  // upper-cased
};

// COMPRESS mechanism (RFC 4978 section 5).
struct CompressArgs {
  std::string mechanism;  // upper-cased
};

// GETQUOTA quota-root (RFC 9208 section 4.2).
struct QuotaRootArgs {
  std::string root;
};

// SETQUOTA quota-root (resource limit ...) (RFC 9208 section 4.4).
struct SetQuotaArgs {
  std::string root;
  std::vector<std::pair<std::string, uint64_t>> limits;  // resource names upper-cased
};

// METADATA (RFC 5464). Entry names are checked by the parser (section 3.2:
// "/private/..." or "/shared/...", no "*", "%", "//" or trailing "/") and
// lower-cased (they are case-insensitive).
// Entry names past this are refused (BAD).
inline constexpr size_t kMaxMetadataEntryName = 1024;
// GETMETADATA [(MAXSIZE n DEPTH d)] mailbox entries; mailbox "" is the server.
struct GetMetadataArgs {
  std::optional<uint64_t> max_size;  // MAXSIZE (section 4.2.1)
  int depth = 0;                     // DEPTH 0 / 1 / infinity = -1 (section 4.2.2)
  std::string mailbox;
  std::vector<std::string> entries;
};
// SETMETADATA mailbox (entry value ...); a NIL value removes the entry.
struct SetMetadataArgs {
  std::string mailbox;
  std::vector<std::pair<std::string, std::optional<std::string>>> entries;
};

// RESETKEY [mailbox *(SP mechanism)] (RFC 4467 section 9).
struct ResetKeyArgs {
  std::optional<std::string> mailbox;
  std::vector<std::string> mechanisms;  // upper-cased
};
// GENURLAUTH 1*(SP url-rump SP mechanism) (RFC 4467 section 9).
struct GenUrlAuthArgs {
  std::vector<std::pair<std::string, std::string>> urls;  // (rump URL, mechanism upper-cased)
};
// URLFETCH 1*(SP url-full) (RFC 4467 section 9).
struct UrlFetchArgs {
  std::vector<std::string> urls;
};

// NOTIFY (RFC 5465 section 8).
enum class NotifyEvent {
  kMessageNew,
  kMessageExpunge,
  kFlagChange,
  kAnnotationChange,
  kMailboxName,
  kSubscriptionChange,
  kMailboxMetadataChange,
  kServerMetadataChange,
};
// The event's name as RFC 5465 section 8 spells it.
const char* NotifyEventName(NotifyEvent e);
enum class NotifyFilter {
  kSelected,
  kSelectedDelayed,
  kInboxes,
  kPersonal,
  kSubscribed,
  kSubtree,
  kMailboxes,
};
// event-group = "(" filter-mailboxes SP events ")"
struct NotifyGroup {
  NotifyFilter filter = NotifyFilter::kPersonal;
  std::vector<std::string> mailboxes;  // SUBTREE / MAILBOXES, as sent (INBOX canonical)
  std::vector<NotifyEvent> events;     // empty for "NONE"
  // event-ext: atoms this server does not know (answered NO [BADEVENT]).
  std::vector<std::string> unknown;
  // MessageNew's fetch-att list (section 5.1), only with SELECTED filters.
  std::vector<FetchItem> fetch;
  bool Has(NotifyEvent e) const {
    for (NotifyEvent x : events) {
      if (x == e) return true;
    }
    return false;
  }
};
// NOTIFY NONE / NOTIFY SET [STATUS] event-groups. The parser checks the
// section 5 and 6 rules that are answered BAD: MessageNew and
// MessageExpunge together, FlagChange/AnnotationChange only with them,
// SELECTED/SELECTED-DELAYED at most once and with message events only,
// fetch-att lists only for the selected mailbox.
struct NotifyArgs {
  bool none = false;
  bool status = false;
  std::vector<NotifyGroup> groups;
};

using Args =
    std::variant<std::monostate, AuthenticateArgs, LoginArgs, SelectArgs, MailboxArgs, CreateArgs,
                 RenameArgs, ListArgs, StatusArgs, AppendArgs, SearchArgs, FetchArgs, StoreArgs,
                 CopyArgs, ExpungeArgs, IdArgs, EnableArgs, QuotaRootArgs, SetQuotaArgs,
                 CompressArgs, GetMetadataArgs, SetMetadataArgs, ResetKeyArgs, GenUrlAuthArgs,
                 UrlFetchArgs, CancelUpdateArgs, NotifyArgs>;

struct Command {
  std::string tag;
  bool uid = false;  // "UID" prefix: FETCH, SEARCH, STORE, COPY, MOVE, EXPUNGE
  Verb verb = Verb::kNoop;
  Args args;  // the alternative that belongs to `verb` (monostate for no arguments)
  // A quoted string held 8-bit bytes: legal only after ENABLE UTF8=ACCEPT
  // (RFC 6855 section 3, RFC 9051 section 4.3); the session rejects it otherwise.
  bool has_8bit = false;

  // The arguments as their type (std::bad_variant_access if `verb` has others).
  template <typename T>
  const T& As() const& {
    return std::get<T>(args);
  }
  template <typename T>
  T& As() & {
    return std::get<T>(args);
  }
  // On a temporary Command: by value, so `for (x : Parse(...).As<T>().items)` cannot dangle.
  template <typename T>
  T As() && {
    return std::get<T>(std::move(args));
  }
};

// Parses one framed command (see the file comment). Errors are kInvalid with a
// message fit for a tagged BAD, or kTooLarge when a named limit was exceeded
// (also answered BAD). Mailbox arguments equal to "INBOX" in any case are
// returned as "INBOX"; other names are returned as sent (modified UTF-7).
Result<Command> ParseCommand(std::string_view text, const Limits& limits = {});

// Checks a command prefix that ends just after a literal announcement
// "{n}\r\n" (the literal not yet sent): Ok if it can still become a valid
// command, the error ParseCommand would give otherwise. CommandReader uses it
// to answer BAD instead of "+" to a doomed synchronizing literal.
Status CheckCommandPrefix(std::string_view prefix, const Limits& limits = {});

// The tag at the start of `text`, if it is a valid tag (RFC 3501 section 9:
// 1*<any ASTRING-CHAR except "+">) followed by SP or the end.
std::optional<std::string> ParseTag(std::string_view text);

// Whether a command uses message sequence numbers, in its arguments or its
// results (RFC 3501 sections 5.5 and 7.4.1): FETCH, STORE, SEARCH, SORT,
// THREAD, COPY and MOVE without UID, and a UID SEARCH/SORT/THREAD with a
// sequence-set key. While such a
// command has been received and is not answered, the session holds back
// EXPUNGE and VANISHED so that its numbers keep their meaning (issue 20).
bool UsesSequenceNumbers(const Command& c);

// Whether a search key has a MODSEQ criterion anywhere (RFC 7162 section
// 3.1.5): the SEARCH, SORT and ESEARCH/ESORT results then carry the highest
// mod-sequence of the messages returned, and CONDSTORE is enabled.
bool HasModSeqKey(const SearchKey& key);

// Canonical wire form of a command (without CRLF): keywords upper-cased,
// strings as atoms when possible, else quoted, else literals ("{n}\r\n...").
// ParseCommand(FormatCommand(c)) yields `c` again (modulo has_8bit). Used by
// tests, test clients and the fuzzer.
std::string FormatCommand(const Command& c);

}  // namespace hato::imap
