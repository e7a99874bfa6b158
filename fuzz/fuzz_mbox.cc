// libFuzzer target for the mbox reader and writer (src/transfer/mbox.h).
//
// Invariants:
//   * MboxSplitter never crashes; fed whole, split at a data-derived point, or
//     byte by byte, it yields the same messages;
//   * no message content exceeds the limit, every content is CRLF-terminated
//     lines (or empty);
//   * export then import is the identity: for a content C made of CRLF lines,
//     AppendMboxMessage followed by MboxSplitter gives back exactly one message
//     with C, the return path and the date (mboxrd From-quoting round trip);
//   * Maildir flag letters round-trip through MaildirFlagSuffix/MaildirFlags.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "transfer/mbox.h"

namespace {

using hato::transfer::MboxMessage;
using hato::transfer::MboxSplitter;

std::vector<MboxMessage> Split(std::string_view data, size_t chunk, size_t limit) {
  MboxSplitter s(limit);
  std::vector<MboxMessage> out;
  for (size_t i = 0; i < data.size(); i += chunk) {
    s.Feed(data.substr(i, chunk));
    while (auto m = s.Next()) out.push_back(std::move(*m));
  }
  s.Finish();
  while (auto m = s.Next()) out.push_back(std::move(*m));
  return out;
}

void SameMessages(const std::vector<MboxMessage>& a, const std::vector<MboxMessage>& b) {
  FUZZ_CHECK(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    FUZZ_CHECK_EQ_STR(a[i].content, b[i].content);
    FUZZ_CHECK_EQ_STR(a[i].return_path, b[i].return_path);
    FUZZ_CHECK(a[i].internal_date == b[i].internal_date);
    FUZZ_CHECK(a[i].too_large == b[i].too_large);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  uint64_t h = hato::fuzz::Hash(in);
  size_t limit = 64 + h % 4096;
  auto whole = Split(in, in.size() + 1, limit);
  SameMessages(whole, Split(in, 1 + h % 97, limit));
  SameMessages(whole, Split(in, 1, limit));
  for (const auto& m : whole) {
    FUZZ_CHECK(m.content.size() <= limit);
    FUZZ_CHECK(m.content.empty() || m.content.size() >= 2);
    if (!m.content.empty()) FUZZ_CHECK_EQ_STR(m.content.substr(m.content.size() - 2), "\r\n");
  }

  // Export -> import identity for CRLF-line content.
  std::string lf;
  for (char c : in) {
    if (c != '\r') lf += c;
  }
  if (lf.empty() || lf.back() != '\n') lf += '\n';
  std::string content = hato::transfer::ToCrlf(lf);
  std::string sender = (h & 1) ? "" : "someone@example.test";
  int64_t date = static_cast<int64_t>(h % 4000000000ull);
  std::string mbox;
  hato::transfer::AppendMboxMessage(mbox, sender, date, content);
  hato::transfer::AppendMboxMessage(mbox, sender, date, content);
  auto back = Split(mbox, 1 + (h >> 8) % 61, content.size() + 16);
  FUZZ_CHECK(back.size() == 2);
  for (const auto& m : back) {
    FUZZ_CHECK_EQ_STR(m.content, content);
    FUZZ_CHECK_EQ_STR(m.return_path, sender);
    FUZZ_CHECK(m.internal_date == date);
  }

  uint32_t flags = static_cast<uint32_t>(h >> 16) & 31;
  FUZZ_CHECK(hato::transfer::MaildirFlags("x" + hato::transfer::MaildirFlagSuffix(flags)) == flags);
  (void)hato::transfer::MaildirFlags(in);
  return 0;
}
