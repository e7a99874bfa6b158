// Unit tests for src/mime (parser, envelope, addresses, decoding, sections,
// storage format) and src/imap/proto/bodystructure. Small inline messages, one
// rule per test; the golden corpus is in mime_golden_test.cc.
#include <gtest/gtest.h>

#include <string>

#include "imap/proto/bodystructure.h"
#include "mime/message.h"

namespace hato::mime {
namespace {

Part MustParse(std::string_view raw) {
  auto p = Parse(raw);
  EXPECT_TRUE(p.ok());
  return p.ok() ? *p : Part{};
}

std::string_view Body(std::string_view raw, const Part& p) {
  return raw.substr(p.header_end, p.body_end - p.header_end);
}

std::string Sec(std::string_view raw, const Part& root, std::string_view spec) {
  auto s = Section(raw, root, spec);
  if (!s.ok()) {
    switch (s.error().kind) {
      case ErrorKind::kNotFound:
        return "<kNotFound>";
      case ErrorKind::kInvalid:
        return "<kInvalid>";
      case ErrorKind::kCorrupt:
        return "<kCorrupt>";
      default:
        return "<other>";
    }
  }
  return *s;
}

// ---- Parse: defaults and headers (RFC 2045 section 5.2, RFC 5322 section 2.2) ----

TEST(MimeParse, DefaultsToTextPlainUsAscii) {
  std::string raw = "Subject: hi\r\n\r\nhello\r\nworld\r\n";
  Part p = MustParse(raw);
  EXPECT_EQ(p.type, "text");
  EXPECT_EQ(p.subtype, "plain");
  ASSERT_EQ(p.params.size(), 1u);
  EXPECT_EQ(p.params[0], (Param{"charset", "us-ascii"}));
  EXPECT_EQ(p.encoding, "7bit");
  EXPECT_EQ(p.header_begin, 0u);
  EXPECT_EQ(p.header_end, 15u);
  EXPECT_EQ(p.body_end, raw.size());
  EXPECT_EQ(p.size, 14u);
  EXPECT_EQ(p.lines, 2u);
  ASSERT_TRUE(p.envelope.has_value());
  EXPECT_EQ(p.envelope->subject, "hi");
}

TEST(MimeParse, ContentTypeLowerCasedParamsOrderedAndUnquoted) {
  Part p = MustParse(
      "Content-Type: Text/HTML; Charset=\"UTF-8\"; format=flowed (a comment);\r\n"
      "  x-q=\"a \\\"b\\\" c\"\r\nContent-Transfer-Encoding: Quoted-Printable\r\n\r\nx");
  EXPECT_EQ(p.type, "text");
  EXPECT_EQ(p.subtype, "html");
  ASSERT_EQ(p.params.size(), 3u);
  EXPECT_EQ(p.params[0], (Param{"charset", "UTF-8"}));
  EXPECT_EQ(p.params[1], (Param{"format", "flowed"}));
  EXPECT_EQ(p.params[2], (Param{"x-q", "a \"b\" c"}));
  EXPECT_EQ(p.encoding, "quoted-printable");
  EXPECT_EQ(p.Charset(), "UTF-8");
}

TEST(MimeParse, InvalidContentTypeKeepsDefaults) {
  Part p = MustParse("Content-Type: garbage\r\n\r\nx");
  EXPECT_EQ(p.type, "text");
  EXPECT_EQ(p.subtype, "plain");
  EXPECT_EQ(p.Charset(), "us-ascii");
}

TEST(MimeParse, FirstContentHeaderWins) {
  Part p = MustParse(
      "Content-Type: text/html\r\nContent-Type: image/png\r\n"
      "Content-Transfer-Encoding: base64\r\nContent-Transfer-Encoding: 8bit\r\n\r\nx");
  EXPECT_EQ(p.subtype, "html");
  EXPECT_EQ(p.encoding, "base64");
}

TEST(MimeParse, FoldedHeadersAndBareLf) {
  std::string raw =
      "Subject: a\n long\n\tsubject\nContent-Type: multipart/mixed;\n boundary=xy\n\n"
      "--xy\nContent-Type: text/plain\n\none\n--xy--\n";
  Part p = MustParse(raw);
  EXPECT_EQ(p.envelope->subject, "a long\tsubject");
  ASSERT_EQ(p.children.size(), 1u);
  EXPECT_EQ(Body(raw, p.children[0]), "one");
}

TEST(MimeParse, MissingBlankLineMeansNoBody) {
  std::string raw = "Subject: x\r\nFrom: a@b.example\r\n";
  Part p = MustParse(raw);
  EXPECT_EQ(p.header_end, raw.size());
  EXPECT_EQ(p.size, 0u);
  EXPECT_EQ(p.lines, 0u);
}

TEST(MimeParse, NonHeaderLineStartsTheBody) {
  std::string raw = "Subject: x\r\nthis is not a header\r\nmore\r\n";
  Part p = MustParse(raw);
  EXPECT_EQ(Body(raw, p), "this is not a header\r\nmore\r\n");
  EXPECT_EQ(p.envelope->subject, "x");
}

TEST(MimeParse, EightBitHeadersKeptRaw) {
  Part p = MustParse("Subject: caf\xc3\xa9 \xff\r\n\r\n");
  EXPECT_EQ(p.envelope->subject, "caf\xc3\xa9 \xff");
}

TEST(MimeParse, ExtensionFields) {
  Part p = MustParse(
      "Content-Type: application/pdf; name=a.pdf\r\nContent-ID: <id@x>\r\n"
      "Content-Description: A  doc\r\nContent-Disposition: ATTACHMENT; filename=\"a b.pdf\";"
      " size=12\r\nContent-Language: en, fr (French)\r\nContent-Location: http://x/a\r\n"
      "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n\r\nabc");
  EXPECT_EQ(p.id, "<id@x>");
  EXPECT_EQ(p.description, "A  doc");
  EXPECT_EQ(p.disposition, "attachment");
  ASSERT_EQ(p.disposition_params.size(), 2u);
  EXPECT_EQ(p.disposition_params[0], (Param{"filename", "a b.pdf"}));
  EXPECT_EQ(p.language, (std::vector<std::string>{"en", "fr"}));
  EXPECT_EQ(p.location, "http://x/a");
  EXPECT_EQ(p.md5, "Q2hlY2sgSW50ZWdyaXR5IQ==");
  EXPECT_EQ(p.lines, 0u);  // not text
}

// ---- RFC 2231 ----

TEST(MimeParse, Rfc2231ContinuationsAndCharsets) {
  Part p = MustParse(
      "Content-Type: application/octet-stream;\r\n"
      " title*0*=us-ascii'en'This%20is%20even%20more%20;\r\n"
      " title*1*=%2A%2A%2Afun%2A%2A%2A%20;\r\n"
      " title*2=\"isn't it!\"\r\n"
      "Content-Disposition: attachment; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt;\r\n"
      " filename=fallback.txt; x*=iso-8859-1'fr'caf%E9; y*=x-unknown''%FF%41\r\n\r\n");
  ASSERT_EQ(p.params.size(), 1u);
  EXPECT_EQ(p.params[0], (Param{"title", "This is even more ***fun*** isn't it!"}));
  ASSERT_EQ(p.disposition_params.size(), 3u);
  EXPECT_EQ(p.disposition_params[0], (Param{"filename", "\xe6\x97\xa5\xe6\x9c\xac.txt"}));
  EXPECT_EQ(p.disposition_params[1], (Param{"x", "caf\xc3\xa9"}));
  EXPECT_EQ(p.disposition_params[2], (Param{"y",
                                            "\xff"
                                            "A"}));  // unknown charset: raw bytes
}

TEST(MimeParse, Rfc2231SectionsOutOfOrder) {
  Part p = MustParse("Content-Type: text/plain; name*1=\"b\"; name*0=\"a\"; name*2=c\r\n\r\n");
  EXPECT_EQ(*p.FindParam("name"), "abc");
}

// ---- Multipart (RFC 2046 section 5.1) ----

TEST(MimeMultipart, OffsetsPreambleEpilogueAndDelimiterCrlf) {
  std::string raw =
      "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
      "preamble\r\n"
      "--b\r\n"
      "Content-Type: text/plain\r\n\r\n"
      "first\r\n"
      "--b  \t\r\n"  // transport padding
      "\r\nsecond\r\n\r\n"
      "--b--\r\n"
      "epilogue\r\n";
  Part p = MustParse(raw);
  ASSERT_EQ(p.children.size(), 2u);
  const Part& a = p.children[0];
  EXPECT_EQ(raw.substr(a.header_begin, a.header_end - a.header_begin),
            "Content-Type: text/plain\r\n\r\n");
  EXPECT_EQ(Body(raw, a), "first");
  EXPECT_EQ(a.lines, 0u);  // "first" has no line break of its own (counted as Dovecot does)
  const Part& b = p.children[1];
  EXPECT_EQ(b.header_end - b.header_begin, 2u);  // no header, just the blank line
  EXPECT_EQ(Body(raw, b), "second\r\n");
  EXPECT_EQ(b.type, "text");
  EXPECT_FALSE(b.envelope.has_value());
}

TEST(MimeMultipart, MissingCloseDelimiterEndsAtMessageEnd) {
  std::string raw =
      "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\n\r\ntwo\r\n";
  Part p = MustParse(raw);
  ASSERT_EQ(p.children.size(), 2u);
  EXPECT_EQ(Body(raw, p.children[1]), "two\r\n");
  EXPECT_EQ(p.children[1].body_end, raw.size());
}

TEST(MimeMultipart, BoundaryPrefixIsNotADelimiter) {
  std::string raw =
      "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n--bx\r\n--b-\r\n--b--\r\n";
  Part p = MustParse(raw);
  ASSERT_EQ(p.children.size(), 1u);
  EXPECT_EQ(Body(raw, p.children[0]), "--bx\r\n--b-");
}

TEST(MimeMultipart, NestedAndDigest) {
  std::string raw =
      "Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
      "--outer\r\nContent-Type: multipart/digest; boundary=inner\r\n\r\n"
      "--inner\r\n\r\nSubject: m1\r\n\r\nbody1\r\n"
      "--inner\r\nContent-Type: text/plain\r\n\r\nnot a message\r\n"
      "--inner--\r\n"
      "--outer--\r\n";
  Part p = MustParse(raw);
  ASSERT_EQ(p.children.size(), 1u);
  const Part& digest = p.children[0];
  ASSERT_EQ(digest.children.size(), 2u);
  const Part& m1 = digest.children[0];
  EXPECT_EQ(m1.type, "message");
  EXPECT_EQ(m1.subtype, "rfc822");
  EXPECT_TRUE(m1.params.empty());
  ASSERT_EQ(m1.children.size(), 1u);
  EXPECT_EQ(m1.children[0].envelope->subject, "m1");
  EXPECT_EQ(Body(raw, m1.children[0]), "body1");
  EXPECT_EQ(digest.children[1].type, "text");
}

TEST(MimeMultipart, InnerMissingCloseStopsAtOuterDelimiter) {
  std::string raw =
      "Content-Type: multipart/mixed; boundary=o\r\n\r\n"
      "--o\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n"
      "--i\r\n\r\nA\r\n"
      "--o\r\n\r\nB\r\n--o--\r\n";
  Part p = MustParse(raw);
  ASSERT_EQ(p.children.size(), 2u);
  ASSERT_EQ(p.children[0].children.size(), 1u);
  EXPECT_EQ(Body(raw, p.children[0].children[0]), "A");
  EXPECT_EQ(Body(raw, p.children[1]), "B");
}

TEST(MimeMultipart, NoBoundaryOrNoDelimiterHasNoChildren) {
  EXPECT_TRUE(MustParse("Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\na\r\n").children.empty());
  EXPECT_TRUE(
      MustParse("Content-Type: multipart/mixed; boundary=q\r\n\r\nnothing\r\n").children.empty());
}

TEST(MimeMultipart, DepthLimitMakesOpaqueLeaves) {
  std::string raw;
  const int levels = kMaxDepth + 8;
  for (int i = 0; i < levels; ++i) {
    raw += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) + "\r\n\r\n--b" +
           std::to_string(i) + "\r\n";
  }
  raw += "\r\nleaf\r\n";
  Part p = MustParse(raw);
  int depth = 0;
  const Part* cur = &p;
  while (!cur->children.empty()) {
    cur = &cur->children[0];
    ++depth;
  }
  EXPECT_EQ(depth, kMaxDepth);
  EXPECT_TRUE(cur->IsMultipart());
  EXPECT_EQ(cur->body_end, raw.size());
  std::string bs = imap::BodyStructure(p, false);
  EXPECT_NE(bs.find("(\"APPLICATION\" \"OCTET-STREAM\""), std::string::npos);
}

TEST(MimeMultipart, PartLimit) {
  std::string raw = "Content-Type: multipart/mixed; boundary=b\r\n\r\n";
  for (size_t i = 0; i < kMaxParts + 5; ++i) raw += "--b\r\n\r\nx\r\n";
  raw += "--b--\r\n";
  Part p = MustParse(raw);
  EXPECT_EQ(p.children.size(), kMaxParts - 1);  // the root counts
  EXPECT_EQ(p.body_end, raw.size());
}

// ---- message/rfc822 (RFC 2046 section 5.2.1) ----

const char kForward[] =
    "From: a@example.org\r\nSubject: outer\r\n"
    "Content-Type: multipart/mixed; boundary=\"=_b\"\r\n\r\n"
    "--=_b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee below.\r\n"
    "--=_b\r\nContent-Type: message/rfc822\r\nContent-Description: fwd\r\n\r\n"
    "From: \"Bob\" <bob@example.net>\r\nSubject: inner\r\n"
    "Content-Type: multipart/alternative; boundary=alt\r\n\r\n"
    "--alt\r\n\r\nplain\r\n--alt\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--alt--\r\n"
    "\r\n--=_b--\r\n";

TEST(MimeMessage, EncapsulatedMessageHasEnvelopeAndChildren) {
  std::string raw = kForward;
  Part p = MustParse(raw);
  ASSERT_EQ(p.children.size(), 2u);
  const Part& fwd = p.children[1];
  EXPECT_TRUE(fwd.IsMessage());
  ASSERT_EQ(fwd.children.size(), 1u);
  const Part& inner = fwd.children[0];
  EXPECT_EQ(inner.header_begin, fwd.header_end);
  EXPECT_EQ(inner.body_end, fwd.body_end);
  ASSERT_TRUE(inner.envelope.has_value());
  EXPECT_EQ(inner.envelope->subject, "inner");
  ASSERT_EQ(inner.children.size(), 2u);
  EXPECT_EQ(fwd.lines, 12u);
}

TEST(MimeMessage, Base64EncodedMessageIsOpaque) {
  Part p = MustParse(
      "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: "
      "base64\r\n\r\nU3ViamVjdDogeA==\r\n");
  EXPECT_TRUE(p.children.empty());
  EXPECT_EQ(imap::BodyStructure(p, false),
            "(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"BASE64\" 18)");
}

// ---- Sections (RFC 3501 section 6.4.5) ----

TEST(MimeSection, WholeHeaderTextAndParts) {
  std::string raw = kForward;
  Part p = MustParse(raw);
  EXPECT_EQ(Sec(raw, p, ""), raw);
  EXPECT_EQ(Sec(raw, p, "HEADER"),
            "From: a@example.org\r\nSubject: outer\r\n"
            "Content-Type: multipart/mixed; boundary=\"=_b\"\r\n\r\n");
  EXPECT_EQ(Sec(raw, p, "TEXT"), raw.substr(p.header_end));
  EXPECT_EQ(Sec(raw, p, "1"), "See below.");
  EXPECT_EQ(Sec(raw, p, "1.MIME"), "Content-Type: text/plain; charset=utf-8\r\n\r\n");
  EXPECT_EQ(Sec(raw, p, "2.HEADER"),
            "From: \"Bob\" <bob@example.net>\r\nSubject: inner\r\n"
            "Content-Type: multipart/alternative; boundary=alt\r\n\r\n");
  EXPECT_EQ(Sec(raw, p, "2.MIME"),
            "Content-Type: message/rfc822\r\nContent-Description: fwd\r\n\r\n");
  EXPECT_EQ(Sec(raw, p, "2.1"), "plain");
  EXPECT_EQ(Sec(raw, p, "2.2"), "<p>html</p>");
  EXPECT_EQ(Sec(raw, p, "2.2.MIME"), "Content-Type: text/html\r\n\r\n");
  EXPECT_EQ(Sec(raw, p, "2.TEXT").substr(0, 7), "--alt\r\n");
  EXPECT_EQ(Sec(raw, p, "2.HEADER.FIELDS (subject FROM)"),
            "From: \"Bob\" <bob@example.net>\r\nSubject: inner\r\n\r\n");
  EXPECT_EQ(Sec(raw, p, "HEADER.FIELDS.NOT (Content-Type From)"), "Subject: outer\r\n\r\n");
  EXPECT_EQ(Sec(raw, p, "3"), "<kNotFound>");
  EXPECT_EQ(Sec(raw, p, "1.1"), "<kNotFound>");
  EXPECT_EQ(Sec(raw, p, "2.3"), "<kNotFound>");
  EXPECT_EQ(Sec(raw, p, "1.HEADER"), "<kInvalid>");
  EXPECT_EQ(Sec(raw, p, "MIME"), "<kInvalid>");
  EXPECT_EQ(Sec(raw, p, "1."), "<kInvalid>");
  EXPECT_EQ(Sec(raw, p, "0"), "<kInvalid>");
  EXPECT_EQ(Sec(raw, p, "HEADER.FIELDS ()"), "<kInvalid>");
}

TEST(MimeSection, PartOneOfASinglePartMessageIsItsBody) {
  std::string raw = "Subject: s\r\n\r\nbody\r\n";
  Part p = MustParse(raw);
  EXPECT_EQ(Sec(raw, p, "1"), "body\r\n");
  EXPECT_EQ(Sec(raw, p, "TEXT"), "body\r\n");
  EXPECT_EQ(Sec(raw, p, "2"), "<kNotFound>");
  EXPECT_EQ(Sec(raw, p, "1.1"), "<kNotFound>");
}

TEST(MimeSection, TopLevelMessageRfc822) {
  std::string raw = "Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nhi\r\n";
  Part p = MustParse(raw);
  EXPECT_EQ(Sec(raw, p, "1"), "Subject: in\r\n\r\nhi\r\n");
  EXPECT_EQ(Sec(raw, p, "1.HEADER"), "Subject: in\r\n\r\n");
  EXPECT_EQ(Sec(raw, p, "1.1"), "hi\r\n");
}

TEST(MimeSection, OffsetsBeyondRawAreCorrupt) {
  Part p = MustParse("Subject: s\r\n\r\nbody\r\n");
  EXPECT_EQ(Sec("short", p, "TEXT"), "<kCorrupt>");
}

TEST(MimeSection, HeaderFieldsKeepsFoldingAndAddsCrlf) {
  EXPECT_EQ(HeaderFields("To: a,\r\n b\r\nX: 1\r\nto: c", {"TO"}, false),
            "To: a,\r\n b\r\nto: c\r\n\r\n");
  EXPECT_EQ(HeaderFields("X: 1\r\n\r\n", {"y"}, false), "\r\n");
}

// ---- Envelope and addresses (RFC 5322 section 3.4, RFC 3501 section 7.4.2) ----

TEST(MimeEnvelope, AddressForms) {
  auto a = ParseAddressList(
      "\"Doe, John\" <john@example.com>, Mary Smith <@relay.example,@r2.example:mary@x.test>,"
      " bare@example.org (Comment), John Q. Public <jqp@[192.0.2.1]>, "
      "=?utf-8?q?J=C3=B6rg?= <j@example.de>, \"quoted local\"@example.net, nodomain, <>");
  ASSERT_EQ(a.size(), 8u);
  EXPECT_EQ(a[0], (Address{"Doe, John", std::nullopt, "john", "example.com"}));
  EXPECT_EQ(a[1], (Address{"Mary Smith", "@relay.example,@r2.example", "mary", "x.test"}));
  // The obsolete "addr (Real Name)" form: the comment is the display name.
  EXPECT_EQ(a[2], (Address{"Comment", std::nullopt, "bare", "example.org"}));
  EXPECT_EQ(a[3], (Address{"John Q. Public", std::nullopt, "jqp", "[192.0.2.1]"}));
  EXPECT_EQ(a[4], (Address{"=?utf-8?q?J=C3=B6rg?=", std::nullopt, "j", "example.de"}));
  EXPECT_EQ(a[5], (Address{std::nullopt, std::nullopt, "\"quoted local\"", "example.net"}));
  EXPECT_EQ(a[6], (Address{std::nullopt, std::nullopt, "nodomain", ""}));
  EXPECT_EQ(a[7], (Address{std::nullopt, std::nullopt, "", ""}));
}

// PlainAddress (the Sieve address tests' shortcut) gives exactly ParseAddressList's
// mailbox and host wherever it answers, and leaves every other form to it.
TEST(MimeEnvelope, PlainAddressAgreesWithTheParserOrDeclines) {
  const std::vector<std::string_view> plain = {" Load Generator <loadgen@hato-bench.example>",
                                               "<rcpt3@bench.test>",
                                               "a@b",
                                               "\tJ. Q. Public <j.q+tag@sub.example.org> ",
                                               "x!#$%&'*+-/=?^_`{|}~@y.z",
                                               "=?utf-8?q?J=C3=B6rg?= <j@d.de>",
                                               "a..b@c.",
                                               " Name<a@b>"};
  for (std::string_view v : plain) {
    auto fast = PlainAddress(v);
    ASSERT_TRUE(fast) << v;
    auto slow = ParseAddressList(v);
    ASSERT_EQ(slow.size(), 1u) << v;
    EXPECT_EQ(slow[0].mailbox, std::string(fast->first)) << v;
    EXPECT_EQ(slow[0].host, std::string(fast->second)) << v;
  }
  const std::vector<std::string_view> other = {"\"Doe, John\" <john@example.com>",
                                               "a@b, c@d",
                                               "a@b (Comment)",
                                               "<@relay:m@x.test>",
                                               "j <jqp@[192.0.2.1]>",
                                               "\"quoted local\"@example.net",
                                               "nodomain",
                                               "<>",
                                               "<a@>",
                                               "<@b>",
                                               "Team: a@x.test;",
                                               "a@b@c",
                                               "<a@b> junk",
                                               "J\xc3\xb6rg <j@d.de>",
                                               "a <b <c@d>>",
                                               "a@b>",
                                               "<a b@c>",
                                               "a\r\n@b",
                                               ""};
  for (std::string_view v : other) EXPECT_FALSE(PlainAddress(v)) << v;
}

TEST(MimeEnvelope, GroupsUseNilHostMarkers) {
  auto a = ParseAddressList("Team: a@x.test, B <b@y.test>;, undisclosed-recipients:;, c@z.test");
  ASSERT_EQ(a.size(), 7u);
  EXPECT_EQ(a[0], (Address{std::nullopt, std::nullopt, "Team", std::nullopt}));
  EXPECT_EQ(a[1].mailbox, "a");
  EXPECT_EQ(a[2].name, "B");
  EXPECT_EQ(a[3], Address{});
  EXPECT_EQ(a[4].mailbox, "undisclosed-recipients");
  EXPECT_EQ(a[5], Address{});
  EXPECT_EQ(a[6].host, "z.test");
  Envelope e;
  e.to = ParseAddressList("g: ;");
  EXPECT_EQ(imap::Envelope(e),
            "(NIL NIL NIL NIL NIL ((NIL NIL \"g\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL NIL)");
}

TEST(MimeEnvelope, SenderAndReplyToDefaultToFrom) {
  Part p = MustParse(
      "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nFrom: A <a@x.test>\r\nReply-To:\r\n"
      "To: b@y.test\r\nSubject: =?utf-8?B?w6k=?=\r\nMessage-ID: <1@x>\r\n"
      "In-Reply-To: <0@x>\r\n\r\n");
  const Envelope& e = *p.envelope;
  EXPECT_EQ(e.sender, e.from);
  EXPECT_EQ(e.reply_to, e.from);
  EXPECT_EQ(imap::Envelope(e),
            "(\"Mon, 1 Jan 2024 00:00:00 +0000\" \"=?utf-8?B?w6k=?=\" "
            "((\"A\" NIL \"a\" \"x.test\")) ((\"A\" NIL \"a\" \"x.test\")) "
            "((\"A\" NIL \"a\" \"x.test\")) ((NIL NIL \"b\" \"y.test\")) NIL NIL "
            "\"<0@x>\" \"<1@x>\")");
}

TEST(MimeEnvelope, EmptyMessageIsAllNil) {
  EXPECT_EQ(imap::Envelope(MustParse("").envelope.value()),
            "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
}

// ---- BODY / BODYSTRUCTURE (RFC 3501 section 7.4.2) ----

TEST(MimeBodyStructure, SinglePart) {
  Part p = MustParse("Content-Type: text/plain; charset=utf-8\r\n\r\nhi\r\n");
  EXPECT_EQ(imap::BodyStructure(p, false),
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 4 1)");
  EXPECT_EQ(imap::BodyStructure(p, true),
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 4 1 NIL NIL NIL NIL)");
}

TEST(MimeBodyStructure, MultipartWithMessage) {
  Part p = MustParse(kForward);
  EXPECT_EQ(imap::BodyStructure(p, false),
            "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 10 0)"
            "(\"MESSAGE\" \"RFC822\" NIL NIL \"fwd\" \"7BIT\" 172 "
            "(NIL \"inner\" ((\"Bob\" NIL \"bob\" \"example.net\")) "
            "((\"Bob\" NIL \"bob\" \"example.net\")) ((\"Bob\" NIL \"bob\" \"example.net\")) "
            "NIL NIL NIL NIL NIL) "
            "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 5 0)"
            "(\"TEXT\" \"HTML\" NIL NIL NIL \"7BIT\" 11 0) \"ALTERNATIVE\") 12) \"MIXED\")");
  std::string ext = imap::BodyStructure(p, true);
  EXPECT_TRUE(ext.ends_with(
      "11 0 NIL NIL NIL NIL) \"ALTERNATIVE\" (\"BOUNDARY\" \"alt\") NIL NIL NIL) 12 NIL NIL NIL "
      "NIL) \"MIXED\" (\"BOUNDARY\" \"=_b\") NIL NIL NIL)"))
      << ext;
}

TEST(MimeBodyStructure, ExtensionDataAndLiterals) {
  Part p = MustParse(
      "Content-Type: image/png; name=\"x\xc3\xa9.png\"\r\nContent-Transfer-Encoding: base64\r\n"
      "Content-Disposition: inline\r\nContent-Language: en, de\r\nContent-MD5: abc\r\n\r\nAAAA");
  EXPECT_EQ(imap::BodyStructure(p, true),
            "(\"IMAGE\" \"PNG\" (\"NAME\" {7}\r\nx\xc3\xa9.png) NIL NIL \"BASE64\" 4 \"abc\" "
            "(\"INLINE\" NIL) (\"en\" \"de\") NIL)");
}

TEST(MimeBodyStructure, EmptyMultipartIsOpaque) {
  Part p = MustParse("Content-Type: multipart/mixed; boundary=z\r\n\r\nno parts\r\n");
  EXPECT_EQ(imap::BodyStructure(p, false),
            "(\"APPLICATION\" \"OCTET-STREAM\" (\"BOUNDARY\" \"z\") NIL NIL \"7BIT\" 10)");
}

// ---- Decoding (RFC 2045 section 6, RFC 2047) ----

TEST(MimeDecode, Base64TolerantOfWhitespaceAndGarbage) {
  EXPECT_EQ(DecodeTransfer("aGVs\r\nbG8g\n d29y!!bGQ=\r\n", "BASE64"), "hello world");
  EXPECT_EQ(DecodeTransfer("aGk", "base64"), "hi");  // missing padding
  EXPECT_EQ(DecodeTransfer("", "base64"), "");
}

TEST(MimeDecode, QuotedPrintable) {
  EXPECT_EQ(DecodeTransfer("caf=C3=A9 =\r\nsoft   \r\nline=3D=\n\nnext=4", "quoted-printable"),
            "caf\xc3\xa9 soft\r\nline=\nnext=4");
  EXPECT_EQ(DecodeTransfer("a=zz=\t \r\nb", "quoted-printable"), "a=zzb");
  EXPECT_EQ(DecodeTransfer("keep=20", "7bit"), "keep=20");
}

TEST(MimeDecode, CharsetsToUtf8) {
  EXPECT_EQ(ToUtf8("caf\xe9", "ISO-8859-1"), "caf\xc3\xa9");
  EXPECT_EQ(ToUtf8("\x80", "windows-1252"), "\xe2\x82\xac");
  // "日本" in ISO-2022-JP, Shift_JIS and EUC-JP.
  EXPECT_EQ(ToUtf8("\x1b$BF|K\\\x1b(B", "iso-2022-jp"), "\xe6\x97\xa5\xe6\x9c\xac");
  EXPECT_EQ(ToUtf8("\x93\xfa\x96\x7b\\", "Shift_JIS"), "\xe6\x97\xa5\xe6\x9c\xac\\");
  EXPECT_EQ(ToUtf8("\xc6\xfc\xcb\xdc", "euc-jp"), "\xe6\x97\xa5\xe6\x9c\xac");
  EXPECT_EQ(ToUtf8("ok \xff", "utf-8"), "ok \xef\xbf\xbd");
  EXPECT_EQ(ToUtf8("ok \xc3\xa9 \xff", "x-unknown-charset"), "ok \xc3\xa9 \xef\xbf\xbd");
  EXPECT_EQ(ToUtf8("\xff", "us-ascii"), "\xef\xbf\xbd");
  EXPECT_EQ(ToUtf8("a\x93", "shift_jis"), "a\xef\xbf\xbd");  // truncated
  EXPECT_TRUE(KnownCharset("ISO-2022-JP"));
  EXPECT_FALSE(KnownCharset("x-no-such-charset"));
}

TEST(MimeDecode, EncodedWords) {
  EXPECT_EQ(DecodeHeader("=?UTF-8?B?w6k=?= =?utf-8?q?_x?=  tail"), "\xc3\xa9 x  tail");
  EXPECT_EQ(DecodeHeader("a =?ISO-8859-1?Q?caf=E9?= b"), "a caf\xc3\xa9 b");
  EXPECT_EQ(DecodeHeader("=?iso-2022-jp?B?GyRCRnxLXBsoQg==?="), "\xe6\x97\xa5\xe6\x9c\xac");
  // A multi-byte character split across two encoded-words of the same charset.
  EXPECT_EQ(DecodeHeader("=?utf-8?q?=E6=97?=\r\n =?utf-8?q?=A5?="), "\xe6\x97\xa5");
  EXPECT_EQ(DecodeHeader("=?en?X?bad?= =?utf-8?q?not closed"), "=?en?X?bad?= =?utf-8?q?not closed");
  EXPECT_EQ(DecodeHeader("=?utf-8*en?q?lang?="), "lang");
  EXPECT_EQ(DecodeHeader("raw \xc3\xa9 \xff"), "raw \xc3\xa9 \xef\xbf\xbd");
  // Without an encoded-word (the usual field): unfolded, invalid UTF-8 replaced.
  EXPECT_EQ(DecodeHeader("plain\r\n folded\n\ttext \xff="), "plain folded\ttext \xef\xbf\xbd=");
  EXPECT_EQ(DecodeHeader("\r\n"), "");
  EXPECT_EQ(DecodeHeader("a=?b"), "a=?b");
}

TEST(MimeDecode, DecodedTextOfAPart) {
  std::string raw =
      "Content-Type: text/plain; charset=iso-8859-1\r\n"
      "Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9\r\n";
  Part p = MustParse(raw);
  EXPECT_EQ(DecodedText(raw, p), "caf\xc3\xa9\r\n");
}

// ---- Storage format ----

TEST(MimeSerialize, RoundTripIsExact) {
  for (std::string_view raw : {std::string_view(kForward), std::string_view(""),
                               std::string_view("Subject: x\r\n\r\ny")}) {
    Part p = MustParse(raw);
    std::string bytes = Serialize(p);
    EXPECT_EQ(bytes[0], static_cast<char>(kFormatVersion));
    auto back = Deserialize(bytes);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(*back, p);
    EXPECT_EQ(Serialize(*back), bytes);
  }
}

TEST(MimeSerialize, CorruptInputIsAnErrorNeverACrash) {
  std::string bytes = Serialize(MustParse(kForward));
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = Deserialize(std::string_view(bytes).substr(0, n));
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.error().kind, ErrorKind::kCorrupt);
  }
  EXPECT_FALSE(Deserialize(bytes + "x").ok());
  std::string v2 = bytes;
  v2[0] = 2;
  EXPECT_FALSE(Deserialize(v2).ok());
  // A child outside its parent's body.
  Part p = MustParse(kForward);
  p.children[1].body_end = p.body_end + 10;
  EXPECT_FALSE(Deserialize(Serialize(p)).ok());
  // Flipping bytes never crashes.
  for (size_t i = 1; i < bytes.size(); ++i) {
    std::string b = bytes;
    b[i] = static_cast<char>(b[i] ^ 0xA5);
    (void)Deserialize(b);
  }
}

}  // namespace
}  // namespace hato::mime
