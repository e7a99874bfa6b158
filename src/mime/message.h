// MIME message structure: the part tree of a message, with byte offsets into
// the raw message, parsed once at delivery, stored (Serialize/Deserialize) and
// used by IMAP FETCH (BODYSTRUCTURE, ENVELOPE, BODY[section], BINARY) and
// SEARCH without re-parsing.
//
// STANDARDS: RFC 5322 (message format; section 3.4 addresses, 4 obsolete
// syntax), RFC 2045 (MIME headers; 5.2 defaults, 6 transfer encodings),
// RFC 2046 (5.1 multipart, 5.1.5 digest, 5.2 message/rfc822), RFC 2047
// (encoded-words), RFC 2231 (parameter continuations and charsets), RFC 2183
// (Content-Disposition), RFC 3501 section 6.4.5 / RFC 9051 section 6.4.5
// (section specs), RFC 3501 section 7.4.2 (ENVELOPE), RFC 6532 (message/global).
//
// SECURITY: the input is untrusted. Parse never fails and never recurses more
// than kMaxDepth levels; past a named limit the rest is kept as opaque content.
// Deserialize reads stored bytes and returns kCorrupt on anything malformed.
// Everything here is pure (no I/O) and thread-safe (no shared state; iconv
// descriptors are per call). Fuzzed by fuzz/fuzz_mime.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace hato::mime {

// ---- Named limits ----------------------------------------------------------
// Multipart and message/rfc822 nesting: a composite part at this depth (the
// root is depth 0) is not expanded and becomes an opaque leaf.
inline constexpr int kMaxDepth = 32;
// Total parts in one tree (root included); further parts stay in the epilogue
// of their multipart, further message/rfc822 parts stay opaque.
inline constexpr size_t kMaxParts = 10000;
// Header bytes of one part that are interpreted; fields past it are still
// part of the header (offsets are exact) but are ignored.
inline constexpr size_t kMaxHeaderBytes = 256 * 1024;
// RFC 2046 section 5.1.1 allows 70; longer boundaries are tolerated up to this.
inline constexpr size_t kMaxBoundaryLength = 998;
// RFC 2231 continuations per parameter (name*0 .. name*N).
inline constexpr size_t kMaxParamSections = 1000;
// RFC 2047 section 2 limits an encoded-word to 75 characters; longer ones are
// decoded up to this length, beyond it they are left as text.
inline constexpr size_t kMaxEncodedWordLength = 1024;

// One parameter of Content-Type or Content-Disposition. Names are lower-cased;
// values are unquoted and RFC 2231-decoded (UTF-8 when the charset is known).
struct Param {
  std::string name;
  std::string value;
  bool operator==(const Param&) const = default;
};

// One member of an IMAP address list (RFC 3501 section 7.4.2): a mailbox, or
// a group start (host NIL, mailbox = group name) or group end (all NIL).
struct Address {
  std::optional<std::string> name;     // display name, raw (encoded-words kept)
  std::optional<std::string> adl;      // obsolete source route "@a,@b"
  std::optional<std::string> mailbox;  // local part as written, or group name
  std::optional<std::string> host;     // domain as written; "" when missing
  bool operator==(const Address&) const = default;
};

// The ENVELOPE of a message. Strings are raw header values, unfolded and
// trimmed (encoded-words are not decoded: IMAP clients decode them).
// Per RFC 3501 section 7.4.2, sender and reply_to equal from when absent or empty.
struct Envelope {
  std::optional<std::string> date;
  std::optional<std::string> subject;
  std::vector<Address> from;
  std::vector<Address> sender;
  std::vector<Address> reply_to;
  std::vector<Address> to;
  std::vector<Address> cc;
  std::vector<Address> bcc;
  std::optional<std::string> in_reply_to;
  std::optional<std::string> message_id;
  bool operator==(const Envelope&) const = default;
};

// A node of the part tree. Offsets index the raw message:
//   [header_begin, header_end)  the MIME header, including the blank line
//   [header_end, body_end)      the body (header_end is the body's start)
// A multipart part's children lie in its body, in order; a message/rfc822 (or
// message/global) part has exactly one child, the encapsulated message, whose
// range is the part's body. "Message nodes" (the root and those encapsulated
// children) carry an envelope.
struct Part {
  size_t header_begin = 0;
  size_t header_end = 0;
  size_t body_end = 0;

  std::string type = "text";               // lower-cased (RFC 2045 section 5.2 default)
  std::string subtype = "plain";           // lower-cased
  std::vector<Param> params;               // Content-Type parameters, in order
  std::optional<std::string> id;           // Content-ID, raw
  std::optional<std::string> description;  // Content-Description, raw
  std::string encoding = "7bit";           // Content-Transfer-Encoding, lower-cased
  std::optional<std::string> disposition;  // RFC 2183 type, lower-cased
  std::vector<Param> disposition_params;
  std::vector<std::string> language;    // Content-Language tags (RFC 3282)
  std::optional<std::string> location;  // Content-Location (RFC 2557)
  std::optional<std::string> md5;       // Content-MD5 (RFC 1864)
  uint64_t lines = 0;  // text lines of the body, for text/* and message/rfc822|global
  uint64_t size = 0;   // body octets: body_end - header_end

  std::vector<Part> children;
  std::optional<Envelope> envelope;  // set on message nodes only

  bool IsMultipart() const { return type == "multipart"; }
  // message/rfc822 or message/global: an encapsulated message (RFC 2046 5.2.1, RFC 6532 3.5).
  bool IsMessage() const {
    return type == "message" && (subtype == "rfc822" || subtype == "global");
  }
  // The value of a Content-Type parameter, or nullptr.
  const std::string* FindParam(std::string_view name) const;
  // The charset parameter, or "us-ascii" (RFC 2045 section 5.2).
  std::string Charset() const;

  bool operator==(const Part&) const = default;
};

// Parses a message. Never fails on content: malformed input yields the most
// reasonable tree (like common servers: missing final boundary, bare LF,
// missing blank line, ...). It currently always succeeds; the Result leaves
// room for a future size limit without changing callers.
Result<Part> Parse(std::string_view raw);

// Parses the header fields of a message header block into an Envelope
// (RFC 5322 section 3.6, RFC 3501 section 7.4.2).
Envelope ParseEnvelope(std::string_view header);

// Parses an RFC 5322 address-list (section 3.4, obsolete forms of section 4.4
// tolerated, comments dropped) into IMAP address members (groups as start and
// end markers).
std::vector<Address> ParseAddressList(std::string_view value);

// ParseAddressList's mailbox and host for a value that is one plain address:
// `local@domain` or `[display name] <local@domain>`, of atext, dots and
// spaces only (RFC 5322 section 3.2.3; the usual From and To), found without
// tokenizing; nullopt for every other form (quoted strings, comments,
// groups, routes, lists, domain literals, non-ASCII), which ParseAddressList
// reads. The views point into `value`. (Sieve's address tests read the
// first: src/sieve/interpret.cc.)
std::optional<std::pair<std::string_view, std::string_view>> PlainAddress(std::string_view value);

// ---- Storage format ----------------------------------------------------------
// Serialize/Deserialize: a compact binary encoding of a Part tree. See
// message.cc for the byte layout. Deserialize returns kCorrupt on any
// malformed input (wrong version, truncation, trailing bytes, offsets out of
// order, children outside their parent, limits exceeded).
inline constexpr uint8_t kFormatVersion = 1;
std::string Serialize(const Part& root);
Result<Part> Deserialize(std::string_view bytes);

// ---- Decoding (SEARCH, BINARY) -----------------------------------------------
// Undoes a Content-Transfer-Encoding (RFC 2045 section 6): base64 skips
// characters outside the alphabet; quoted-printable handles soft line breaks
// and keeps malformed "=" sequences literally. Other encodings: unchanged.
std::string DecodeTransfer(std::string_view body, std::string_view encoding);

// Converts bytes in `charset` to UTF-8 with glibc iconv. Invalid sequences
// become U+FFFD. Unknown charsets (and us-ascii, which is often mislabelled
// 8-bit text): bytes kept, invalid UTF-8 replaced by U+FFFD.
std::string ToUtf8(std::string_view bytes, std::string_view charset);

// True when ToUtf8 knows `charset` (UTF-8, US-ASCII, or anything iconv opens).
bool KnownCharset(std::string_view charset);

// Decodes RFC 2047 encoded-words (B and Q) in an unfolded or folded header
// value; whitespace between adjacent encoded-words is dropped (section 6.2).
// Returns UTF-8.
std::string DecodeHeader(std::string_view value);

// The decoded text of a part's body: transfer decoding, then ToUtf8 with the
// part's charset.
std::string DecodedText(std::string_view raw, const Part& part);

// The text SEARCH BODY/TEXT looks at, for the full-text index: the decoded
// top-level header, and the decoded text parts (with the headers of
// encapsulated messages). Each is cut at kMaxSearchTextBytes (on a character
// boundary). UTF-8.
inline constexpr size_t kMaxSearchTextBytes = 4u << 20;
struct SearchText {
  std::string header;
  std::string body;
};
SearchText ExtractSearchText(std::string_view raw, const Part& root);

// ---- Sections (RFC 3501 section 6.4.5) ---------------------------------------
enum class SectionKind { kAll, kHeader, kHeaderFields, kHeaderFieldsNot, kText, kMime };

struct SectionSpec {
  std::vector<uint32_t> path;  // part numbers, 1-based
  SectionKind kind = SectionKind::kAll;
  std::vector<std::string> fields;  // for kHeaderFields / kHeaderFieldsNot
};

// Parses "", "HEADER", "1.2.MIME", "HEADER.FIELDS (From To)", ... (case-insensitive).
// kInvalid on syntax errors (MIME without a part number, FIELDS without names).
Result<SectionSpec> ParseSection(std::string_view spec);

// The bytes of a section. For kHeaderFields(Not) this is the whole header the
// fields are taken from (apply HeaderFields to it). kNotFound when a part does
// not exist; kInvalid for HEADER/TEXT on a part that is not a message; kCorrupt
// when the tree's offsets do not fit `raw`.
Result<std::string_view> SectionBytes(std::string_view raw, const Part& root,
                                      const SectionSpec& spec);

// SectionBytes with HEADER.FIELDS applied: the content of BODY[spec].
Result<std::string> Section(std::string_view raw, const Part& root, std::string_view spec);

// The header fields (with their folding, as written) whose names are (or,
// with `not_`, are not) in `names` (case-insensitive), followed by the blank
// line CRLF, as BODY[HEADER.FIELDS (...)] returns them.
std::string HeaderFields(std::string_view header, const std::vector<std::string>& names, bool not_);

}  // namespace hato::mime
