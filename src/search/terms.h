// The terms of the full-text index (IMAP SEARCH BODY/TEXT, later JMAP text
// filters): case-folded code-point trigrams. Pure functions, no I/O.
//
// IMAP SEARCH asks for a case-insensitive *substring* (RFC 3501 section
// 6.4.4, RFC 9051 section 6.4.4), which word terms cannot answer ("oob" in
// "foobar"), and Japanese text has no spaces between words. Trigrams of
// code points answer both: every substring of three or more characters
// contains only trigrams of the text, so the documents holding all of a
// needle's trigrams are a superset of the matches, which the caller then
// checks exactly (MatchesFolded). Needles shorter than kMinChars cannot be
// narrowed this way and are checked against every candidate.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hato::search {

// Code points per term.
inline constexpr size_t kGramChars = 3;
// Needles with fewer characters than this are not narrowed by the index.
inline constexpr size_t kMinChars = kGramChars;
// Distinct terms taken from one field of one message at most (bounds the
// index size of a pathological message; the exact check still sees all text).
inline constexpr size_t kMaxTermsPerField = 20000;

// Case folding for matching: ASCII and the Latin-1, Greek, Cyrillic and
// full-width Latin capitals to small letters. Invalid UTF-8 bytes are kept
// as they are, so folding never fails.
std::string Fold(std::string_view utf8);

// The distinct trigrams of already folded text, each prefixed with `prefix`
// (one field per prefix: "H" header, "B" body), at most kMaxTermsPerField.
// Whitespace runs count as one space, so that a line break matches a space
// the way it does in the exact check.
std::vector<std::string> Trigrams(std::string_view folded, std::string_view prefix);

// Number of code points of (valid or not) UTF-8 text.
size_t CountChars(std::string_view utf8);

// True when folded `needle` occurs in folded `text`, whitespace runs
// compared as one space (the rule Trigrams uses).
bool MatchesFolded(std::string_view folded_text, std::string_view folded_needle);

// Whitespace runs (SP, HTAB, CR, LF) as one space.
std::string SquashSpace(std::string_view s);

}  // namespace hato::search
