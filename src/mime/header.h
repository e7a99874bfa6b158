// Internal to src/mime: header block scanning (RFC 5322 section 2.2, 2.2.3
// folding) and MIME parameter parsing (RFC 2045 section 5.1, RFC 2231).
// Pure functions shared by the parser, the envelope and HEADER.FIELDS.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "mime/message.h"

namespace hato::mime::internal {

// One header field: name as written, and the raw value after the colon up to
// (excluding) the final line break, folding line breaks included.
struct Field {
  std::string_view name;
  std::string_view value;
  size_t begin = 0;  // offset of the field's first byte (relative to the scanned text)
  size_t end = 0;    // offset just past the field's final line break
};

struct HeaderScan {
  std::vector<Field> fields;  // at most kMaxHeaderBytes worth of fields
  size_t end = 0;             // offset just past the blank line, or where the body starts
};

// Scans the header block at the start of `text`. The header ends after the
// first empty line (CRLF or bare LF), at the first line that is neither a
// field nor a continuation (the body starts there: no blank line), or at the
// end of `text` (no body).
// Fields past `max_bytes` of header are not recorded (kMaxHeaderBytes for parsing).
HeaderScan ScanHeader(std::string_view text, size_t max_bytes = kMaxHeaderBytes);

// The first field named `name` (case-insensitive), or nullptr.
const Field* FindField(const std::vector<Field>& fields, std::string_view name);

// Unfolds (RFC 5322 section 2.2.3: removes CR/LF), then trims SP/HTAB at both ends.
std::string Unfold(std::string_view value);

// Removes RFC 5322 comments "(...)" (nested, quoted-pairs) outside quoted strings.
std::string StripComments(std::string_view value);

// Parses "token/token *(; param)" (or "token *(; param)" when `with_subtype`
// is false) into lower-cased type/subtype and decoded parameters. Returns
// false when the type (or subtype) is not a token.
bool ParseContentHeader(std::string_view value, bool with_subtype, std::string* type,
                        std::string* subtype, std::vector<Param>* params);

// Replaces invalid UTF-8 by U+FFFD (one per maximal invalid subsequence start byte).
std::string SanitizeUtf8(std::string_view s);

}  // namespace hato::mime::internal
