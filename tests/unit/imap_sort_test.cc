// SORT and THREAD (imap/proto/sort.h): the grammar (RFC 5256 section 5,
// RFC 5267 section 4), the base subject (RFC 5256 section 2.1), sent dates
// (section 2.2) and both threading algorithms on small mailboxes.
#include <gtest/gtest.h>

#include "imap/proto/command.h"
#include "imap/proto/sort.h"
#include "imap/proto/sort_record.h"
#include "mime/message.h"

namespace hato::imap {
namespace {

TEST(ImapSort, Grammar) {
  auto c = ParseCommand("a UID SORT RETURN (MIN COUNT) (REVERSE DATE SUBJECT) UTF-8 FROM x");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->verb, Verb::kSort);
  EXPECT_TRUE(c->uid);
  const auto& a = c->As<SearchArgs>();
  EXPECT_TRUE(a.esearch && a.return_min && a.return_count && !a.return_max);
  ASSERT_EQ(a.sort.size(), 2u);
  EXPECT_EQ(a.sort[0], (SortCriterion{SortField::kDate, true}));
  EXPECT_EQ(a.sort[1], (SortCriterion{SortField::kSubject, false}));
  EXPECT_EQ(*a.charset, "UTF-8");
  EXPECT_EQ(FormatCommand(*c), "a UID SORT RETURN (MIN COUNT) (REVERSE DATE SUBJECT) UTF-8 FROM x");
  EXPECT_FALSE(ParseCommand("a SORT () UTF-8 ALL").ok());
  EXPECT_FALSE(ParseCommand("a SORT (DATE) ALL").ok());  // no charset
  EXPECT_FALSE(ParseCommand("a SORT (REVERSE) UTF-8 ALL").ok());
  EXPECT_FALSE(ParseCommand("a SORT (DATE SPAM) UTF-8 ALL").ok());
  auto t = ParseCommand("b THREAD REFERENCES US-ASCII SINCE 1-Jan-2024");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->As<SearchArgs>().thread, ThreadAlgorithm::kReferences);
  EXPECT_EQ(FormatCommand(*t), "b THREAD REFERENCES US-ASCII SINCE 1-Jan-2024");
  EXPECT_FALSE(ParseCommand("b THREAD REFS UTF-8 ALL").ok());
  EXPECT_TRUE(UsesSequenceNumbers(*ParseCommand("c SORT (DATE) UTF-8 ALL")));
  EXPECT_FALSE(UsesSequenceNumbers(*ParseCommand("c UID THREAD REFERENCES UTF-8 ALL")));
  EXPECT_TRUE(UsesSequenceNumbers(*ParseCommand("c UID THREAD REFERENCES UTF-8 1:4")));
}

TEST(ImapSort, BaseSubject) {
  bool rf = false;
  EXPECT_EQ(BaseSubject("Hello  world", &rf), "HELLO WORLD");
  EXPECT_FALSE(rf);
  EXPECT_EQ(BaseSubject("Re: RE: fwd: Hello world (fwd) ", &rf), "HELLO WORLD");
  EXPECT_TRUE(rf);
  EXPECT_EQ(BaseSubject("[list] Re[2]: Hello", &rf), "HELLO");
  EXPECT_TRUE(rf);
  EXPECT_EQ(BaseSubject("[fwd: Re: Hello]", &rf), "HELLO");
  EXPECT_TRUE(rf);
  EXPECT_EQ(BaseSubject("[list]", &rf), "[LIST]");  // a blob alone stays
  EXPECT_EQ(BaseSubject("\tRe:\r\n  x"), "X");
  EXPECT_EQ(BaseSubject("Fw : y"), "Y");
  EXPECT_EQ(BaseSubject("Refund"), "REFUND");
  EXPECT_EQ(BaseSubject(""), "");
  EXPECT_EQ(SortFold("\xc3\xa9"
                     "cole"),
            "E\xcc\x81"
            "COLE");
  EXPECT_EQ(SortFold("stra\xc3\x9f"
                     "e"),
            "STRASSE");
}

TEST(ImapSort, SentDate) {
  EXPECT_EQ(*ParseSentDate("Mon, 01 Jan 2024 10:00:00 +0000"), 1704103200);
  EXPECT_EQ(*ParseSentDate("1 Jan 2024 12:00 +0200 (CEST)"), 1704103200);
  EXPECT_EQ(*ParseSentDate("Mon, 1 Jan 24 05:00:00 EST"), 1704103200);
  EXPECT_FALSE(ParseSentDate("yesterday").has_value());
  EXPECT_FALSE(ParseSentDate("32 Jan 2024 00:00 +0000").has_value());
  EXPECT_EQ(ParseMessageIds(" <a@b>\r\n <c @d> junk <e>"),
            (std::vector<std::string>{"<a@b>", "<c@d>"}));
}

SortInput Msg(uint32_t n, int64_t date, std::string subject, std::string id,
              std::vector<std::string> refs = {}) {
  SortInput m;
  m.seq = m.number = n;
  m.date = date;
  m.subject = BaseSubject(subject, &m.reply);
  m.message_id = std::move(id);
  m.references = std::move(refs);
  return m;
}

TEST(ImapSort, Order) {
  std::vector<SortInput> in = {Msg(1, 30, "b", ""), Msg(2, 10, "a", ""), Msg(3, 20, "b", "")};
  EXPECT_EQ(SortOrder(in, {{SortField::kSubject, false}}), (std::vector<size_t>{1, 0, 2}));
  EXPECT_EQ(SortOrder(in, {{SortField::kSubject, false}, {SortField::kDate, true}}),
            (std::vector<size_t>{1, 0, 2}));
  EXPECT_EQ(SortOrder(in, {{SortField::kDate, true}}), (std::vector<size_t>{0, 2, 1}));
  EXPECT_EQ(SortOrder(in, {{SortField::kArrival, false}}), (std::vector<size_t>{0, 1, 2}));
}

TEST(ImapSort, Threads) {
  std::vector<SortInput> in = {
      Msg(1, 10, "Hello", "<1@x>"),
      Msg(2, 20, "Re: Hello", "<2@x>", {"<1@x>"}),
      Msg(3, 30, "Re: Hello", "<3@x>", {"<1@x>", "<2@x>"}),
      Msg(4, 40, "Re: Hello", "<4@x>", {"<1@x>"}),
      Msg(5, 5, "Other", "<5@x>", {"<gone@x>"}),
      Msg(6, 6, "Re: Other", "<6@x>", {"<gone@x>"}),
      Msg(7, 7, "Alone", ""),
  };
  EXPECT_EQ(ThreadReferences(in), "((5)(6))(7)(1 (2 3)(4))");
  EXPECT_EQ(ThreadOrderedSubject(in), "(5 6)(7)(1 (2)(3)(4))");
  // A loop in the references is not followed.
  std::vector<SortInput> loop = {Msg(1, 1, "a", "<1@x>", {"<2@x>"}),
                                 Msg(2, 2, "b", "<2@x>", {"<1@x>"})};
  EXPECT_EQ(ThreadReferences(loop), "(2 1)");
  EXPECT_EQ(ThreadReferences({}), "");
}

// Issue 16: the keys stored with a body at delivery decode to what SORT
// derives from the tree; malformed records and other versions are refused.
TEST(ImapSort, StoredRecord) {
  std::string raw =
      "From: =?utf-8?q?J=C3=BCrgen?= <jm@example.test>\r\nTo: b@example.test, c@x.test\r\n"
      "Cc: Carl <carl@x.test>\r\nSubject: Re: [fwd: Plans]\r\n"
      "Date: Tue, 2 Jan 2024 10:00:00 +0100\r\nMessage-ID: <3@x>\r\n"
      "In-Reply-To: <2@x>\r\nReferences: <1@x> <2@x>\r\n\r\nbody\r\n";
  auto tree = mime::Parse(raw);
  ASSERT_TRUE(tree.ok());
  std::string record = SortRecordOf(raw, mime::Serialize(*tree));
  ASSERT_FALSE(record.empty());
  auto k = DecodeSortRecord(record, 42);
  ASSERT_TRUE(k);
  bool has_date = false;
  SortInput want = DeriveSortInput(&*tree, raw.substr(0, tree->header_end), true, &has_date);
  EXPECT_TRUE(has_date);
  EXPECT_EQ(k->date, 1704186000);
  EXPECT_EQ(k->subject, "PLANS");
  EXPECT_TRUE(k->reply);
  EXPECT_EQ(k->from, "JM");
  EXPECT_EQ(k->cc, "CARL");
  EXPECT_EQ(k->display_from, want.display_from);
  EXPECT_EQ(k->display_to, "B@EXAMPLE.TEST");
  EXPECT_EQ(k->message_id, "<3@x>");
  EXPECT_EQ(k->references, (std::vector<std::string>{"<1@x>", "<2@x>"}));
  EXPECT_EQ(EncodeSortRecord(*k, true), record);
  // No usable Date: INTERNALDATE (RFC 5256 section 2.2).
  std::string undated = "Subject: x\r\nDate: someday\r\n\r\n";
  auto t2 = mime::Parse(undated);
  ASSERT_TRUE(t2.ok());
  auto k2 = DecodeSortRecord(SortRecordOf(undated, mime::Serialize(*t2)), 42);
  ASSERT_TRUE(k2);
  EXPECT_EQ(k2->date, 42);
  // Truncated, padded, another version, trailing bytes: refused.
  for (size_t n = 0; n < record.size(); ++n) EXPECT_FALSE(DecodeSortRecord(record.substr(0, n), 0));
  EXPECT_FALSE(DecodeSortRecord(record + "x", 0));
  std::string other = record;
  other[0] = 2;
  EXPECT_FALSE(DecodeSortRecord(other, 0));
  EXPECT_EQ(SortRecordOf(raw, ""), "");
}

}  // namespace
}  // namespace hato::imap
