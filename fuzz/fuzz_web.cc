// libFuzzer target for the web side's small parsers (src/web/): the status
// notes file (health.h), the autoconfig address (autoconfig.h), the Cookie
// header and redirect targets (security.h), and the JSON/HTML escapers.
//
// Invariants:
//   * never crashes;
//   * notes: at most kMaxNotes, each at most kMaxNoteBytes, and
//     FormatNotes/ParseNotes round-trip what was parsed;
//   * an accepted address has exactly one '@', no byte that needs escaping in
//     XML, and parses again to itself;
//   * SafeRedirectPath always starts with one '/' and never "//" or "/\";
//   * HtmlEscape leaves no '<', '>' or '"'; JsonString output is valid UTF-8;
//   * an accepted app password (auth/app_password.h) is 20 characters of its
//     alphabet and normalizes to itself, also written in groups of four;
//   * the streamed zip (zip_stream.h) counts exactly the bytes it is given,
//     and its CRC does not depend on how the data was split.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "auth/app_password.h"
#include "base/strings.h"
#include "fuzz_util.h"
#include "web/autoconfig.h"
#include "web/escape.h"
#include "web/health.h"
#include "web/security.h"
#include "web/zip_stream.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  using namespace hato::web;

  auto notes = ParseNotes(in);
  FUZZ_CHECK(notes.size() <= kMaxNotes);
  for (const auto& n : notes) FUZZ_CHECK(n.text.size() <= kMaxNoteBytes && !n.text.empty());
  auto again = ParseNotes(FormatNotes(notes));
  FUZZ_CHECK(again.size() == notes.size());

  if (auto a = ParseEmailAddress(in)) {
    FUZZ_CHECK(a->find('@') == a->rfind('@') && a->find('@') != std::string::npos);
    FUZZ_CHECK(a->find_first_of("<>\"\r\n ") == std::string::npos);
    auto b = ParseEmailAddress(*a);
    FUZZ_CHECK(b && *b == *a);
  }

  (void)CookieValue(in, "hato_session");
  std::string r = SafeRedirectPath(in);
  FUZZ_CHECK(!r.empty() && r[0] == '/');
  FUZZ_CHECK(r.size() < 2 || (r[1] != '/' && r[1] != '\\'));

  std::string h = HtmlEscape(in);
  FUZZ_CHECK(h.find_first_of("<>\"") == std::string::npos);
  FUZZ_CHECK(hato::IsValidUtf8(JsonString(in)));
  (void)PickLang(in);

  if (auto app = hato::auth::NormalizeAppPassword(in)) {
    FUZZ_CHECK(app->size() == hato::auth::kAppPasswordChars);
    FUZZ_CHECK(app->find_first_not_of(hato::auth::kAppPasswordAlphabet) == std::string::npos);
    std::string dashed;
    for (size_t i = 0; i < app->size(); ++i)
      dashed += (i && i % 4 == 0 ? "-" : "") + app->substr(i, 1);
    auto again_app = hato::auth::NormalizeAppPassword(dashed);
    FUZZ_CHECK(again_app && *again_app == *app);
  }

  ZipStream zip;
  std::string head = zip.Begin(in.substr(0, 64), static_cast<int64_t>(size) * 1000003);
  size_t half = size / 2;
  zip.Data(in.substr(0, half));
  zip.Data(in.substr(half));
  std::string desc = zip.End();
  FUZZ_CHECK(zip.offset() == head.size() + size + desc.size());
  uint32_t whole = Crc32(0, in);
  FUZZ_CHECK(Crc32(Crc32(0, in.substr(0, half)), in.substr(half)) == whole);
  FUZZ_CHECK(desc.size() == 16 && static_cast<uint8_t>(desc[4]) == (whole & 0xFF));
  std::string tail = zip.Finish();
  FUZZ_CHECK(tail.size() >= 22);
  return 0;
}
