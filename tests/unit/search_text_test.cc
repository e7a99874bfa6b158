// mime::ExtractSearchText: the decoded text the full-text index (IMAP SEARCH
// BODY/TEXT) is filled with.
#include <gtest/gtest.h>

#include "mime/message.h"

namespace hato::mime {
namespace {

SearchText Extract(const std::string& raw) {
  auto tree = Parse(raw);
  EXPECT_TRUE(tree.ok());
  return ExtractSearchText(raw, *tree);
}

TEST(SearchText, DecodesTransferEncodingsCharsetsAndHeaderWords) {
  // "日本語" in ISO-2022-JP (7bit), a base64 UTF-8 part, a QP part, an attachment.
  std::string raw =
      "Subject: =?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=\r\nFrom: a@b.test\r\n"
      "Content-Type: multipart/mixed; boundary=B\r\n\r\n"
      "--B\r\nContent-Type: text/plain; charset=iso-2022-jp\r\n\r\n"
      "\x1b$BF|K\\8l\x1b(B\r\n"
      "--B\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
      "5bCP5pys\r\n"
      "--B\r\nContent-Type: text/html; charset=utf-8\r\n"
      "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
      "caf=C3=A9 soft=\r\nbreak\r\n"
      "--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
      "c2VjcmV0LWJpbmFyeQ==\r\n--B--\r\n";
  SearchText t = Extract(raw);
  EXPECT_NE(t.header.find("Subject: 日本語\n"), std::string::npos) << t.header;
  EXPECT_NE(t.header.find("From: a@b.test\n"), std::string::npos) << t.header;
  EXPECT_NE(t.body.find("日本語"), std::string::npos) << t.body;
  EXPECT_NE(t.body.find("小本"), std::string::npos) << t.body;
  EXPECT_NE(t.body.find("café softbreak"), std::string::npos) << t.body;
  EXPECT_EQ(t.body.find("secret-binary"), std::string::npos);  // not text: not indexed
  EXPECT_EQ(t.body.find("GyRC"), std::string::npos);
}

TEST(SearchText, EncapsulatedMessageHeaderIsBodyText) {
  std::string raw =
      "Subject: outer\r\nContent-Type: message/rfc822\r\n\r\n"
      "Subject: =?UTF-8?Q?inner_caf=C3=A9?=\r\n\r\ninner body\r\n";
  SearchText t = Extract(raw);
  EXPECT_EQ(t.header.find("inner"), std::string::npos);
  EXPECT_NE(t.body.find("Subject: inner café"), std::string::npos) << t.body;
  EXPECT_NE(t.body.find("inner body"), std::string::npos);
}

TEST(SearchText, CappedOnACharacterBoundary) {
  std::string text;
  while (text.size() < kMaxSearchTextBytes + 100) text += "あ";  // 3 bytes each
  std::string raw = "Content-Type: text/plain; charset=utf-8\r\n\r\nx" + text;
  SearchText t = Extract(raw);
  EXPECT_LE(t.body.size(), kMaxSearchTextBytes + 1);
  EXPECT_GT(t.body.size(), kMaxSearchTextBytes - 4);
  EXPECT_EQ(t.body.back(), '\n');
  std::string_view kept(t.body.data(), t.body.size() - 1);
  EXPECT_EQ(kept.substr(kept.size() - 3), "あ");
}

}  // namespace
}  // namespace hato::mime
