// Tests of the pure IMAP protocol layer (src/imap/proto/): the command parser
// on lines copied from real clients, the incremental reader (literals split at
// every byte, LITERAL+, errors and resynchronization, limits), sequence sets,
// modified UTF-7 mailbox names and the response helpers.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "imap/proto/command.h"
#include "imap/proto/object_ids.h"
#include "imap/proto/reader.h"
#include "imap/proto/response.h"
#include "imap/proto/seqset.h"
#include "imap/proto/utf7.h"

namespace hato::imap {
namespace {

Command Parse(std::string_view line) {
  auto r = ParseCommand(line);
  EXPECT_TRUE(r.ok()) << line << " -> " << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(*r) : Command{};
}

std::string ParseError(std::string_view line, const Limits& limits = {}) {
  auto r = ParseCommand(line, limits);
  EXPECT_FALSE(r.ok()) << line;
  return r.ok() ? "" : r.error().message;
}

// Parses, checks FormatCommand re-parses to the same canonical text.
Command ParseRoundTrip(std::string_view line) {
  Command c = Parse(line);
  std::string canon = FormatCommand(c);
  auto again = ParseCommand(canon);
  EXPECT_TRUE(again.ok()) << canon << " -> " << (again.ok() ? "" : again.error().message);
  if (again.ok()) {
    EXPECT_EQ(FormatCommand(*again), canon) << line;
  }
  return c;
}

SeqSet Set(std::string_view s) {
  auto r = ParseCommand("t UID EXPUNGE " + std::string(s));
  EXPECT_TRUE(r.ok()) << s;
  return r.ok() ? r->As<ExpungeArgs>().set : SeqSet{};
}

// ---- Sequence sets ----

TEST(ImapSeqSet, ParseAndPrint) {
  SeqSet s = Set("1:3,7,9:*,*,12:10");
  ASSERT_EQ(s.ranges.size(), 5u);
  EXPECT_EQ(s.ranges[2], (SeqSet::Range{9, kStar}));
  EXPECT_EQ(s.ranges[3], (SeqSet::Range{kStar, kStar}));
  EXPECT_EQ(s.ranges[4], (SeqSet::Range{12, 10}));
  EXPECT_TRUE(s.HasStar());
  EXPECT_EQ(s.ToString(), "1:3,7,9:*,*,12:10");
  EXPECT_FALSE(Set("4").HasStar());
}

TEST(ImapSeqSet, Resolve) {
  IdSet r = Set("1:3,7,9:*,12:10").Resolve(20);
  EXPECT_EQ(r.ToString(), "1:3,7,9:20");
  EXPECT_EQ(r.size(), 3u + 1u + 12u);
  EXPECT_TRUE(r.Contains(1));
  EXPECT_TRUE(r.Contains(3));
  EXPECT_FALSE(r.Contains(4));
  EXPECT_TRUE(r.Contains(7));
  EXPECT_FALSE(r.Contains(8));
  EXPECT_TRUE(r.Contains(20));
  EXPECT_FALSE(r.Contains(21));
  EXPECT_FALSE(r.Contains(0));
  // "100:*" with a largest UID of 50 means 50:100 (RFC 9051 section 6.4.9).
  EXPECT_EQ(Set("100:*").Resolve(50).ToString(), "50:100");
  // Empty mailbox: "*" alone is nothing.
  EXPECT_TRUE(Set("*").Resolve(0).empty());
  EXPECT_EQ(Set("1:*").Resolve(0).ToString(), "1");
  // Adjacent and overlapping ranges merge; the full 32-bit range does not overflow.
  EXPECT_EQ(Set("5,1:2,3,4:4,6:8,2:7").Resolve(9).ToString(), "1:8");
  IdSet all = Set("1:4294967295").Resolve(9);
  EXPECT_EQ(all.size(), 4294967295ull);
  EXPECT_TRUE(all.Contains(4294967295u));
  EXPECT_EQ(Set("4294967295,4294967294").Resolve(1).ToString(), "4294967294:4294967295");
}

TEST(ImapSeqSet, ContainsAgreesWithResolveAndSkipsItWhenResolved) {
  SeqSet written = Set("9:*,1:3,7");
  SeqSet resolved;  // as built from an IdSet (a text search's matches)
  resolved.ranges = {{1, 3}, {7, 7}, {9, 20}};
  resolved.resolved = true;
  for (uint32_t id = 0; id <= 22; ++id) {
    EXPECT_EQ(written.Contains(id, 20), written.Resolve(20).Contains(id)) << id;
    EXPECT_EQ(resolved.Contains(id, 20), written.Resolve(20).Contains(id)) << id;
  }
  // Resolved: the ranges are taken as they are (a UID above the largest
  // matches what the ranges say, as Resolve keeps it).
  EXPECT_TRUE(resolved.Contains(20, 5));
  EXPECT_FALSE(resolved.Contains(21, 5));
}

TEST(ImapSeqSet, Compress) {
  std::vector<uint32_t> ids = {7, 3, 1, 2, 2, 9, 10, 11, 0};
  EXPECT_EQ(CompressIds(ids), "1:3,7,9:11");
  EXPECT_EQ(CompressIds({}), "");
  IdSet s = IdSet::FromIds({5});
  EXPECT_EQ(s.min(), 5u);
  EXPECT_EQ(s.max(), 5u);
  EXPECT_EQ(IdSet::FromRanges({{9, 7}, {1, 1}, {2, 3}}).ToString(), "1:3,7:9");
}

TEST(ImapSeqSet, Rejects) {
  EXPECT_FALSE(ParseCommand("t UID EXPUNGE 0").ok());
  EXPECT_FALSE(ParseCommand("t UID EXPUNGE 1:0").ok());
  EXPECT_FALSE(ParseCommand("t UID EXPUNGE 1,").ok());
  EXPECT_FALSE(ParseCommand("t UID EXPUNGE ,1").ok());
  EXPECT_FALSE(ParseCommand("t UID EXPUNGE 1::2").ok());
  EXPECT_FALSE(ParseCommand("t UID EXPUNGE 4294967296").ok());
  // "$" (SEARCHRES, RFC 5182 section 4) stands alone.
  auto saved = ParseCommand("t UID EXPUNGE $");
  ASSERT_TRUE(saved.ok());
  EXPECT_TRUE(saved->As<ExpungeArgs>().set.saved);
  EXPECT_EQ(FormatCommand(*saved), "t UID EXPUNGE $");
  EXPECT_FALSE(ParseCommand("t UID EXPUNGE $,1").ok());
  EXPECT_FALSE(ParseCommand("t UID EXPUNGE 1,$").ok());
  EXPECT_FALSE(ParseCommand("t UID EXPUNGE $:3").ok());
  Limits small;
  small.max_seq_ranges = 3;
  EXPECT_TRUE(ParseCommand("t UID EXPUNGE 1,2,3", small).ok());
  auto r = ParseCommand("t UID EXPUNGE 1,2,3,4", small);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kTooLarge);
}

// ---- Modified UTF-7 ----

TEST(ImapUtf7, Vectors) {
  struct {
    const char* utf8;
    const char* mutf7;
  } cases[] = {
      {"INBOX", "INBOX"},
      {"☺!", "&Jjo-!"},
      {"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
      {"Entwürfe", "Entw&APw-rfe"},
      {"Tom & Jerry", "Tom &- Jerry"},
      {"&", "&-"},
      {"Отправленные", "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"},
      {"😀", "&2D3eAA-"},  // outside the BMP: a surrogate pair
      {"a\tb", "a&AAk-b"},
      {"", ""},
  };
  for (const auto& c : cases) {
    auto enc = EncodeMailboxUtf7(c.utf8);
    ASSERT_TRUE(enc.ok()) << c.utf8;
    EXPECT_EQ(*enc, c.mutf7);
    auto dec = DecodeMailboxUtf7(c.mutf7);
    ASSERT_TRUE(dec.ok()) << c.mutf7 << ": " << dec.error().message;
    EXPECT_EQ(*dec, c.utf8);
  }
}

TEST(ImapUtf7, RejectsMalformed) {
  for (const char* bad : {
           "&Jjo",         // unterminated
           "&Jjo!-",       // outside the alphabet
           "&Jj/-",        // RFC 2152 "/" is "," here
           "&Jjp-",        // non-zero padding bits
           "&AGE-",        // "a" must represent itself
           "&ACY-",        // "&" must be "&-"
           "&Jjo-&Jjo-",   // two adjacent shifts
           "&2D0-",        // lone high surrogate
           "&3gA-",        // lone low surrogate
           "&AA-",         // partial UTF-16 unit
           "&Jjo=-",       // base64 padding is not used
           "caf\xc3\xa9",  // raw 8-bit
           "a\tb",         // control character
       }) {
    EXPECT_FALSE(DecodeMailboxUtf7(bad).ok()) << bad;
  }
  EXPECT_FALSE(EncodeMailboxUtf7("\xff").ok());
}

TEST(ImapUtf7, Inbox) {
  EXPECT_TRUE(IsInbox("inbox"));
  EXPECT_TRUE(IsInbox("InBoX"));
  EXPECT_FALSE(IsInbox("INBOX.Sent"));
  EXPECT_EQ(NormalizeInbox("Inbox"), "INBOX");
  EXPECT_EQ(NormalizeInbox("inbox/Lists", '/'), "INBOX/Lists");
  EXPECT_EQ(NormalizeInbox("inbox/Lists"), "inbox/Lists");
  EXPECT_EQ(NormalizeInbox("inboxes", '/'), "inboxes");
  EXPECT_EQ(Parse("a SELECT inbox").As<SelectArgs>().mailbox, "INBOX");
  EXPECT_EQ(Parse("a SELECT \"Inbox\"").As<SelectArgs>().mailbox, "INBOX");
}

// ---- Strings and the basic commands ----

TEST(ImapParse, NoArgumentCommands) {
  struct {
    const char* line;
    Verb verb;
  } cases[] = {
      {"1 capability", Verb::kCapability},
      {"a0 NOOP", Verb::kNoop},
      {"z LOGOUT", Verb::kLogout},
      {"s STARTTLS", Verb::kStartTls},
      {"i1 IDLE", Verb::kIdle},
      {"n namespace", Verb::kNamespace},
      {"c CHECK", Verb::kCheck},
      {"c CLOSE", Verb::kClose},
      {"u UNSELECT", Verb::kUnselect},
      {"e EXPUNGE", Verb::kExpunge},
  };
  for (const auto& c : cases) {
    Command cmd = ParseRoundTrip(c.line);
    EXPECT_EQ(cmd.verb, c.verb) << c.line;
    EXPECT_FALSE(cmd.uid);
    EXPECT_TRUE(std::holds_alternative<std::monostate>(cmd.args));
    EXPECT_FALSE(ParseCommand(std::string(c.line) + " x").ok()) << c.line;
  }
}

TEST(ImapParse, Tags) {
  EXPECT_EQ(Parse("A001 NOOP").tag, "A001");
  EXPECT_EQ(Parse("1.1 NOOP").tag, "1.1");      // Apple Mail
  EXPECT_EQ(Parse("a0000 NOOP").tag, "a0000");  // mutt
  EXPECT_EQ(Parse("x]y NOOP").tag, "x]y");      // resp-specials are ASTRING-CHARs
  ParseError("a+b NOOP");                       // "+" is not a tag char
  ParseError("* NOOP");
  ParseError("(a) NOOP");
  ParseError(" NOOP");
  ParseError("");
  ParseError("a");
  EXPECT_EQ(ParseTag("abc LOGIN"), "abc");
  EXPECT_EQ(ParseTag("abc"), "abc");
  EXPECT_FALSE(ParseTag("a{1} x").has_value());
  EXPECT_FALSE(ParseTag("").has_value());
}

TEST(ImapParse, LoginStrings) {
  Command c = ParseRoundTrip("a0001 LOGIN \"alice@example.test\" \"p\\\"w\\\\d\"");
  EXPECT_EQ(c.verb, Verb::kLogin);
  EXPECT_EQ(c.As<LoginArgs>().user, "alice@example.test");
  EXPECT_EQ(c.As<LoginArgs>().password, "p\"w\\d");
  c = ParseRoundTrip("a LOGIN alice secret]");
  EXPECT_EQ(c.As<LoginArgs>().password, "secret]");
  c = ParseRoundTrip("a LOGIN {5}\r\nalice {6+}\r\nse cr\"");
  EXPECT_EQ(c.As<LoginArgs>().user, "alice");
  EXPECT_EQ(c.As<LoginArgs>().password, "se cr\"");
  c = ParseRoundTrip("a LOGIN \"\" {0}\r\n");
  EXPECT_EQ(c.As<LoginArgs>().user, "");
  EXPECT_EQ(c.As<LoginArgs>().password, "");
  ParseError("a LOGIN alice");
  ParseError("a LOGIN alice  secret");
  ParseError("a LOGIN alice secret ");
  ParseError("a LOGIN \"al\\ice\" x");  // only \" and \\ escapes
  ParseError("a LOGIN \"alice x");      // unterminated
  ParseError("a LOGIN al%ce x");        // list-wildcards are not ASTRING-CHARs
  ParseError("a LOGIN {5}\r\nali");     // short literal
  ParseError("a LOGIN {3}\r\na\0c x");  // NUL in a literal
  ParseError("a LOGIN {3}x\r\nabc x");
}

TEST(ImapParse, EightBitQuotedIsFlagged) {
  Command c = Parse("a LOGIN \"j\xc3\xb6rg\" pw");
  EXPECT_TRUE(c.has_8bit);
  EXPECT_EQ(c.As<LoginArgs>().user, "j\xc3\xb6rg");
  EXPECT_FALSE(Parse("a LOGIN \"jorg\" pw").has_8bit);
  EXPECT_FALSE(Parse("a LOGIN {2}\r\n\xc3\xb6 pw").has_8bit);  // literals are 8-bit clean
  ParseError("a LOGIN \"\xff\" pw");                           // not UTF-8
  ParseError("a LOGIN j\xc3\xb6rg pw");                        // not in an atom
}

TEST(ImapParse, Authenticate) {
  Command c = ParseRoundTrip("2 authenticate PLAIN");
  EXPECT_EQ(c.As<AuthenticateArgs>().mechanism, "PLAIN");
  EXPECT_FALSE(c.As<AuthenticateArgs>().initial_response.has_value());
  c = ParseRoundTrip("a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==");  // SASL-IR, RFC 4959
  EXPECT_EQ(*c.As<AuthenticateArgs>().initial_response, "AGFsaWNlAHNlY3JldA==");
  c = ParseRoundTrip("a AUTHENTICATE EXTERNAL =");
  EXPECT_EQ(*c.As<AuthenticateArgs>().initial_response, "=");
  ParseError("a AUTHENTICATE PLAIN AGFsa");  // not a multiple of 4
  ParseError("a AUTHENTICATE PLAIN A=Fs");   // padding in the middle
  ParseError("a AUTHENTICATE PLAIN \"AGFs\"");
  ParseError("a AUTHENTICATE");
}

TEST(ImapParse, SelectExamine) {
  Command c = ParseRoundTrip("a0005 SELECT \"INBOX\"");
  EXPECT_EQ(c.verb, Verb::kSelect);
  EXPECT_EQ(c.As<SelectArgs>().mailbox, "INBOX");
  EXPECT_FALSE(c.As<SelectArgs>().condstore);
  c = ParseRoundTrip("6.1 SELECT INBOX (CONDSTORE)");
  EXPECT_TRUE(c.As<SelectArgs>().condstore);
  c = ParseRoundTrip("a EXAMINE \"Archive/2023\"");
  EXPECT_EQ(c.verb, Verb::kExamine);
  EXPECT_EQ(c.As<SelectArgs>().mailbox, "Archive/2023");
  // RFC 7162 section 3.2.5.2 examples.
  c = ParseRoundTrip("A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))");
  const auto& q = *c.As<SelectArgs>().qresync;
  EXPECT_EQ(q.uidvalidity, 67890007u);
  EXPECT_EQ(q.modseq, 20050715194045000ull);
  EXPECT_EQ(q.known_uids->ToString(), "41,43:211,214:541");
  EXPECT_FALSE(q.known_seqs.has_value());
  c = ParseRoundTrip(
      "B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 "
      "15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))");
  const auto& q2 = *c.As<SelectArgs>().qresync;
  EXPECT_EQ(q2.known_seqs->ToString(), "5000,7500,9000,9990:9999");
  EXPECT_EQ(q2.known_seq_uids->ranges.size(), 13u);
  c = ParseRoundTrip("a SELECT INBOX (QRESYNC (1 2 (3 4)))");
  EXPECT_FALSE(c.As<SelectArgs>().qresync->known_uids.has_value());
  EXPECT_TRUE(c.As<SelectArgs>().qresync->known_seqs.has_value());
  ParseError("a SELECT");
  ParseError("a SELECT INBOX ()");
  ParseError("a SELECT INBOX (FOO)");
  ParseError("a SELECT INBOX (QRESYNC (0 1))");                    // uidvalidity is nz-number
  ParseError("a SELECT INBOX (QRESYNC (1 0))");                    // mod-sequence-value is positive
  ParseError("a SELECT INBOX (QRESYNC (1 9223372036854775808))");  // 63 bits
  ParseError("a SELECT INBOX (QRESYNC (1 2) QRESYNC (1 2))");
}

// NOTIFY (RFC 5465 section 8).
TEST(ImapParse, Notify) {
  Command c = ParseRoundTrip("n NOTIFY NONE");
  EXPECT_TRUE(c.As<NotifyArgs>().none);
  c = ParseRoundTrip(
      "n notify set status (selected (MessageNew (uid body.peek[header.fields (from to "
      "subject)]) MessageExpunge)) (subtree Lists (MessageNew MessageExpunge)) (mailboxes (misc "
      "inbox) NONE) (subscribed (MailboxName SubscriptionChange XFoo))");
  const auto& a = c.As<NotifyArgs>();
  EXPECT_FALSE(a.none);
  EXPECT_TRUE(a.status);
  ASSERT_EQ(a.groups.size(), 4u);
  EXPECT_EQ(a.groups[0].filter, NotifyFilter::kSelected);
  ASSERT_EQ(a.groups[0].fetch.size(), 2u);
  EXPECT_EQ(a.groups[0].fetch[0].att, FetchAtt::kUid);
  EXPECT_TRUE(a.groups[0].fetch[1].peek);
  EXPECT_TRUE(a.groups[0].Has(NotifyEvent::kMessageExpunge));
  EXPECT_EQ(a.groups[1].filter, NotifyFilter::kSubtree);
  EXPECT_EQ(a.groups[1].mailboxes, std::vector<std::string>{"Lists"});
  EXPECT_EQ(a.groups[2].mailboxes, (std::vector<std::string>{"misc", "INBOX"}));
  EXPECT_TRUE(a.groups[2].events.empty());
  EXPECT_EQ(a.groups[3].unknown, std::vector<std::string>{"XFOO"});
  EXPECT_EQ(FormatCommand(c),
            "n NOTIFY SET STATUS (SELECTED (MessageNew (UID BODY.PEEK[HEADER.FIELDS (from to "
            "subject)]) MessageExpunge)) (SUBTREE (Lists) (MessageNew MessageExpunge)) "
            "(MAILBOXES (misc INBOX) NONE) (SUBSCRIBED (MailboxName SubscriptionChange XFOO))");
  ParseRoundTrip("n NOTIFY SET (SELECTED-DELAYED (MessageNew MessageExpunge FlagChange))");
  // Section 5: MessageNew and MessageExpunge together; FlagChange needs them.
  EXPECT_EQ(ParseError("n NOTIFY SET (PERSONAL (MessageNew))"),
            "MessageNew and MessageExpunge must be given together");
  EXPECT_EQ(ParseError("n NOTIFY SET (PERSONAL (FlagChange))"),
            "FlagChange and AnnotationChange need MessageNew and MessageExpunge");
  // Section 6.1: one selected filter, with message events only.
  ParseError("n NOTIFY SET (SELECTED (MailboxName))");
  ParseError("n NOTIFY SET (SELECTED NONE) (SELECTED-DELAYED NONE)");
  // fetch-att only for the selected mailbox.
  ParseError("n NOTIFY SET (PERSONAL (MessageNew (UID) MessageExpunge))");
  ParseError("n NOTIFY SET (PERSONAL (MessageNew MessageNew MessageExpunge))");
  ParseError("n NOTIFY SET (ELSEWHERE (MessageNew MessageExpunge))");
  ParseError("n NOTIFY SET");
  ParseError("n NOTIFY SET ()");
  ParseError("n NOTIFY SET (MAILBOXES () (MessageNew MessageExpunge))");
  ParseError("n NOTIFY");
}

TEST(ImapParse, MailboxCommands) {
  Command c = ParseRoundTrip("a CREATE \"Sent Items\"");
  EXPECT_EQ(c.As<CreateArgs>().mailbox, "Sent Items");
  EXPECT_TRUE(c.As<CreateArgs>().special_use.empty());
  c = ParseRoundTrip("t1 CREATE MySpecialArchive (USE (\\archive))");  // RFC 6154 section 5.2
  EXPECT_EQ(c.As<CreateArgs>().special_use, std::vector<std::string>{"\\archive"});
  c = Parse("t1 CREATE Junk (USE (\\Junk \\Trash))");
  EXPECT_EQ(c.As<CreateArgs>().special_use.size(), 2u);
  ParseError("t1 CREATE x (USE (Junk))");
  ParseError("t1 CREATE x (FOO (\\Junk))");

  c = ParseRoundTrip("a DELETE \"Old/&ZeVnLIqe-\"");
  EXPECT_EQ(c.As<MailboxArgs>().mailbox, "Old/&ZeVnLIqe-");
  c = ParseRoundTrip("a RENAME \"Drafts\" \"Old Drafts\"");
  EXPECT_EQ(c.As<RenameArgs>().from, "Drafts");
  EXPECT_EQ(c.As<RenameArgs>().to, "Old Drafts");
  EXPECT_EQ(ParseRoundTrip("a SUBSCRIBE Lists/hato").As<MailboxArgs>().mailbox, "Lists/hato");
  EXPECT_EQ(ParseRoundTrip("a UNSUBSCRIBE {4}\r\nJunk").As<MailboxArgs>().mailbox, "Junk");
  ParseError("a RENAME Drafts");
}

TEST(ImapParse, List) {
  Command c = ParseRoundTrip("a0002 LIST \"\" \"\"");
  const auto& l = c.As<ListArgs>();
  EXPECT_EQ(l.reference, "");
  EXPECT_EQ(l.patterns, std::vector<std::string>{""});
  EXPECT_FALSE(l.extended);

  c = ParseRoundTrip("4 list \"\" \"*\"");
  EXPECT_EQ(c.As<ListArgs>().patterns[0], "*");
  c = ParseRoundTrip("a LIST ~/Mail/ %");
  EXPECT_EQ(c.As<ListArgs>().reference, "~/Mail/");
  EXPECT_EQ(c.As<ListArgs>().patterns[0], "%");
  c = ParseRoundTrip("a LIST \"\" INBOX.*]");
  EXPECT_EQ(c.As<ListArgs>().patterns[0], "INBOX.*]");

  // LIST-EXTENDED (RFC 5258 section 5 examples), SPECIAL-USE, LIST-STATUS.
  c = ParseRoundTrip("A02 LIST (SUBSCRIBED) \"\" \"*\"");
  EXPECT_TRUE(c.As<ListArgs>().select_subscribed);
  EXPECT_TRUE(c.As<ListArgs>().extended);
  c = ParseRoundTrip("A03 LIST () \"\" \"%\" RETURN (CHILDREN)");
  EXPECT_TRUE(c.As<ListArgs>().return_children);
  c = ParseRoundTrip("A04 LIST (REMOTE SUBSCRIBED RECURSIVEMATCH) \"\" (\"Foo/*\" \"Bar/%\")");
  EXPECT_TRUE(c.As<ListArgs>().select_recursive_match);
  EXPECT_TRUE(c.As<ListArgs>().select_remote);
  EXPECT_EQ(c.As<ListArgs>().patterns, (std::vector<std::string>{"Foo/*", "Bar/%"}));
  c = ParseRoundTrip("3 list (subscribed) \"\" \"*\" return (special-use)");  // Thunderbird
  EXPECT_TRUE(c.As<ListArgs>().return_special_use);
  c = ParseRoundTrip("t1 LIST (SPECIAL-USE) \"\" \"*\"");
  EXPECT_TRUE(c.As<ListArgs>().select_special_use);
  c = ParseRoundTrip(
      "A01 LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN) SUBSCRIBED CHILDREN)");  // RFC 5819
  ASSERT_TRUE(c.As<ListArgs>().return_status.has_value());
  EXPECT_EQ(*c.As<ListArgs>().return_status,
            (std::vector<StatusItem>{StatusItem::kMessages, StatusItem::kUnseen}));
  EXPECT_TRUE(c.As<ListArgs>().return_subscribed);

  ParseError("A05 LIST (RECURSIVEMATCH) \"\" \"%\"");  // RFC 5258 section 3.1
  ParseError("A05 LIST (REMOTE RECURSIVEMATCH) \"\" \"%\"");
  ParseError("A LIST (FOO) \"\" \"%\"");
  ParseError("A LIST \"\" % RETURN (FOO)");
  ParseError("A LIST \"\" % RETURN (STATUS ())");
  ParseError("A LIST \"\" % SOMETHING");
  ParseError("A LIST \"\" ()");
  ParseError("A LIST \"\"");

  c = ParseRoundTrip("a0003 LSUB \"\" \"*\"");
  EXPECT_EQ(c.verb, Verb::kLsub);
  EXPECT_EQ(c.As<ListArgs>().patterns[0], "*");
  ParseError("a LSUB (SUBSCRIBED) \"\" \"*\"");
}

TEST(ImapParse, Status) {
  Command c =
      ParseRoundTrip("11.1 STATUS \"INBOX\" (HIGHESTMODSEQ MESSAGES UIDNEXT UIDVALIDITY UNSEEN)");
  EXPECT_EQ(c.As<StatusArgs>().mailbox, "INBOX");
  EXPECT_EQ(c.As<StatusArgs>().items,
            (std::vector<StatusItem>{StatusItem::kHighestModSeq, StatusItem::kMessages,
                                     StatusItem::kUidNext, StatusItem::kUidValidity,
                                     StatusItem::kUnseen}));
  c = ParseRoundTrip("a status Sent (recent size appendlimit deleted)");
  EXPECT_EQ(c.As<StatusArgs>().items.back(), StatusItem::kDeleted);
  ParseError("a STATUS INBOX ()");
  ParseError("a STATUS INBOX (MESSAGES FOO)");
  ParseError("a STATUS INBOX MESSAGES");
}

TEST(ImapParse, Append) {
  std::string msg = "From: a@example.test\r\nSubject: hi\r\n\r\nbody\r\n";
  std::string line =
      "A003 APPEND saved-messages (\\Seen) {" + std::to_string(msg.size()) + "}\r\n" + msg;
  Command c = ParseRoundTrip(line);
  const auto& a = c.As<AppendArgs>();
  EXPECT_EQ(a.mailbox, "saved-messages");
  EXPECT_EQ(a.flags, std::vector<std::string>{"\\Seen"});
  EXPECT_FALSE(a.date_time.has_value());
  EXPECT_EQ(a.message, msg);

  c = ParseRoundTrip(
      "9 APPEND \"INBOX\" (\\seen $Forwarded) \"17-Jul-1996 02:44:25 -0700\" {5+}\r\nab cd");
  EXPECT_EQ(c.As<AppendArgs>().flags, (std::vector<std::string>{"\\Seen", "$Forwarded"}));
  DateTime dt = *c.As<AppendArgs>().date_time;
  EXPECT_EQ(dt.date, (Date{1996, 7, 17}));
  EXPECT_EQ(dt.hour, 2);
  EXPECT_EQ(dt.zone_minutes, -420);
  c = Parse(std::string("9 APPEND Sent {3}\r\na\0b", 22));
  EXPECT_EQ(c.As<AppendArgs>().message, std::string("a\0b", 3));  // NUL tolerated in the message
  c = ParseRoundTrip("a APPEND Drafts \" 5-Nov-2024 09:00:00 +0000\" {1}\r\nx");
  EXPECT_EQ(c.As<AppendArgs>().date_time->date.day, 5);
  c = ParseRoundTrip("a APPEND Drafts () {0}\r\n");
  EXPECT_TRUE(c.As<AppendArgs>().flags.empty());

  ParseError("a APPEND INBOX \"hello\"");  // not a literal
  ParseError("a APPEND INBOX \"31-Feb-2024 00:00:00 +0000\" {1}\r\nx");
  ParseError("a APPEND INBOX \"1-Jan-2024 24:00:00 +0000\" {1}\r\nx");
  // MULTIAPPEND (RFC 3502 section 6): more messages, each with its flags and date.
  c = ParseRoundTrip(
      "a APPEND INBOX {1}\r\nx (\\Seen) \"1-Jan-2024 00:00:00 +0000\" {1}\r\ny {0}\r\n");
  ASSERT_EQ(c.As<AppendArgs>().more.size(), 2u);
  EXPECT_EQ(c.As<AppendArgs>().message, "x");
  EXPECT_EQ(c.As<AppendArgs>().more[0].message, "y");
  EXPECT_EQ(c.As<AppendArgs>().more[0].flags, std::vector<std::string>{"\\Seen"});
  EXPECT_TRUE(c.As<AppendArgs>().more[0].date_time.has_value());
  ParseError("a APPEND INBOX {1}\r\nx ");
  ParseError("a APPEND INBOX {1}\r\nx (\\Seen)");
  // literal8 (RFC 3516 section 4.4): any octet, NUL included.
  using namespace std::literals;
  EXPECT_EQ(Parse("a APPEND INBOX ~{3}\r\nx\0y"sv).As<AppendArgs>().message, "x\0y"sv);
  ParseError("a APPEND INBOX (\\Seen");
}

TEST(ImapParse, UidExpungeCopyMove) {
  Command c = ParseRoundTrip("15 UID EXPUNGE 3000:3002,3004");  // RFC 4315
  EXPECT_TRUE(c.uid);
  EXPECT_EQ(c.verb, Verb::kExpunge);
  EXPECT_EQ(c.As<ExpungeArgs>().set.ToString(), "3000:3002,3004");
  ParseError("a UID EXPUNGE");
  c = ParseRoundTrip("a0010 COPY 2:4 MEETING");
  EXPECT_FALSE(c.uid);
  EXPECT_EQ(c.As<CopyArgs>().mailbox, "MEETING");
  c = ParseRoundTrip("14 uid move 3,5 \"Trash\"");  // Thunderbird
  EXPECT_TRUE(c.uid);
  EXPECT_EQ(c.verb, Verb::kMove);
  EXPECT_EQ(c.As<CopyArgs>().set.ToString(), "3,5");
  c = ParseRoundTrip("a MOVE 1:* inbox");
  EXPECT_EQ(c.As<CopyArgs>().mailbox, "INBOX");
  ParseError("a UID LOGIN a b");
  ParseError("a UID");
  ParseError("a UID FOO 1");
  ParseError("a COPY 1");
}

TEST(ImapParse, IdEnableQuota) {
  Command c = ParseRoundTrip("3 ID (\"name\" \"Thunderbird\" \"version\" \"115.3.1\")");
  const auto& p = *c.As<IdArgs>().params;
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].first, "name");
  EXPECT_EQ(*p[1].second, "115.3.1");
  c = ParseRoundTrip(
      "2.1 ID (\"name\" \"Mac OS X Mail\" \"version\" \"16.0 (3731.400.51.1.1)\" \"os\" \"macOS\" "
      "\"os-version\" \"13.4 (22F66)\" \"vendor\" NIL)");
  EXPECT_FALSE(c.As<IdArgs>().params->back().second.has_value());
  EXPECT_FALSE(ParseRoundTrip("a ID NIL").As<IdArgs>().params.has_value());
  EXPECT_TRUE(ParseRoundTrip("a ID ()").As<IdArgs>().params->empty());
  ParseError("a ID (\"name\")");
  ParseError("a ID");

  c = ParseRoundTrip("4 ENABLE CONDSTORE qresync UTF8=ACCEPT");
  EXPECT_EQ(c.As<EnableArgs>().capabilities,
            (std::vector<std::string>{"CONDSTORE", "QRESYNC", "UTF8=ACCEPT"}));
  ParseError("a ENABLE");

  EXPECT_EQ(ParseRoundTrip("17 getquotaroot \"INBOX\"").As<MailboxArgs>().mailbox, "INBOX");
  EXPECT_EQ(ParseRoundTrip("G0001 GETQUOTA \"!partition/sda4\"").As<QuotaRootArgs>().root,
            "!partition/sda4");
  c = ParseRoundTrip("S0000 SETQUOTA \"#user/alice\" (STORAGE 510 message 1000)");
  EXPECT_EQ(c.As<SetQuotaArgs>().root, "#user/alice");
  EXPECT_EQ(c.As<SetQuotaArgs>().limits,
            (std::vector<std::pair<std::string, uint64_t>>{{"STORAGE", 510}, {"MESSAGE", 1000}}));
  EXPECT_TRUE(ParseRoundTrip("S SETQUOTA \"\" ()").As<SetQuotaArgs>().limits.empty());
  ParseError("S SETQUOTA x (STORAGE)");
}

// ---- FETCH ----

TEST(ImapFetch, ThunderbirdHeaders) {
  Command c = ParseRoundTrip(
      "a1 UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject "
      "Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type "
      "Reply-To)])");
  EXPECT_TRUE(c.uid);
  const auto& f = c.As<FetchArgs>();
  EXPECT_EQ(f.set.ToString(), "1:*");
  ASSERT_EQ(f.items.size(), 4u);
  EXPECT_EQ(f.items[0].att, FetchAtt::kUid);
  EXPECT_EQ(f.items[1].att, FetchAtt::kRfc822Size);
  EXPECT_EQ(f.items[2].att, FetchAtt::kFlags);
  const FetchItem& b = f.items[3];
  EXPECT_EQ(b.att, FetchAtt::kBodySection);
  EXPECT_TRUE(b.peek);
  EXPECT_EQ(b.section.text, Section::Text::kHeaderFields);
  EXPECT_EQ(b.section.fields.size(), 14u);
  EXPECT_EQ(b.section.fields[6], "Message-ID");
  EXPECT_EQ(b.section.canonical,
            "HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References "
            "Newsgroups In-Reply-To Content-Type Reply-To)");
}

TEST(ImapFetch, ClientLines) {
  // mutt's header cache fetch.
  Command c = ParseRoundTrip(
      "a0007 UID FETCH 1:4 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (DATE "
      "FROM SENDER SUBJECT TO CC MESSAGE-ID REFERENCES CONTENT-TYPE CONTENT-DESCRIPTION "
      "IN-REPLY-TO REPLY-TO LINES LIST-POST X-LABEL X-ORIGINAL-TO)])");
  EXPECT_EQ(c.As<FetchArgs>().items.size(), 5u);
  // mbsync.
  c = ParseRoundTrip(
      "5 UID FETCH 1:1000000000 (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (X-TUID)])");
  EXPECT_EQ(c.As<FetchArgs>().set.ranges[0].last, 1000000000u);
  c = ParseRoundTrip("6 UID FETCH 5 (BODY.PEEK[])");
  EXPECT_EQ(c.As<FetchArgs>().items[0].section.canonical, "");
  EXPECT_TRUE(c.As<FetchArgs>().items[0].section.part.empty());
  // Apple Mail.
  c = ParseRoundTrip("10.1 UID FETCH 100 (BODY.PEEK[HEADER] BODY.PEEK[TEXT]<0.4096>)");
  const auto& items = c.As<FetchArgs>().items;
  EXPECT_EQ(items[0].section.text, Section::Text::kHeader);
  EXPECT_EQ(items[1].section.text, Section::Text::kText);
  EXPECT_EQ(items[1].partial->offset, 0u);
  EXPECT_EQ(items[1].partial->count, 4096u);
  // RFC 3501 examples.
  c = ParseRoundTrip("A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])");
  EXPECT_FALSE(c.As<FetchArgs>().items[1].peek);
  c = ParseRoundTrip("a FETCH 1 BODYSTRUCTURE");
  EXPECT_EQ(c.As<FetchArgs>().items[0].att, FetchAtt::kBodyStructure);
  c = ParseRoundTrip("a fetch 1 body[1.2.mime]");
  EXPECT_EQ(c.As<FetchArgs>().items[0].section.part, (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(c.As<FetchArgs>().items[0].section.text, Section::Text::kMime);
  EXPECT_EQ(c.As<FetchArgs>().items[0].section.canonical, "1.2.MIME");
  c = ParseRoundTrip(
      "a FETCH 1 (BODY[3] BODY[4.1.TEXT]<10.20> BODY[2.HEADER.FIELDS.NOT (x \"y\")])");
  EXPECT_EQ(c.As<FetchArgs>().items[0].section.canonical, "3");
  EXPECT_EQ(c.As<FetchArgs>().items[1].section.canonical, "4.1.TEXT");
  EXPECT_EQ(c.As<FetchArgs>().items[2].section.canonical, "2.HEADER.FIELDS.NOT (x y)");
  c = ParseRoundTrip("a FETCH 1 (RFC822 RFC822.HEADER RFC822.TEXT ENVELOPE BODY MODSEQ)");
  EXPECT_EQ(c.As<FetchArgs>().items[4].att, FetchAtt::kBody);
  EXPECT_EQ(c.As<FetchArgs>().items[5].att, FetchAtt::kModSeq);
  c = ParseRoundTrip("a FETCH 1 (BINARY[1] BINARY.PEEK[2.3]<0.100> BINARY.SIZE[1] BINARY[])");
  EXPECT_EQ(c.As<FetchArgs>().items[0].att, FetchAtt::kBinary);
  EXPECT_TRUE(c.As<FetchArgs>().items[1].peek);
  EXPECT_EQ(c.As<FetchArgs>().items[2].att, FetchAtt::kBinarySize);
}

TEST(ImapFetch, Macros) {
  auto atts = [](std::string_view line) {
    std::vector<FetchAtt> out;
    Command c = Parse(line);
    for (const auto& it : c.As<FetchArgs>().items) out.push_back(it.att);
    return out;
  };
  EXPECT_EQ(
      atts("a FETCH 1 FAST"),
      (std::vector<FetchAtt>{FetchAtt::kFlags, FetchAtt::kInternalDate, FetchAtt::kRfc822Size}));
  EXPECT_EQ(atts("a FETCH 1 all").size(), 4u);
  EXPECT_EQ(atts("a FETCH 1:* FULL").back(), FetchAtt::kBody);
  ParseError("a FETCH 1 (ALL)");  // macros only stand alone
  ParseError("a FETCH 1 (FAST FLAGS)");
}

TEST(ImapFetch, Modifiers) {
  Command c = ParseRoundTrip("13 UID FETCH 5:* (FLAGS) (CHANGEDSINCE 1234)");
  EXPECT_EQ(*c.As<FetchArgs>().changed_since, 1234u);
  EXPECT_FALSE(c.As<FetchArgs>().vanished);
  c = ParseRoundTrip("s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)");  // RFC 7162
  EXPECT_TRUE(c.As<FetchArgs>().vanished);
  ParseError("a FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)");  // not UID FETCH
  ParseError("a UID FETCH 1:* (FLAGS) (VANISHED)");             // no CHANGEDSINCE
  ParseError("a FETCH 1 (FLAGS) (CHANGEDSINCE 0)");
  ParseError("a FETCH 1 (FLAGS) (FOO)");
}

TEST(ImapFetch, Rejects) {
  for (const char* bad : {
           "a FETCH 1",
           "a FETCH 1 ()",
           "a FETCH 1 (FLAGS",
           "a FETCH 1 (FLAGS  UID)",
           "a FETCH 1 FOO",
           "a FETCH 1 BODY.PEEK",
           "a FETCH 1 BODY[",
           "a FETCH 1 BODY[0]",
           "a FETCH 1 BODY[1.]",
           "a FETCH 1 BODY[.1]",
           "a FETCH 1 BODY[MIME]",  // MIME needs a part
           "a FETCH 1 BODY[1 HEADER]",
           "a FETCH 1 BODY[HEADER.FIELDS]",
           "a FETCH 1 BODY[HEADER.FIELDS ()]",
           "a FETCH 1 BODY[HEADER.FIELDS (\"a:b\")]",
           "a FETCH 1 BODY[HEADER.FIELDS (\"\")]",
           "a FETCH 1 BODY[TEXT.FOO]",
           "a FETCH 1 BODY[]<0>",
           "a FETCH 1 BODY[]<0.0>",
           "a FETCH 1 BODY[]<1.2",
           "a FETCH 1 BINARY[HEADER]",
           "a FETCH 1 BINARY.SIZE",
           "a FETCH * (FLAGS) extra",
       }) {
    ParseError(bad);
  }
}

// ---- STORE ----

TEST(ImapStore, Forms) {
  Command c = ParseRoundTrip("11 uid store 4 +Flags (\\Seen)");
  const auto& s = c.As<StoreArgs>();
  EXPECT_EQ(s.mode, StoreMode::kAdd);
  EXPECT_FALSE(s.silent);
  EXPECT_EQ(s.flags, std::vector<std::string>{"\\Seen"});
  c = ParseRoundTrip("a0008 UID STORE 3 +FLAGS.SILENT (\\Seen \\Deleted)");
  EXPECT_TRUE(c.As<StoreArgs>().silent);
  c = ParseRoundTrip("A003 STORE 2:4 -FLAGS \\Deleted $Junk");  // without parentheses
  EXPECT_EQ(c.As<StoreArgs>().mode, StoreMode::kRemove);
  EXPECT_EQ(c.As<StoreArgs>().flags, (std::vector<std::string>{"\\Deleted", "$Junk"}));
  c = ParseRoundTrip("a STORE 1 FLAGS ()");
  EXPECT_EQ(c.As<StoreArgs>().mode, StoreMode::kReplace);
  EXPECT_TRUE(c.As<StoreArgs>().flags.empty());
  c = ParseRoundTrip("d105 STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)");
  EXPECT_EQ(*c.As<StoreArgs>().unchanged_since, 320162338u);
  c = ParseRoundTrip("a STORE 1 (UNCHANGEDSINCE 0) FLAGS (\\Seen)");  // valzer
  EXPECT_EQ(*c.As<StoreArgs>().unchanged_since, 0u);
  ParseError("a STORE 1 +FLAGS");
  ParseError("a STORE 1 FLAG (\\Seen)");
  ParseError("a STORE 1 +FLAGS.LOUD (\\Seen)");
  ParseError("a STORE 1 +FLAGS (\\*)");
  ParseError("a STORE 1 (FOO 1) FLAGS (\\Seen)");
  ParseError("a STORE 1 FLAGS (\\Seen");
}

// ---- SEARCH ----

TEST(ImapSearch, Rfc3501Examples) {
  Command c = ParseRoundTrip("A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"");
  const SearchArgs& s = c.As<SearchArgs>();
  EXPECT_FALSE(s.charset.has_value());
  EXPECT_FALSE(s.esearch);
  ASSERT_EQ(s.key.op, SearchOp::kAnd);
  ASSERT_EQ(s.key.children.size(), 3u);
  EXPECT_EQ(s.key.children[0].op, SearchOp::kFlagged);
  EXPECT_EQ(s.key.children[1].op, SearchOp::kSince);
  EXPECT_EQ(s.key.children[1].date, (Date{1994, 2, 1}));
  EXPECT_EQ(s.key.children[2].op, SearchOp::kNot);
  EXPECT_EQ(s.key.children[2].children[0].op, SearchOp::kFrom);
  EXPECT_EQ(s.key.children[2].children[0].text, "Smith");

  c = ParseRoundTrip("A284 SEARCH CHARSET UTF-8 TEXT {6}\r\nXXXXXX");
  EXPECT_EQ(*c.As<SearchArgs>().charset, "UTF-8");
  EXPECT_EQ(c.As<SearchArgs>().key.children[0].text, "XXXXXX");
}

// RFC 5267 section 4: the UPDATE and CONTEXT return options and CANCELUPDATE.
TEST(ImapSearch, ContextUpdate) {
  Command c = ParseRoundTrip("B01 UID SEARCH RETURN (UPDATE COUNT) DELETED KEYWORD $Junk");
  const SearchArgs& s = c.As<SearchArgs>();
  EXPECT_TRUE(s.esearch);
  EXPECT_TRUE(s.return_update);
  EXPECT_TRUE(s.return_count);
  EXPECT_FALSE(s.return_context);
  c = ParseRoundTrip("A01 SEARCH RETURN (CONTEXT UPDATE PARTIAL 1:10) SEEN");
  EXPECT_TRUE(c.As<SearchArgs>().return_context);
  EXPECT_TRUE(c.As<SearchArgs>().partial.has_value());
  c = ParseRoundTrip("C01 UID SORT RETURN (UPDATE) (DATE) UTF-8 ALL");
  EXPECT_TRUE(c.As<SearchArgs>().return_update);
  c = ParseRoundTrip("B03 CANCELUPDATE \"B01\" \"B02\"");
  EXPECT_EQ(c.verb, Verb::kCancelUpdate);
  EXPECT_EQ(c.As<CancelUpdateArgs>().tags, (std::vector<std::string>{"B01", "B02"}));
  ParseError("B03 CANCELUPDATE");
  ParseError("B03 CANCELUPDATE B01");      // quoted only (section 5)
  ParseError("B03 CANCELUPDATE \"a b\"");  // not a tag
  ParseError("B03 CANCELUPDATE \"\"");
}

TEST(ImapSearch, EveryKey) {
  Command c = ParseRoundTrip(
      "a SEARCH ALL ANSWERED BCC b BEFORE 1-Jan-2020 BODY x CC c DELETED DRAFT FLAGGED FROM f "
      "HEADER X-Mailer \"mutt\" KEYWORD $Label1 LARGER 100 NEW OLD ON \"02-Mar-2021\" RECENT SEEN "
      "SENTBEFORE 3-Apr-2022 SENTON 4-May-2023 SENTSINCE 5-Jun-2024 SINCE 6-Jul-2025 SMALLER "
      "4294967295 SUBJECT \"hello world\" TEXT t TO t@example.test UID 1:5,9 UNANSWERED UNDELETED "
      "UNDRAFT UNFLAGGED UNKEYWORD $Junk UNSEEN 2:* MODSEQ 5");
  const auto& k = c.As<SearchArgs>().key.children;
  ASSERT_EQ(k.size(), 35u);
  EXPECT_EQ(k[10].op, SearchOp::kHeader);
  EXPECT_EQ(k[10].field, "X-Mailer");
  EXPECT_EQ(k[10].text, "mutt");
  EXPECT_EQ(k[11].text, "$Label1");
  EXPECT_EQ(k[12].number, 100u);
  EXPECT_EQ(k[15].date, (Date{2021, 3, 2}));
  EXPECT_EQ(k[22].number, 4294967295u);
  EXPECT_EQ(k[26].set.ToString(), "1:5,9");
  EXPECT_EQ(k[32].op, SearchOp::kUnseen);
  EXPECT_EQ(k[33].op, SearchOp::kSequenceSet);
  EXPECT_EQ(k[33].set.ToString(), "2:*");
  EXPECT_EQ(k[34].op, SearchOp::kModSeq);
  EXPECT_EQ(k[34].number, 5u);
}

TEST(ImapSearch, Nesting) {
  Command c = ParseRoundTrip("7.1 UID SEARCH 1:* NOT DELETED");  // Apple Mail
  EXPECT_TRUE(c.uid);
  c = ParseRoundTrip("a SEARCH OR (FROM a SUBJECT b) NOT (OR SEEN (DELETED))");
  const SearchKey& o = c.As<SearchArgs>().key.children[0];
  EXPECT_EQ(o.op, SearchOp::kOr);
  ASSERT_EQ(o.children.size(), 2u);
  EXPECT_EQ(o.children[0].op, SearchOp::kAnd);
  EXPECT_EQ(o.children[0].children.size(), 2u);
  EXPECT_EQ(o.children[1].op, SearchOp::kNot);
  EXPECT_EQ(o.children[1].children[0].op, SearchOp::kAnd);
  EXPECT_EQ(o.children[1].children[0].children[0].op, SearchOp::kOr);
  c = ParseRoundTrip("a SEARCH OR OR FROM a FROM b FROM c");
  EXPECT_EQ(c.As<SearchArgs>().key.children[0].children[0].op, SearchOp::kOr);
  ParseError("a SEARCH");
  ParseError("a SEARCH ()");
  ParseError("a SEARCH OR SEEN");
  ParseError("a SEARCH NOT");
  ParseError("a SEARCH (SEEN");
  ParseError("a SEARCH SEEN)");
  ParseError("a SEARCH FOO");
  ParseError("a SEARCH SINCE 1-Foo-2020");
  ParseError("a SEARCH SINCE 30-Feb-2020");
  ParseError("a SEARCH SINCE 1-Jan-20");
  ParseError("a SEARCH LARGER x");
  ParseError("a SEARCH KEYWORD \\Seen");
  ParseError("a SEARCH HEADER Subject");
}

TEST(ImapSearch, Limits) {
  Limits lim;
  lim.max_depth = 4;
  EXPECT_TRUE(ParseCommand("a SEARCH NOT NOT NOT SEEN", lim).ok());
  auto deep = ParseCommand("a SEARCH NOT NOT NOT NOT SEEN", lim);
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.error().kind, ErrorKind::kTooLarge);
  EXPECT_FALSE(ParseCommand("a SEARCH ((((SEEN))))", lim).ok());
  // Default depth 32: 10000 nested parentheses fail cleanly (no stack overflow).
  std::string nested = "a SEARCH " + std::string(10000, '(') + "SEEN" + std::string(10000, ')');
  EXPECT_EQ(ParseCommand(nested).error().kind, ErrorKind::kTooLarge);
  lim = Limits{};
  lim.max_search_keys = 3;
  EXPECT_TRUE(ParseCommand("a SEARCH SEEN DRAFT FLAGGED", lim).ok());
  EXPECT_EQ(ParseCommand("a SEARCH SEEN DRAFT FLAGGED OLD", lim).error().kind,
            ErrorKind::kTooLarge);
  EXPECT_EQ(ParseCommand("a SEARCH OR SEEN NOT DRAFT", lim).error().kind, ErrorKind::kTooLarge);
}

TEST(ImapSearch, ExtensionsSyntax) {
  Command c = ParseRoundTrip("A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994");  // 4731
  const SearchArgs& s = c.As<SearchArgs>();
  EXPECT_TRUE(s.esearch);
  EXPECT_TRUE(s.return_min);
  EXPECT_TRUE(s.return_count);
  EXPECT_FALSE(s.return_all);
  c = ParseRoundTrip("A283 UID SEARCH RETURN () CHARSET UTF-8 SUBJECT {4}\r\n\xc3\xa9t\xc3");
  EXPECT_TRUE(c.As<SearchArgs>().esearch);
  EXPECT_FALSE(c.As<SearchArgs>().return_all);
  c = ParseRoundTrip("a SEARCH RETURN (ALL MAX SAVE) SEEN");
  EXPECT_TRUE(c.As<SearchArgs>().return_save);
  ParseError("a SEARCH RETURN (FOO) SEEN");
  ParseError("a SEARCH RETURN (MIN)");
  ParseError("a SEARCH CHARSET UTF-8 RETURN (MIN) SEEN");  // RETURN comes first
  // MODSEQ with an entry (RFC 7162 section 3.1.5).
  c = ParseRoundTrip("a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338");
  const SearchKey& m = c.As<SearchArgs>().key.children[0];
  EXPECT_EQ(m.field, "/flags/\\draft");
  EXPECT_EQ(m.entry_type, "all");
  EXPECT_EQ(m.number, 620162338u);
  ParseError("a SEARCH MODSEQ \"/flags/\\\\draft\" everyone 5");
  ParseError("a SEARCH MODSEQ \"/other/x\" all 5");
  ParseError("a SEARCH MODSEQ");
}

// ---- The reader ----

// Feeds `input` in one piece and collects events until NeedMore.
std::vector<ReadResult> Drain(CommandReader& r) {
  std::vector<ReadResult> out;
  for (int i = 0; i < 1000; ++i) {
    ReadResult ev = r.Next();
    if (std::holds_alternative<NeedMore>(ev)) break;
    bool dead = std::holds_alternative<ReadError>(ev) && std::get<ReadError>(ev).close;
    out.push_back(std::move(ev));
    if (dead) break;
  }
  return out;
}

// A compact description of events for comparisons: "C:tag:VERB", "+:n", "E:tag:kind:discarded".
std::string Describe(const ReadResult& ev) {
  if (const auto* c = std::get_if<Command>(&ev)) {
    std::string s = "C:" + c->tag + ":" + VerbName(c->verb);
    if (c->verb == Verb::kAppend) s += ":" + std::to_string(c->As<AppendArgs>().message.size());
    if (c->verb == Verb::kLogin) s += ":" + c->As<LoginArgs>().password;
    return s;
  }
  if (const auto* n = std::get_if<NeedContinuation>(&ev)) return "+:" + std::to_string(n->size);
  if (const auto* e = std::get_if<ReadError>(&ev)) {
    return "E:" + e->tag.value_or("*") + ":" + std::to_string(static_cast<int>(e->kind)) + ":" +
           std::to_string(e->discarded) + (e->close ? ":close" : "");
  }
  return "need";
}

std::vector<std::string> FeedAll(std::string_view input, const Limits& limits = {},
                                 size_t chunk = 0) {
  CommandReader r(limits);
  std::vector<std::string> out;
  if (chunk == 0) chunk = input.size() + 1;
  for (size_t i = 0; i < input.size(); i += chunk) {
    r.Feed(input.substr(i, chunk));
    for (const auto& ev : Drain(r)) out.push_back(Describe(ev));
  }
  return out;
}

TEST(ImapReader, Pipelined) {
  auto ev = FeedAll("a1 NOOP\r\na2 CAPABILITY\nA3 UID FETCH 1:* (FLAGS)\r\n");
  EXPECT_EQ(ev, (std::vector<std::string>{"C:a1:NOOP", "C:a2:CAPABILITY", "C:A3:FETCH"}));
  CommandReader r;
  r.Feed("a1 NOOP\r\na2 NO");
  EXPECT_EQ(Describe(r.Next()), "C:a1:NOOP");
  EXPECT_TRUE(std::holds_alternative<NeedMore>(r.Next()));
  EXPECT_TRUE(r.in_command());
  r.Feed("OP\r\n");
  EXPECT_EQ(Describe(r.Next()), "C:a2:NOOP");
  EXPECT_FALSE(r.in_command());
  EXPECT_EQ(r.buffered(), 0u);
}

TEST(ImapReader, SynchronizingLiteral) {
  CommandReader r;
  r.Feed("A003 APPEND saved-messages (\\Seen) {12}\r\n");
  auto ev = r.Next();
  ASSERT_TRUE(std::holds_alternative<NeedContinuation>(ev));
  EXPECT_EQ(std::get<NeedContinuation>(ev).size, 12u);
  // Asked once: more Next() calls wait for the bytes.
  EXPECT_TRUE(std::holds_alternative<NeedMore>(r.Next()));
  r.Feed("Hello Joe!\r\n");
  EXPECT_TRUE(std::holds_alternative<NeedMore>(r.Next()));
  r.Feed("\r\n");
  ev = r.Next();
  ASSERT_TRUE(std::holds_alternative<Command>(ev));
  EXPECT_EQ(std::get<Command>(ev).As<AppendArgs>().message, "Hello Joe!\r\n");
}

TEST(ImapReader, TwoLiteralsAndLiteralPlus) {
  auto ev = FeedAll("a LOGIN {5}\r\nalice {6}\r\nsecret\r\nb LOGIN {3+}\r\nbob {2+}\r\npw\r\n");
  EXPECT_EQ(ev, (std::vector<std::string>{"+:5", "+:6", "C:a:LOGIN:secret", "C:b:LOGIN:pw"}));
  // A literal that contains CRLF and "{5}" does not confuse the framing.
  ev = FeedAll("a LOGIN {9}\r\nx{5}\r\nab\r {3}\r\n\r\n\r\r\nb NOOP\r\n");
  EXPECT_EQ(ev, (std::vector<std::string>{"+:9", "+:3", "C:a:LOGIN:\r\n\r", "C:b:NOOP"}));
}

TEST(ImapReader, SplitAtEveryOffset) {
  std::string msg = "From: x@example.test\r\nSubject: {5}\r\n\r\nline\r\n";
  std::string input =
      "t1 CAPABILITY\r\nt2 LOGIN {5}\r\nalice \"pw\"\r\n"
      "t3 APPEND Sent (\\Seen) \"01-Jan-2024 10:00:00 +0100\" {" +
      std::to_string(msg.size()) + "}\r\n" + msg +
      "\r\nt4 APPEND Drafts {3+}\r\nabc\r\nt5 UID FETCH 1:* (BODY.PEEK[])\nt6 "
      "BOGUS\r\nt7 NOOP\r\n";
  auto whole = FeedAll(input);
  EXPECT_EQ(whole, (std::vector<std::string>{
                       "C:t1:CAPABILITY", "+:5", "C:t2:LOGIN:pw", "+:" + std::to_string(msg.size()),
                       "C:t3:APPEND:" + std::to_string(msg.size()), "C:t4:APPEND:3", "C:t5:FETCH",
                       "E:t6:0:10", "C:t7:NOOP"}));
  for (size_t split = 0; split <= input.size(); ++split) {
    CommandReader r;
    std::vector<std::string> got;
    r.Feed(input.substr(0, split));
    for (const auto& e : Drain(r)) got.push_back(Describe(e));
    r.Feed(input.substr(split));
    for (const auto& e : Drain(r)) got.push_back(Describe(e));
    EXPECT_EQ(got, whole) << "split at " << split;
  }
  EXPECT_EQ(FeedAll(input, {}, 1), whole);
  EXPECT_EQ(FeedAll(input, {}, 7), whole);
}

TEST(ImapReader, SyntaxErrorsResync) {
  auto ev = FeedAll("a1 FOO\r\n\r\nbad+tag NOOP\r\na2 SELECT\r\na3 NOOP\r\n");
  EXPECT_EQ(
      ev, (std::vector<std::string>{"E:a1:0:8", "E:*:0:2", "E:*:0:14", "E:a2:0:11", "C:a3:NOOP"}));
  CommandReader r;
  r.Feed("x1 FETCH 1 (FLAGS\r\n");
  auto e = std::get<ReadError>(r.Next());
  EXPECT_EQ(e.kind, ReadErrorKind::kBad);
  EXPECT_EQ(FormatReadError(e), "x1 BAD expected ')'\r\n");
}

TEST(ImapReader, SyncLiteralPrefixIsChecked) {
  // A doomed command gets BAD instead of "+", and its literal is never expected.
  auto ev = FeedAll("a FOO {5}\r\nb SELECT INBOX {5}\r\nc NOOP\r\n");
  EXPECT_EQ(ev, (std::vector<std::string>{"E:a:0:11", "E:b:0:20", "C:c:NOOP"}));
  // A good prefix with a 0-byte literal still asks.
  ev = FeedAll("a LOGIN {0}\r\n {0}\r\n\r\n");
  EXPECT_EQ(ev, (std::vector<std::string>{"+:0", "+:0", "C:a:LOGIN:"}));
}

TEST(ImapReader, LiteralTooBigSynchronizing) {
  Limits lim;
  lim.max_literal = 100;
  CommandReader r(lim);
  r.Feed("A1 APPEND INBOX {101}\r\nA2 NOOP\r\n");
  auto e = std::get<ReadError>(r.Next());
  EXPECT_EQ(e.kind, ReadErrorKind::kTooBig);
  EXPECT_TRUE(e.synchronizing);
  EXPECT_FALSE(e.close);
  EXPECT_EQ(*e.tag, "A1");
  EXPECT_EQ(FormatReadError(e), "A1 NO [TOOBIG] literal too big\r\n");
  // The client did not send the literal: the next line is a command.
  EXPECT_EQ(Describe(r.Next()), "C:A2:NOOP");
}

TEST(ImapReader, LiteralTooBigNonSynchronizingIsSkipped) {
  Limits lim;
  lim.max_literal = 10;
  std::string input =
      "A1 APPEND INBOX {20+}\r\n" + std::string(20, 'x') + " more {3+}\r\nabc tail\r\nA2 NOOP\r\n";
  for (size_t chunk : {size_t{0}, size_t{1}, size_t{5}}) {
    auto ev = FeedAll(input, lim, chunk);
    ASSERT_EQ(ev.size(), 2u) << chunk;
    EXPECT_EQ(ev[0], "E:A1:1:" + std::to_string(input.size() - 9)) << chunk;
    EXPECT_EQ(ev[1], "C:A2:NOOP");
  }
  CommandReader r(lim);
  r.Feed("A1 APPEND INBOX {20+}\r\n" + std::string(20, 'x') + "\r\n");
  auto e = std::get<ReadError>(r.Next());
  EXPECT_FALSE(e.synchronizing);
  EXPECT_EQ(FormatReadError(e), "A1 BAD [TOOBIG] literal too big\r\n");
}

TEST(ImapReader, HugeNonSynchronizingLiteralCloses) {
  Limits lim;
  lim.max_discard = 1000;
  CommandReader r(lim);
  r.Feed("A1 APPEND INBOX {99999999999+}\r\nxxxx");
  auto e = std::get<ReadError>(r.Next());
  EXPECT_TRUE(e.close);
  EXPECT_EQ(FormatReadError(e), "* BYE literal too big\r\n");
  r.Feed("A2 NOOP\r\n");
  EXPECT_TRUE(std::get<ReadError>(r.Next()).close);  // dead from now on
  // Padded lengths read as huge; they cannot slip past the checks.
  CommandReader r2(lim);
  r2.Feed("A1 LOGIN {000000000000000000000000003+}\r\nabc x\r\n");
  EXPECT_TRUE(std::get<ReadError>(r2.Next()).close);
}

TEST(ImapReader, LineTooLong) {
  Limits lim;
  lim.max_line = 64;
  std::string longline = "L1 LOGIN " + std::string(100, 'a') + " b\r\n";
  for (size_t chunk : {size_t{0}, size_t{1}, size_t{10}}) {
    auto ev = FeedAll(longline + "L2 NOOP\r\n", lim, chunk);
    ASSERT_EQ(ev.size(), 2u) << chunk;
    EXPECT_EQ(ev[0], "E:L1:2:" + std::to_string(longline.size())) << chunk;
    EXPECT_EQ(ev[1], "C:L2:NOOP") << chunk;
  }
  // The skipped line announced a LITERAL+: its bytes are skipped too.
  std::string withlit = "L1 LOGIN " + std::string(100, 'a') + " {4+}\r\nL9 X\r\nL2 NOOP\r\n";
  auto ev = FeedAll(withlit, lim, 3);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1], "C:L2:NOOP");
  // A line that never ends is given up on past max_discard.
  lim.max_discard = 500;
  CommandReader r(lim);
  bool closed = false;
  for (int i = 0; i < 100 && !closed; ++i) {
    r.Feed(std::string(50, 'z'));
    for (const auto& e : Drain(r)) closed = closed || std::get<ReadError>(e).close;
  }
  EXPECT_TRUE(closed);
  EXPECT_LT(r.buffered(), 100u);  // nothing piles up
}

TEST(ImapReader, CommandAndLiteralCountLimits) {
  Limits lim;
  lim.max_literals = 2;
  auto ev = FeedAll(
      "a LOGIN {1+}\r\nx {1+}\r\ny\r\nb SEARCH TEXT {1+}\r\nx TEXT {1+}\r\ny TEXT "
      "{1+}\r\nz\r\nc NOOP\r\n",
      lim);
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0], "C:a:LOGIN:y");
  EXPECT_EQ(ev[1].substr(0, 6), "E:b:0:");
  EXPECT_EQ(ev[2], "C:c:NOOP");
  lim = Limits{};
  lim.max_command = 50;
  lim.max_literal = 40;
  ev = FeedAll("a LOGIN {30}\r\n", lim);  // 14 + 30 <= 50
  EXPECT_EQ(ev, std::vector<std::string>{"+:30"});
  ev = FeedAll("a LOGIN {40}\r\n", lim);  // 14 + 40 > 50
  EXPECT_EQ(ev, std::vector<std::string>{"E:a:1:14"});
}

TEST(ImapReader, NextLineForAuthenticateAndIdle) {
  CommandReader r;
  r.Feed("a AUTHENTICATE PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\nb IDLE\r\nDO");
  EXPECT_EQ(Describe(r.Next()), "C:a:AUTHENTICATE");
  auto line = r.NextLine();
  ASSERT_TRUE(std::holds_alternative<Line>(line));
  EXPECT_EQ(std::get<Line>(line).text, "AGFsaWNlAHNlY3JldA==");
  EXPECT_EQ(Describe(r.Next()), "C:b:IDLE");
  EXPECT_TRUE(std::holds_alternative<NeedMore>(r.NextLine()));
  r.Feed("NE\r\nc NOOP\r\n");  // pipelined after DONE: not lost
  EXPECT_EQ(std::get<Line>(r.NextLine()).text, "DONE");
  EXPECT_EQ(Describe(r.Next()), "C:c:NOOP");

  Limits lim;
  lim.max_line = 16;
  CommandReader r2(lim);
  r2.Feed(std::string(40, 'A'));
  EXPECT_TRUE(std::holds_alternative<NeedMore>(r2.NextLine()));
  r2.Feed("AAAA\r\n*\r\n");
  auto tl = r2.NextLine();
  ASSERT_TRUE(std::holds_alternative<LineTooLong>(tl));
  EXPECT_EQ(std::get<LineTooLong>(tl).discarded, 46u);
  EXPECT_FALSE(std::get<LineTooLong>(tl).close);
  EXPECT_EQ(std::get<Line>(r2.NextLine()).text, "*");  // "*" cancels an AUTHENTICATE
}

// ---- Response helpers ----

TEST(ImapResponse, DateTime) {
  DateTime t = *ParseDateTime("17-Jul-1996 02:44:25 -0700");
  EXPECT_EQ(FormatDateTime(t), "17-Jul-1996 02:44:25 -0700");
  EXPECT_EQ(ToUnixTime(t), 837596665);
  DateTime u = FromUnixTime(837596665, -420);
  EXPECT_EQ(u, t);
  EXPECT_EQ(FormatDateTime(FromUnixTime(0)), "01-Jan-1970 00:00:00 +0000");
  EXPECT_EQ(FormatDateTime(FromUnixTime(1709208000, 330)), "29-Feb-2024 17:30:00 +0530");
  EXPECT_EQ(FormatDateTime(FromUnixTime(-1)), "31-Dec-1969 23:59:59 +0000");
  EXPECT_EQ(ParseDateTime(" 1-Jan-2000 00:00:00 +0000")->date.day, 1);
  EXPECT_EQ(ParseDateTime("1-jan-2000 00:00:00 +0000")->date.month, 1);
  for (const char* bad :
       {"17-Jul-1996 02:44:25", "17-Jul-1996 02:44:25 0700", "17-Jux-1996 02:44:25 -0700",
        "29-Feb-2023 00:00:00 +0000", "17-Jul-96 02:44:25 -0700", "17-Jul-1996 2:44:25 -0700",
        "17-Jul-1996 02:60:25 -0700", "17-Jul-1996 02:44:25 -0760", "17-Jul-1996 02:44:25 -07000",
        "117-Jul-1996 02:44:25 -0700", ""}) {
    EXPECT_FALSE(ParseDateTime(bad).ok()) << bad;
  }
  EXPECT_EQ(*ParseDate("29-Feb-2024"), (Date{2024, 2, 29}));
  EXPECT_EQ(FormatDate(Date{2024, 2, 9}), "9-Feb-2024");
  EXPECT_FALSE(ParseDate("29-Feb-2023").ok());
  EXPECT_EQ(ToUnixTime(Date{2000, 3, 1}), 951868800);
}

TEST(ImapResponse, FlagsAndEsearch) {
  std::vector<std::string> flags = {"\\Seen", "\\Answered", "$Forwarded"};
  EXPECT_EQ(FormatFlagList(flags), "(\\Seen \\Answered $Forwarded)");
  EXPECT_EQ(FormatFlagList({}), "()");

  SearchArgs args = Parse("a SEARCH RETURN (MIN MAX COUNT ALL) SEEN").As<SearchArgs>();
  std::vector<uint32_t> m = {7, 1, 2, 3, 9};
  EXPECT_EQ(FormatEsearch("a", true, args, m),
            "* ESEARCH (TAG \"a\") UID MIN 1 MAX 9 COUNT 5 ALL 1:3,7,9\r\n");
  EXPECT_EQ(FormatEsearch("a", false, args, {}), "* ESEARCH (TAG \"a\") COUNT 0\r\n");
  args = Parse("a SEARCH RETURN () SEEN").As<SearchArgs>();  // () means ALL
  EXPECT_EQ(FormatEsearch("t\"q", false, args, m, 42),
            "* ESEARCH (TAG \"t\\\"q\") ALL 1:3,7,9 MODSEQ 42\r\n");
  args = Parse("a SEARCH RETURN (MIN) SEEN").As<SearchArgs>();
  EXPECT_EQ(FormatEsearch("a", false, args, {}), "* ESEARCH (TAG \"a\")\r\n");
}

// METADATA (RFC 5464 section 5).
TEST(ImapParser, Metadata) {
  auto g =
      ParseRoundTrip("a GETMETADATA (DEPTH infinity MAXSIZE 10) \"\" (/Private/Comment /shared)")
          .As<GetMetadataArgs>();
  EXPECT_EQ(g.depth, -1);
  EXPECT_EQ(g.max_size, 10u);
  EXPECT_EQ(g.mailbox, "");
  EXPECT_EQ(g.entries, (std::vector<std::string>{"/private/comment", "/shared"}));
  g = ParseRoundTrip("a GETMETADATA INBOX /private/x").As<GetMetadataArgs>();
  EXPECT_EQ(g.depth, 0);
  auto s = ParseRoundTrip(
               std::string(
                   "a SETMETADATA M (/private/a \"v\" /shared/b NIL /private/c ~{3}\r\nx\0y)", 67))
               .As<SetMetadataArgs>();
  ASSERT_EQ(s.entries.size(), 3u);
  EXPECT_EQ(s.entries[0].second, std::optional<std::string>("v"));
  EXPECT_FALSE(s.entries[1].second.has_value());
  EXPECT_EQ(s.entries[2].second, std::optional<std::string>(std::string("x\0y", 3)));
  for (const char* bad :
       {"a SETMETADATA M (/bad/a \"v\")", "a SETMETADATA M (/private/a* \"v\")",
        "a SETMETADATA M (/private//a \"v\")", "a SETMETADATA M (/private/a/ \"v\")",
        "a SETMETADATA M (/private \"v\")", "a GETMETADATA (DEPTH 2) M /private/a",
        "a GETMETADATA (MAXSIZE 1 MAXSIZE 2) M /private/a", "a GETMETADATA M"}) {
    ParseError(bad);
  }
}

// PARTIAL (RFC 5267 section 4.4, RFC 9394 section 3.1).
TEST(ImapResponse, Partial) {
  SearchArgs args = ParseRoundTrip("a SEARCH RETURN (COUNT PARTIAL 3:2) SEEN").As<SearchArgs>();
  ASSERT_TRUE(args.partial.has_value());
  EXPECT_EQ(*args.partial, (std::pair<int64_t, int64_t>{2, 3}));  // smaller first
  std::vector<uint32_t> m = {1, 2, 3, 7, 9};
  EXPECT_EQ(FormatEsearch("a", true, args, m),
            "* ESEARCH (TAG \"a\") UID COUNT 5 PARTIAL (2:3 2:3)\r\n");
  args = ParseRoundTrip("a SEARCH RETURN (PARTIAL -5:-1) SAVEDBEFORE 1-Feb-2024").As<SearchArgs>();
  EXPECT_EQ(*args.partial, (std::pair<int64_t, int64_t>{-1, -5}));
  EXPECT_EQ(FormatEsearch("a", false, args, m),
            "* ESEARCH (TAG \"a\") PARTIAL (-1:-5 1:3,7,9)\r\n");
  EXPECT_EQ(FormatEsearch("a", false, args, {}), "* ESEARCH (TAG \"a\") PARTIAL (-1:-5 NIL)\r\n");
  EXPECT_EQ(PartialSlice({4, 10}, 5), (std::pair<size_t, size_t>{3, 5}));
  EXPECT_EQ(PartialSlice({6, 10}, 5), (std::pair<size_t, size_t>{0, 0}));
  EXPECT_EQ(PartialSlice({-1, -2}, 5), (std::pair<size_t, size_t>{3, 5}));
  EXPECT_EQ(PartialSlice({-4, -9}, 5), (std::pair<size_t, size_t>{0, 2}));
  EXPECT_EQ(PartialSlice({-6, -9}, 5), (std::pair<size_t, size_t>{0, 0}));
  std::vector<uint32_t> sorted = {10, 9, 3, 4, 5, 1};
  EXPECT_EQ(SequenceInOrder(sorted), "10,9,3:5,1");
  EXPECT_EQ(FormatPartial({1, 3}, sorted), " PARTIAL (1:3 10,9,3)");
  for (const char* bad :
       {"a SEARCH RETURN (ALL PARTIAL 1:2) ALL", "a SEARCH RETURN (PARTIAL 0:2) ALL",
        "a SEARCH RETURN (PARTIAL -1:2) ALL", "a SEARCH RETURN (PARTIAL 1:2 PARTIAL 1:2) ALL"}) {
    ParseError(bad);
  }
  auto f = ParseRoundTrip("a UID FETCH 1:* (FLAGS SAVEDATE) (CHANGEDSINCE 4 PARTIAL -1:-3)")
               .As<FetchArgs>();
  ParseRoundTrip(
      "a UID SORT RETURN (PARTIAL 1:5) (DATE) UTF-8 SAVEDATESUPPORTED SAVEDON 2-Feb-2020");
  ASSERT_TRUE(f.partial.has_value());
  EXPECT_EQ(*f.partial, (std::pair<int64_t, int64_t>{-1, -3}));
  EXPECT_EQ(f.items[1].att, FetchAtt::kSaveDate);
}

TEST(ImapResponse, ReadErrors) {
  ReadError e;
  e.message = "bad\r\nthing";
  EXPECT_EQ(FormatReadError(e), "* BAD bad??thing\r\n");
  e.tag = "x";
  e.kind = ReadErrorKind::kLineTooLong;
  EXPECT_EQ(FormatReadError(e), "x BAD bad??thing\r\n");
}

// ---- FormatCommand ----

TEST(ImapFormat, Canonical) {
  EXPECT_EQ(FormatCommand(Parse("a login \"alice\" \"pass word\"")), "a LOGIN alice \"pass word\"");
  EXPECT_EQ(FormatCommand(Parse("a uid fetch 1:* fast")),
            "a UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE)");
  EXPECT_EQ(FormatCommand(Parse("a LOGIN {3}\r\na\r\n x")), "a LOGIN {3}\r\na\r\n x");
  EXPECT_EQ(FormatCommand(Parse("a LOGIN \"caf\xc3\xa9\" x")), "a LOGIN {5}\r\ncaf\xc3\xa9 x");
}

// Issue 20: which commands use sequence numbers, and the reader's look-ahead
// over commands received but not yet returned.
TEST(ImapSequenceNumbers, UsesSequenceNumbers) {
  EXPECT_TRUE(UsesSequenceNumbers(Parse("a FETCH 1 UID")));
  EXPECT_TRUE(UsesSequenceNumbers(Parse("a STORE 1 +FLAGS (\\Seen)")));
  EXPECT_TRUE(UsesSequenceNumbers(Parse("a SEARCH ALL")));
  EXPECT_TRUE(UsesSequenceNumbers(Parse("a COPY 1 X")));
  EXPECT_TRUE(UsesSequenceNumbers(Parse("a MOVE 1 X")));
  EXPECT_TRUE(UsesSequenceNumbers(Parse("a UID SEARCH OR 1:3 FLAGGED")));
  EXPECT_FALSE(UsesSequenceNumbers(Parse("a UID SEARCH UID 1:3")));
  EXPECT_FALSE(UsesSequenceNumbers(Parse("a UID FETCH 1 UID")));
  EXPECT_FALSE(UsesSequenceNumbers(Parse("a UID MOVE 1 X")));
  EXPECT_FALSE(UsesSequenceNumbers(Parse("a NOOP")));
  EXPECT_FALSE(UsesSequenceNumbers(Parse("a EXPUNGE")));
}

TEST(ImapSequenceNumbers, ReaderLooksAhead) {
  auto pending_after_first = [](std::string_view input) {
    CommandReader r;
    r.Feed(input);
    ReadResult first = r.Next();
    EXPECT_TRUE(std::holds_alternative<Command>(first)) << input;
    return r.PendingUsesSequenceNumbers();
  };
  EXPECT_TRUE(pending_after_first("p1 NOOP\r\np2 FETCH 5 (UID)\r\n"));
  EXPECT_TRUE(pending_after_first("p1 NOOP\r\np2 fetch 5 (UID)\r\n"));
  EXPECT_FALSE(pending_after_first("p1 NOOP\r\n"));
  EXPECT_FALSE(pending_after_first("p1 NOOP\r\np2 UID FETCH 5 (UID)\r\np3 NOOP\r\n"));
  EXPECT_TRUE(pending_after_first("p1 NOOP\r\np2 UID FETCH 5 UID\r\np3 STORE 1 FLAGS ()\r\n"));
  // Literals are skipped, not read as commands.
  EXPECT_FALSE(pending_after_first("p1 NOOP\r\np2 APPEND X {14+}\r\nz FETCH 1 UID\r\n\r\n"));
  EXPECT_TRUE(pending_after_first("p1 NOOP\r\np2 APPEND X {2+}\r\nzz\r\np3 COPY 1 X\r\n"));
  // A UID SEARCH is parsed for sequence-set keys.
  EXPECT_TRUE(pending_after_first("p1 NOOP\r\np2 UID SEARCH 1:4\r\n"));
  EXPECT_FALSE(pending_after_first("p1 NOOP\r\np2 UID SEARCH UID 1:4\r\n"));
  // Partial input: a verb not complete yet counts (holding is always safe).
  EXPECT_TRUE(pending_after_first("p1 NOOP\r\np2 FET"));
  EXPECT_FALSE(pending_after_first("p1 NOOP\r\np2 LIST \"\" *"));
  // Not a command: IDLE's DONE.
  EXPECT_FALSE(pending_after_first("p1 IDLE\r\nDONE\r\n"));
}

// RFC 8474 (OBJECTID): EMAILID/THREADID search keys and fetch items, the
// MAILBOXID status item; the ids are JMAP's.
TEST(ImapObjectId, GrammarAndIds) {
  auto c = ParseCommand("a UID SEARCH EMAILID e0123_ab-C OR THREADID t1 ALL");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(FormatCommand(*c), "a UID SEARCH EMAILID e0123_ab-C OR THREADID t1 ALL");
  const auto& key = c->As<SearchArgs>().key;
  ASSERT_EQ(key.children.size(), 2u);
  EXPECT_EQ(key.children[0].op, SearchOp::kEmailId);
  EXPECT_EQ(key.children[0].text, "e0123_ab-C");
  EXPECT_FALSE(ParseCommand("a SEARCH EMAILID e.1").ok());
  EXPECT_FALSE(ParseCommand("a SEARCH THREADID").ok());
  EXPECT_FALSE(ParseCommand("a SEARCH EMAILID " + std::string(256, 'x')).ok());
  auto f = ParseCommand("b FETCH 1:* (EMAILID THREADID UID)");
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->As<FetchArgs>().items[0].att, FetchAtt::kEmailId);
  EXPECT_EQ(f->As<FetchArgs>().items[1].att, FetchAtt::kThreadId);
  EXPECT_EQ(FormatCommand(*f), "b FETCH 1:* (EMAILID THREADID UID)");
  auto st = ParseCommand("c STATUS INBOX (MAILBOXID MESSAGES)");
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(FormatCommand(*st), "c STATUS INBOX (MAILBOXID MESSAGES)");
  EXPECT_EQ(MailboxObjectId(42), "m42");
  EXPECT_EQ(EmailObjectId(std::string(32, '\x01')), "e010101010101010101010101");
  // The thread root: References' first id, else In-Reply-To, else Message-ID.
  std::string reply = "References: <r@x> <p@x>\r\nIn-Reply-To: <p@x>\r\n\r\n";
  std::string root = "Message-ID: <r@x>\r\n\r\n";
  EXPECT_EQ(ThreadObjectId(reply), ThreadObjectId(root));
  EXPECT_NE(ThreadObjectId("Subject: a\r\n\r\n1"), ThreadObjectId("Subject: a\r\n\r\n2"));
  EXPECT_TRUE(IsObjectId(ThreadObjectId(reply)));
}

}  // namespace
}  // namespace hato::imap
