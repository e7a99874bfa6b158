// Fuzzes the full-text index's term extraction (search/terms.h): folding,
// space squashing, trigrams and the exact check take any bytes; terms are
// distinct, at most kMaxTermsPerField, and at most three code points long;
// a needle the exact check finds in a text has only trigrams of that text
// (the index's candidates are a superset of the matches).
#include <cstdint>
#include <string>
#include <unordered_set>

#include "search/terms.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  size_t cut = size / 4;
  std::string needle = input.substr(0, cut);
  std::string text = hato::search::SquashSpace(hato::search::Fold(input.substr(cut)));
  auto terms = hato::search::Trigrams(text, "B");
  if (terms.size() > hato::search::kMaxTermsPerField) __builtin_trap();
  std::unordered_set<std::string> seen;
  for (const auto& t : terms) {
    if (t.size() < 4 || t.size() > 1 + 4 * hato::search::kGramChars || t[0] != 'B') {
      __builtin_trap();
    }
    if (!seen.insert(t).second) __builtin_trap();
  }
  if (!hato::search::MatchesFolded(text, "")) __builtin_trap();
  std::string folded_needle = hato::search::Fold(needle);
  if (hato::search::MatchesFolded(text, folded_needle) &&
      hato::search::SquashSpace(folded_needle).size() > text.size()) {
    __builtin_trap();
  }
  if (hato::search::MatchesFolded(text, folded_needle) &&
      terms.size() < hato::search::kMaxTermsPerField) {
    for (const auto& t : hato::search::NeedleTrigrams(folded_needle, "B")) {
      if (!seen.count(t)) __builtin_trap();
    }
  }
  (void)hato::search::IsCommonHeaderGram(needle);
  (void)hato::search::CountChars(input);
  return 0;
}
