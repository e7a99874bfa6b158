// libFuzzer target for the stored SORT/THREAD keys record
// (imap/proto/sort_record.h, issue 16).
//
// Invariants:
//   * DecodeSortRecord never crashes on any bytes, and a record that decodes
//     re-encodes to the same bytes (one stored form per set of keys);
//   * the input parsed as a message: SortRecordOf its tree decodes to the
//     keys DeriveSortInput gives for the same tree and header.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "imap/proto/sort_record.h"
#include "mime/message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hato::imap;  // NOLINT: a fuzz driver
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto k = DecodeSortRecord(in, 7)) {
    bool has_date = in.size() > 1 && (static_cast<uint8_t>(in[1]) & 1);
    FUZZ_CHECK(EncodeSortRecord(*k, has_date) == in);
  }
  auto tree = hato::mime::Parse(in);
  if (!tree.ok()) return 0;
  std::string record = SortRecordOf(in, hato::mime::Serialize(*tree));
  if (record.empty()) return 0;
  auto k = DecodeSortRecord(record, 7);
  FUZZ_CHECK(k.has_value());
  bool has_date = false;
  SortInput want = DeriveSortInput(&*tree, in.substr(0, std::min(tree->header_end, in.size())),
                                   /*with_references=*/true, &has_date);
  if (!has_date) want.date = 7;
  FUZZ_CHECK(k->date == want.date && k->reply == want.reply);
  FUZZ_CHECK_EQ_STR(k->subject, want.subject);
  FUZZ_CHECK_EQ_STR(k->from, want.from);
  FUZZ_CHECK_EQ_STR(k->display_to, want.display_to);
  FUZZ_CHECK_EQ_STR(k->message_id, want.message_id);
  FUZZ_CHECK(k->references == want.references);
  return 0;
}
