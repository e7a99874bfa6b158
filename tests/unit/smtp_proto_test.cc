#include <gtest/gtest.h>

#include <random>

#include "smtp/address.h"
#include "smtp/command.h"
#include "smtp/data_reader.h"

namespace hato::smtp {
namespace {

TEST(Address, ParsesPathsAndNullPath) {
  auto p = ParsePath("<User.Name+tag@Example.TEST>", false, false);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->local, "User.Name+tag");
  EXPECT_EQ((*p)->domain, "example.test");
  EXPECT_EQ(AccountKey(**p), "user.name+tag@example.test");

  auto null = ParsePath("<>", true, false);
  ASSERT_TRUE(null.ok());
  EXPECT_FALSE(null->has_value());
  EXPECT_FALSE(ParsePath("<>", false, false).ok());
}

TEST(Address, SourceRouteIgnoredQuotedLocalKept) {
  auto p = ParsePath("<@relay.example,@b.example:joe@example.test>", false, false);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->ToString(), "joe@example.test");
  auto q = ParsePath("<\"john doe\"@example.test>", false, false);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ((*q)->local, "\"john doe\"");
}

TEST(Address, RejectsMalformed) {
  for (const char* bad :
       {"user@example.test", "<user>", "<@example.test>", "<user@>", "<us..er@example.test>",
        "<.user@example.test>", "<user@-bad.test>", "<user@exa mple.test>", "<user@example..test>",
        "<\"\\\xff\"@example.org>", "<@!!!:a@b.test>", "<@a.test,:x@b.test>"}) {
    EXPECT_FALSE(ParsePath(bad, true, false).ok()) << bad;
  }
  std::string long_local(65, 'a');
  EXPECT_FALSE(ParsePath("<" + long_local + "@example.test>", false, false).ok());
}

TEST(Address, Utf8OnlyWhenAllowed) {
  std::string addr = "<\xe5\xa4\xaa\xe9\x83\x8e@example.test>";  // 太郎
  EXPECT_FALSE(ParsePath(addr, false, false).ok());
  EXPECT_TRUE(ParsePath(addr, false, true).ok());
  EXPECT_FALSE(ParsePath("<\xff@example.test>", false, true).ok());
}

TEST(Command, MailWithParameters) {
  auto c = ParseCommand("MAIL FROM:<a@b.test> SIZE=1000 BODY=8BITMIME SMTPUTF8");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->verb, Verb::kMail);
  EXPECT_EQ(*c->size, 1000u);
  EXPECT_EQ(c->body, BodyType::k8BitMime);
  EXPECT_TRUE(c->smtputf8);
  EXPECT_EQ(c->path->ToString(), "a@b.test");
}

TEST(Command, LenientSpaceAfterColonAndCase) {
  auto c = ParseCommand("rcpt to: <X@Y.test>");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->verb, Verb::kRcpt);
  EXPECT_EQ(c->path->domain, "y.test");
}

TEST(Command, ErrorsClassified) {
  EXPECT_EQ(ParseCommand("FOO bar").error().kind, ErrorKind::kNotFound);
  auto unknown_param = ParseCommand("MAIL FROM:<a@b.test> XYZZY=1");
  ASSERT_FALSE(unknown_param.ok());
  EXPECT_EQ(unknown_param.error().message.rfind(kUnsupportedParameter, 0), 0u);
  EXPECT_EQ(ParseCommand("MAIL FROM:a@b.test").error().kind, ErrorKind::kInvalid);
  EXPECT_FALSE(ParseCommand("RCPT TO:<>").ok());
  EXPECT_FALSE(ParseCommand("DATA now").ok());
  EXPECT_FALSE(ParseCommand("EHLO").ok());
  EXPECT_FALSE(ParseCommand("EHLO a\rX-Forged: 1").ok());
  EXPECT_FALSE(ParseCommand(std::string("EHLO a\0b", 8)).ok());
  EXPECT_TRUE(ParseCommand("EHLO [192.0.2.1]").ok());
  EXPECT_FALSE(ParseCommand("MAIL FROM:<a@b.test> SIZE=abc").ok());
}

TEST(Command, Bdat) {
  auto c = ParseCommand("BDAT 100 LAST");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->chunk_size, 100u);
  EXPECT_TRUE(c->last_chunk);
  EXPECT_FALSE(ParseCommand("BDAT").ok());
  EXPECT_FALSE(ParseCommand("BDAT 10 FIRST").ok());
}

// Feeds `in` to a DataReader one byte at a time and as a whole; both must agree.
std::string ReadData(const std::string& in, bool* done, size_t* consumed) {
  DataReader whole(1 << 20);
  *consumed = whole.Feed(in);
  DataReader bytewise(1 << 20);
  size_t n = 0;
  for (size_t i = 0; i < in.size() && !bytewise.done(); ++i) {
    n += bytewise.Feed(std::string_view(in).substr(i, 1));
  }
  EXPECT_EQ(whole.content(), bytewise.content());
  EXPECT_EQ(whole.done(), bytewise.done());
  EXPECT_EQ(*consumed, n);
  *done = whole.done();
  return whole.content();
}

TEST(DataReader, EndsOnlyAtCrlfDotCrlf) {
  bool done;
  size_t used;
  EXPECT_EQ(ReadData("Subject: x\r\n\r\nbody\r\n.\r\nNEXT", &done, &used),
            "Subject: x\r\n\r\nbody\r\n");
  EXPECT_TRUE(done);
  EXPECT_EQ(used, std::string("Subject: x\r\n\r\nbody\r\n.\r\n").size());
}

TEST(DataReader, SmugglingVariantsAreContent) {
  bool done;
  size_t used;
  // <LF>.<LF>, <CR>.<CR>, <LF>.<CR><LF> and <CR><LF>.<LF> never end the data.
  for (const std::string& trick :
       {std::string("a\n.\nMAIL FROM:<x@y>\r\n"), std::string("a\r.\rMAIL FROM:<x@y>\r\n"),
        std::string("a\n.\r\nMAIL FROM:<x@y>\r\n"), std::string("a\r\n.\nMAIL FROM:<x@y>\r\n")}) {
    std::string out = ReadData(trick, &done, &used);
    EXPECT_FALSE(done) << trick;
    EXPECT_EQ(used, trick.size());
    EXPECT_NE(out.find("MAIL FROM"), std::string::npos);
    // Stored content has only CRLF line endings.
    for (size_t i = 0; i < out.size(); ++i) {
      if (out[i] == '\n') {
        EXPECT_TRUE(i > 0 && out[i - 1] == '\r');
      }
      if (out[i] == '\r') {
        EXPECT_TRUE(i + 1 < out.size() && out[i + 1] == '\n');
      }
    }
  }
}

TEST(DataReader, DotUnstuffing) {
  bool done;
  size_t used;
  EXPECT_EQ(ReadData("..leading dot\r\n...\r\n.\r\n", &done, &used), ".leading dot\r\n..\r\n");
  EXPECT_TRUE(done);
  EXPECT_EQ(ReadData(".\r\n", &done, &used), "");  // empty message
  EXPECT_TRUE(done);
}

TEST(DataReader, SizeLimitDiscardsButFindsEnd) {
  DataReader r(10);
  std::string in = "0123456789ABCDEF\r\n.\r\n";
  EXPECT_EQ(r.Feed(in), in.size());
  EXPECT_TRUE(r.done());
  EXPECT_TRUE(r.too_large());
  EXPECT_LE(r.content().size(), 10u);
}

TEST(LineEndingNormalizer, AcrossChunks) {
  LineEndingNormalizer n;
  std::string out;
  n.Feed("a\r", out, 100);
  n.Feed("\nb\n", out, 100);
  n.Feed("c\r", out, 100);
  n.Finish(out, 100);
  EXPECT_EQ(out, "a\r\nb\r\nc\r\n");
  EXPECT_FALSE(n.overflowed());
}

// Random content: runs of ordinary bytes of every length around the 8-byte
// steps of the readers' line-end search, with dots, CRs and LFs between
// them, so every ending falls at every offset within a word.
std::string RandomContent(std::mt19937& rng, size_t pieces) {
  static constexpr char kSpecial[] = {'.', '\r', '\n', '\r', '\n'};
  std::string s;
  for (size_t p = 0; p < pieces; ++p) {
    s.append(rng() % 20, static_cast<char>('a' + rng() % 26));
    s += kSpecial[rng() % std::size(kSpecial)];
  }
  return s;
}

// The readers skip ordinary bytes a word at a time (issue 17): whole input,
// random chunks and single bytes (which never take the word steps) must give
// the same content, the same end and the same count of bytes consumed.
TEST(DataReader, WordStepsAgreeWithByteSteps) {
  std::mt19937 rng(17);
  for (int round = 0; round < 2000; ++round) {
    std::string in = RandomContent(rng, 1 + rng() % 40);
    if (round % 3 == 0) in += "\r\n.\r\ntail";
    bool done;
    size_t used;
    std::string want = ReadData(in, &done, &used);  // whole == byte at a time
    DataReader chunked(1 << 20);
    size_t n = 0;
    for (size_t i = 0; i < in.size() && !chunked.done();) {
      size_t len = std::min<size_t>(1 + rng() % 24, in.size() - i);
      size_t got = chunked.Feed(std::string_view(in).substr(i, len));
      n += got;
      i += len;
    }
    ASSERT_EQ(chunked.content(), want) << round;
    ASSERT_EQ(chunked.done(), done) << round;
    ASSERT_EQ(n, used) << round;
  }
}

TEST(LineEndingNormalizer, WordStepsAgreeWithByteSteps) {
  std::mt19937 rng(18);
  for (int round = 0; round < 2000; ++round) {
    std::string in = RandomContent(rng, 1 + rng() % 40);
    LineEndingNormalizer whole, bytewise, chunked;
    std::string a, b, c;
    whole.Feed(in, a, 1 << 20);
    whole.Finish(a, 1 << 20);
    for (char ch : in) bytewise.Feed(std::string_view(&ch, 1), b, 1 << 20);
    bytewise.Finish(b, 1 << 20);
    for (size_t i = 0; i < in.size();) {
      size_t len = std::min<size_t>(1 + rng() % 24, in.size() - i);
      chunked.Feed(std::string_view(in).substr(i, len), c, 1 << 20);
      i += len;
    }
    chunked.Finish(c, 1 << 20);
    ASSERT_EQ(a, b) << round;
    ASSERT_EQ(c, b) << round;
    // Only CRLF line endings remain.
    for (size_t i = 0; i < b.size(); ++i) {
      if (b[i] == '\r') {
        ASSERT_TRUE(i + 1 < b.size() && b[i + 1] == '\n') << round;
      }
      if (b[i] == '\n') {
        ASSERT_TRUE(i > 0 && b[i - 1] == '\r') << round;
      }
    }
  }
}

}  // namespace
}  // namespace hato::smtp
