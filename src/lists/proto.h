// The pure parts of mailing lists (issue 14): bytes in, values out, no I/O,
// fuzzed (fuzz/fuzz_list_dsn.cc, fuzz/fuzz_list_csv.cc).
//
//  - list addresses: LIST@D posts, LIST+join@, LIST+leave@, LIST+help@,
//    LIST+owner@, LIST+confirm-TOKEN@, LIST+moderate-TOKEN@ and the VERP
//    bounce addresses LIST-bounces+LOCAL=DOMAIN@D;
//  - DSN parsing (RFC 3464 message/delivery-status inside multipart/report,
//    RFC 6522) for bounces coming back to a VERP address;
//  - members CSV (RFC 4180: quoted fields, doubled quotes, CRLF or LF);
//  - the headers of a post as members receive it: List-Id (RFC 2919),
//    List-Unsubscribe/-Post/-Help/-Subscribe/-Archive (RFC 2369, RFC 8058),
//    Precedence, X-Loop, and the DMARC From rewrite (RFC 7489 section 6.6);
//  - the approve/reject word of a moderator's reply.
//
// SECURITY: every input is untrusted mail or a file from an operator; parsers
// never fail on content, only return what they could read, within the named
// limits below.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hato::lists {

// ---- Named limits ----
inline constexpr size_t kMaxCsvLineBytes = 4096;   // a longer line is an error line
inline constexpr size_t kMaxCsvRows = 1000000;     // rows read from one file
inline constexpr size_t kMaxDsnRecipients = 1000;  // recipient blocks read from one DSN
inline constexpr size_t kMaxListNameBytes = 64;    // the local part of a list address
inline constexpr size_t kTokenHexChars = 32;       // 128-bit confirmation tokens

// ---- Addresses ----

enum class AddressKind { kPost, kJoin, kLeave, kHelp, kOwner, kConfirm, kModerate, kBounces };

struct ListAddress {
  std::string list_local;  // the list's local part
  AddressKind kind = AddressKind::kPost;
  std::string arg;  // kConfirm/kModerate: the token; kBounces: the member ("" = none)
};

// Splits a (lower-cased) local part into the list it names and what for.
// Every local part is a kPost of itself when nothing else matches; the
// caller checks the list exists.
ListAddress ParseListLocal(std::string_view local);

// The VERP bounce address of a member (LIST-bounces+LOCAL=DOMAIN@D): bytes
// of the member's local part other than letters, digits, '.', '-' and '_'
// are written %XX so that the last '=' always separates the domain.
std::string VerpAddress(std::string_view bounce_address, std::string_view member);
// The member named by the part after "bounces+", or "" when malformed.
std::string VerpMember(std::string_view encoded);

// The local part and domain of "local@domain" (split at the last '@').
std::pair<std::string, std::string> SplitAddress(std::string_view address);

// The first mailbox of an address-list header value ("Name <a@b>", "a@b"),
// lower-cased; "" when there is none.
std::string FirstAddress(std::string_view header_value);

// ---- DSN (RFC 3464) ----

struct DsnRecipient {
  std::string final_recipient;     // address only ("rfc822;" removed), lower-cased
  std::string original_recipient;  // likewise, or ""
  std::string action;              // lower-cased: failed, delayed, delivered, relayed, expanded
  std::string status;              // "5.1.1"
  std::string diagnostic;          // Diagnostic-Code, unfolded
};

struct DsnReport {
  bool is_dsn = false;  // a multipart/report with a message/delivery-status part
  std::string envid;    // Original-Envelope-Id
  std::vector<DsnRecipient> recipients;
};

DsnReport ParseDsn(std::string_view message);

// ---- CSV (members import) ----

struct CsvMember {
  size_t line = 0;  // 1-based line number in the file
  std::string address;
  std::string name;
  std::string roles;  // "", "member", "owner", "moderator", joined by '|' or ' '
};
struct CsvError {
  size_t line = 0;
  std::string message;
};
struct CsvResult {
  std::vector<CsvMember> members;  // valid lines, first occurrence of each address
  std::vector<CsvError> errors;    // invalid or duplicate lines
};

// Reads "address[,name[,roles]]" rows. A first row whose first field is
// "address" (any case) is a header. Empty lines and lines starting with '#'
// are skipped. Addresses are checked (local@domain, no spaces) and
// lower-cased; a repeated address is an error line.
CsvResult ParseMembersCsv(std::string_view text);
// One CSV field, quoted when needed (RFC 4180).
std::string CsvField(std::string_view value);

// ---- Posts ----

struct PostHeaders {
  std::string list_address;  // list@domain
  std::string list_name;     // display name ("" = the local part)
  bool announce = false;     // no List-Post (RFC 2369: NO)
  // RFC 8058 one-click: each member's copy gets its own List-Unsubscribe
  // (MemberUnsubscribeFields, added at delivery), so the post carries none.
  bool per_member_unsubscribe = false;
  std::string archive_url;    // "" = none
  bool rewrite_from = false;  // DMARC mitigation
};

// The message as members receive it: our own List-* fields, Precedence and
// X-Loop on top, inbound copies of those fields, Return-Path and the
// poster's Bcc removed; with `rewrite_from`, From becomes the list (the
// poster's name kept, "via LIST") and the poster moves to Reply-To (unless
// one is given) and X-Original-From.
std::string BuildPost(std::string_view message, const PostHeaders& h);

// Whether a message came from this list already (its List-Id or X-Loop): a loop.
bool IsOwnPost(std::string_view message, std::string_view list_address);

// Whether a message says it was sent automatically (RFC 3834 Auto-Submitted
// other than "no", Precedence bulk/junk/list, or a null reverse-path given by
// the caller): it gets no automatic answer.
bool IsAutomatic(std::string_view message);

// A moderator's decision in a reply: the first word of the first body line
// that is not quoted ('>') nor empty: approve/accept/yes/ok/承認 or
// reject/discard/no/却下; also looked for in the Subject. nullopt = unclear.
std::optional<bool> ModerationDecision(std::string_view message);

// The Subject of a message, unfolded ("" when none).
std::string SubjectOf(std::string_view message);

// ---- The language of the list's own mails (issue 13) ----

// Confirmations, welcomes, leave notices, help and moderation mails are
// written in one language when the recipient's is known, else in both
// (English, then Japanese).
enum class MailLanguage { kBoth, kEnglish, kJapanese };

// From a list of language tags: an Accept-Language value (RFC 3282 section 3,
// the syntax of RFC 9110 section 12.5.4), a Content-Language value (RFC 3282
// section 2) or an account's language ("en", "ja"). The first tag of the
// "ja" or "en" family wins (ranges with q=0 are refusals and are skipped);
// kBoth when neither is named.
MailLanguage LanguageFromTags(std::string_view tags);

// The language of the mail answering `request` (the join/leave/confirm/help
// message, "" when there is none) for an address whose account chose
// `account_language` ("" = none, or no local account): the account's
// choice, else the request's Accept-Language, else its Content-Language,
// else kBoth.
MailLanguage ChooseMailLanguage(std::string_view account_language, std::string_view request);

// ---- One-click unsubscribe (RFC 8058) ----

inline constexpr size_t kUnsubscribeMacHexChars = 32;      // 128 bits of HMAC-SHA-256
inline constexpr size_t kMaxUnsubscribeTokenBytes = 1024;  // a longer token is refused unread

// The token of a member's unsubscribe URL: base64url (RFC 4648 section 5, no
// padding) of "LIST\nMEMBER", a '.', and the first kUnsubscribeMacHexChars
// hex digits of HMAC-SHA-256(key, "hato-unsubscribe\nLIST\nMEMBER"). It
// needs no stored state per member and cannot be made without the key.
std::string UnsubscribeToken(std::string_view key, std::string_view list, std::string_view member);
struct UnsubscribeTarget {
  std::string list;    // list@domain
  std::string member;  // member@domain
};
// The list and member a token names; nullopt when it is malformed or its MAC
// is not the key's (compared in constant time).
std::optional<UnsubscribeTarget> CheckUnsubscribeToken(std::string_view key,
                                                       std::string_view token);
// base + "?token=" (or "&token=" when base has a query) + token.
std::string UnsubscribeUrl(std::string_view base, std::string_view token);
// The fields a member's copy starts with: List-Unsubscribe with the HTTPS URL
// first and the mailto second (RFC 8058 section 3.1; RFC 2369 section 3.2),
// and List-Unsubscribe-Post. With no URL: the mailto only, no -Post.
std::string MemberUnsubscribeFields(std::string_view list_address, std::string_view url);
// Whether a POST body is the one-click request of RFC 8058 section 3.2:
// "List-Unsubscribe=One-Click" as application/x-www-form-urlencoded, or a
// multipart/form-data part named List-Unsubscribe with the value One-Click.
bool IsOneClickPost(std::string_view content_type, std::string_view body);

enum class UnsubscribePage { kConfirm, kDone, kInvalid };
// The pages of the unsubscribe link (English or Japanese), self-contained
// HTML without script. kConfirm has a form that POSTs the one-click body to
// `action` (the same URL): a GET never unsubscribes (link checkers follow links).
std::string RenderUnsubscribePage(UnsubscribePage page, bool japanese, std::string_view list,
                                  std::string_view member, std::string_view action);

}  // namespace hato::lists
