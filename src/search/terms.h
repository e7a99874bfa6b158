// The terms of the full-text index (IMAP SEARCH BODY/TEXT, JMAP text
// filters). Pure functions, no I/O.
//
// Format 4 (the index's, text_index.cc): the tokens of the folded text
// (Tokens), each at its own position: words (maximal runs of letters,
// digits and non-ASCII characters outside the CJK scripts), single CJK
// characters, single punctuation characters, and whitespace runs where they
// are not the plain gap between two words. A needle inside a word matches
// the vocabulary's words that contain it; one across tokens is a phrase of
// its tokens, its first word piece any word ending with it and its last any
// word starting with it. Both are exact (text_index.cc).
//
// Format 3 (below, kept for bench/index_cost.cc's comparison): case-folded
// code-point trigrams with positions.
//
// IMAP SEARCH asks for a case-insensitive *substring* (RFC 3501 section
// 6.4.4, RFC 9051 section 6.4.4), which word terms cannot answer ("oob" in
// "foobar"), and Japanese text has no spaces between words. Trigrams of
// code points answer both: every substring of three or more characters
// contains only trigrams of the text, so the documents holding all of a
// needle's trigrams are a superset of the matches, which the caller then
// checks exactly (MatchesFolded) against the stored message.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hato::search {

// Format 3. Code points per term.
inline constexpr size_t kGramChars = 3;
// Distinct terms taken from one field of one message at most (bounds the
// index size of a pathological message). A field with more gets
// OverflowTerm too, and every search of that field takes it as a candidate.
inline constexpr size_t kMaxTermsPerField = 20000;

// What a format-4 token is (Tokens).
enum class TokenKind : uint8_t {
  kWord,   // a maximal run of ASCII letters and digits, non-ASCII characters
           // outside the CJK scripts and the general punctuation block, and
           // bytes that are not valid UTF-8
  kCjk,    // one character of a script written without spaces (CJK, kana, Hangul)
  kPunct,  // one ASCII character other than a letter, digit or whitespace, or
           // one of the general punctuation block (U+2000..U+206F)
  kSpace,  // a run of whitespace (SP, HTAB, CR, LF)
};
struct Token {
  TokenKind kind;
  std::string_view text;
};

// The tokens of folded text, in order; they cover it whole.
std::vector<Token> Tokens(std::string_view folded);

// A word longer than this is not a term: the field gets OverflowTerm (every
// search of it takes it as a candidate) and the word a placeholder position.
inline constexpr size_t kMaxWordTermBytes = 200;
// Tokens given a position in one field at most (bounds the index of a
// pathological message); a field with more gets OverflowTerm.
inline constexpr size_t kMaxTokensPerField = 200000;

// True when `s` holds a byte that is not part of valid UTF-8.
bool HasInvalidUtf8(std::string_view s);

// Case folding for matching: ASCII and the Latin-1, Greek, Cyrillic and
// full-width Latin capitals to small letters. Invalid UTF-8 bytes are kept
// as they are, so folding never fails.
std::string Fold(std::string_view utf8);

// The distinct trigrams of already folded text, each prefixed with `prefix`
// (one field per prefix: "H" header, "B" body), at most kMaxTermsPerField,
// in no particular order. Only trigrams without whitespace are taken: those that
// span a word gap are more than half of the distinct trigrams of prose and
// narrow little, and leaving them out of both the text's and the needle's
// terms keeps the needle's terms a subset of every matching text's. A needle
// with no trigram (fewer than three characters between spaces) cannot be
// narrowed: every message is a candidate.
std::vector<std::string> Trigrams(std::string_view folded, std::string_view prefix);

// The trigrams a needle is looked up by: Trigrams less those holding a byte
// that is not valid UTF-8. Such a byte may be one piece of a character in
// the text (a needle cut inside a character), where the text's trigrams
// fall on other boundaries; the needle's valid characters always decode the
// same in the text (UTF-8 resynchronises on every lead byte).
std::vector<std::string> NeedleTrigrams(std::string_view folded, std::string_view prefix);

// Where the trigrams of already folded text stand, for phrase queries that
// prove a match without reading the text. Positions count the trigrams of
// each whitespace-free run one after the other, then one more for the run's
// end (RunEndTerm, with the first character of the run after it; a run of
// fewer than kGramChars characters only takes a position), so trigrams at
// consecutive positions are consecutive in the text, and a run end between
// two of them stands for exactly one whitespace run. `grams` (without
// prefix; the run ends among them) are distinct, at most kMaxTermsPerField
// (then `cut`), each with its positions ascending (one array for all: no
// allocation per gram).
struct TrigramPostings {
  std::vector<std::string> grams;
  // The positions of grams[i] are positions[starts[i]] up to positions[starts[i + 1]].
  std::vector<uint32_t> positions;
  std::vector<uint32_t> starts;  // grams.size() + 1 entries
  bool cut = false;
  std::span<const uint32_t> PositionsOf(size_t i) const {
    return {positions.data() + starts[i], positions.data() + starts[i + 1]};
  }
};
TrigramPostings Postings(std::string_view folded);

// The term at the end of a run, before a run that starts with the character
// `next` (empty: the end of the text). It starts with a line feed, so no
// trigram is ever equal to it; carrying the next character keeps each run
// end's positions few, which is what a phrase query reads.
std::string RunEndTerm(std::string_view prefix, std::string_view next);

// The terms, in order, that stand at consecutive positions of a field
// (TrigramPostings) exactly when the field holds the folded needle by the
// rule of MatchesFolded: each run's trigrams, and RunEndTerm between runs.
// Empty when the needle cannot be proven that way: it starts or ends with
// whitespace, has a run of fewer than kGramChars characters, or a byte that
// is not valid UTF-8.
std::vector<std::string> PhraseTerms(std::string_view folded, std::string_view prefix);

// True for a trigram (without prefix) of the words found in nearly every
// header: field names, MIME types, trace-field words, dates. The header's
// terms leave them out (more than a quarter of a small message's terms, and
// they narrow nothing), and so does a needle's header query: what is left
// of the needle's trigrams is still a subset of every matching header's.
bool IsCommonHeaderGram(std::string_view gram);

// Whole-word proof (a cheaper one than a phrase for the common needle: one
// word, or its start). Besides its trigrams a field holds, as terms without
// positions, the distinct starts of its whitespace-free runs: each run cut
// before its first ASCII byte other than a letter or digit and to at most
// kMaxWordBytes bytes, when at least kWordMinChars characters are left
// ("invoice." and "invoice," give "invoice"; "<ab@c>" gives none). A needle
// that is a prefix of such a term is a prefix of a run of the field, so the
// field holds it: the documents with a word term that starts
// with WordPrefix(needle) are matches without reading a position. The others
// are left to the phrase (only those: an exact proof either way).
inline constexpr size_t kWordMinChars = 4;
inline constexpr size_t kMaxWordBytes = 64;

// The distinct word terms' text of already folded text (without prefix), in
// order of first occurrence, at most kMaxTermsPerField. A run's characters
// are counted by their lead bytes here (each invalid byte counts too).
std::vector<std::string> Words(std::string_view folded);

// The text a word term must start with to prove `folded_needle`, or empty
// when no word term can: the needle holds whitespace or other ASCII than
// letters and digits, or has fewer than kWordMinChars characters (a single
// trigram proves those alone) or more than kMaxWordBytes bytes.
std::string WordPrefix(std::string_view folded_needle);

// The term that marks a field cut at kMaxTermsPerField (it holds a space,
// so no trigram is ever equal to it).
std::string OverflowTerm(std::string_view prefix);

// Number of code points of (valid or not) UTF-8 text.
size_t CountChars(std::string_view utf8);

// True when folded `needle` occurs in folded `text`, whitespace runs
// compared as one space (the rule Trigrams uses).
bool MatchesFolded(std::string_view folded_text, std::string_view folded_needle);

// Whitespace runs (SP, HTAB, CR, LF) as one space.
std::string SquashSpace(std::string_view s);

}  // namespace hato::search
