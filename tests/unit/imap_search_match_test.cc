// IMAP SEARCH BODY/TEXT on a scanned message (imap/server/render.h Matches)
// follows the full-text index's rule (search/terms.h): a message not indexed
// yet must match exactly as it will once indexed, or a search's answer would
// depend on how far the background indexer has got.
#include <gtest/gtest.h>

#include <string>

#include "imap/server/render.h"
#include "mime/message.h"
#include "search/terms.h"

namespace hato::imap {
namespace {

// What the index answers for `needle` in the body: its exact check on the
// folded, squashed text (search/text_index.cc Search).
bool IndexRule(const std::string& raw, const std::string& needle) {
  auto tree = mime::Parse(raw);
  EXPECT_TRUE(tree.ok());
  mime::SearchText text = mime::ExtractSearchText(raw, *tree);
  return search::SquashSpace(search::Fold(text.body))
             .find(search::SquashSpace(search::Fold(needle))) != std::string::npos;
}

bool ScanRule(const std::string& raw, const std::string& needle) {
  auto tree = mime::Parse(raw);
  EXPECT_TRUE(tree.ok());
  store::MessageMeta meta;
  meta.uid = 1;
  meta.size = raw.size();
  MessageData m{&meta, 1, raw, &*tree};
  SearchKey key;
  key.op = SearchOp::kBody;
  key.text = needle;
  return Matches(key, m, 1, 1);
}

TEST(ImapSearchMatch, ScanAgreesWithTheIndex) {
  const std::string raw =
      "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
      "the backup\r\nstorage  was\tfull\r\n"
      "ＦＵＬＬＷＩＤＴＨ and ΑΘΗΝΑ and Москва\r\n";
  for (const char* needle :
       {"ackup stor", "BACKUP STORAGE", "was full", "storage was full", "fullwidth",
        "ｆｕｌｌｗｉｄｔｈ", "αθηνα", "москва", "backupstorage", "nothing"}) {
    EXPECT_EQ(ScanRule(raw, needle), IndexRule(raw, needle)) << needle;
  }
  EXPECT_TRUE(ScanRule(raw, "ackup stor"));
  EXPECT_TRUE(ScanRule(raw, "ｆｕｌｌｗｉｄｔｈ"));
  EXPECT_FALSE(ScanRule(raw, "backupstorage"));
}

}  // namespace
}  // namespace hato::imap
