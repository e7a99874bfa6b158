// libFuzzer target for the IMAP response reader used by hato migrate
// (src/transfer/imap_response.h).
//
// Invariants:
//   * the reader never crashes and yields the same responses whether fed
//     whole, in data-derived chunks or byte by byte;
//   * each response's text holds one "{}" per literal, and no literal is over
//     the limit;
//   * ParseListResponse / ParseFetchResponse never crash; a parsed FETCH has a
//     UID > 0 when it has one at all; Quote() output parses back as one string.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "transfer/imap_response.h"

namespace {

using hato::transfer::ImapResponse;

std::vector<ImapResponse> ReadAll(std::string_view data, size_t chunk, bool& failed) {
  hato::transfer::ImapResponseReader r;
  std::vector<ImapResponse> out;
  failed = false;
  for (size_t i = 0; i < data.size() && !failed; i += chunk) {
    r.Feed(data.substr(i, chunk));
    while (true) {
      auto n = r.Next();
      if (!n) {
        failed = true;
        break;
      }
      if (!*n) break;
      out.push_back(std::move(**n));
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  uint64_t h = hato::fuzz::Hash(in);
  bool f1 = false, f2 = false, f3 = false;
  auto whole = ReadAll(in, in.size() + 1, f1);
  auto chunked = ReadAll(in, 1 + h % 31, f2);
  auto bytes = ReadAll(in, 1, f3);
  FUZZ_CHECK(f1 == f2 && f2 == f3);
  FUZZ_CHECK(whole.size() == chunked.size() && whole.size() == bytes.size());
  for (size_t i = 0; i < whole.size(); ++i) {
    FUZZ_CHECK_EQ_STR(whole[i].text, chunked[i].text);
    FUZZ_CHECK_EQ_STR(whole[i].text, bytes[i].text);
    FUZZ_CHECK(whole[i].literals == chunked[i].literals);
    size_t holes = 0;
    for (size_t p = whole[i].text.find("{}"); p != std::string::npos;
         p = whole[i].text.find("{}", p + 2)) {
      ++holes;
    }
    FUZZ_CHECK(holes >= whole[i].literals.size());
    for (const auto& l : whole[i].literals) FUZZ_CHECK(l.size() <= hato::transfer::kMaxLiteral);
    (void)hato::transfer::ParseListResponse(whole[i]);
    auto f = hato::transfer::ParseFetchResponse(whole[i]);
    if (f && f->uid != 0) FUZZ_CHECK(f->uid > 0);
  }
  auto q = hato::transfer::Quote(in);
  if (q) {
    ImapResponse r{"* LIST () \"/\" " + *q, {}};
    auto e = hato::transfer::ParseListResponse(r);
    if (!in.empty()) {
      FUZZ_CHECK(e.has_value());
      FUZZ_CHECK_EQ_STR(e->name, in);
    }
  }
  return 0;
}
