// The member's pages and the admin console, pure and store parts: app
// passwords, the streamed zip of the mbox download, the audit log's lines and
// tail, and the admin role and token last use in the embedded store.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "auth/app_password.h"
#include "store/store.h"
#include "web/audit.h"
#include "web/zip_stream.h"

namespace hato {
namespace {

TEST(AppPassword, FormatAndNormalize) {
  std::string random(auth::kAppPasswordChars, '\x07');
  for (size_t i = 0; i < random.size(); ++i) random[i] = static_cast<char>(i * 37);
  std::string pw = auth::FormatAppPassword(random);
  ASSERT_EQ(pw.size(), 24u);  // 5 groups of 4, 4 dashes
  EXPECT_EQ(pw[4], '-');
  auto n = auth::NormalizeAppPassword(pw);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->size(), 20u);
  // Typed without dashes, with spaces, in capitals: the same password.
  std::string typed;
  for (char c : *n) typed += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(auth::NormalizeAppPassword(typed), n);
  EXPECT_EQ(auth::AppPasswordHash(*n), auth::AppPasswordHash(*auth::NormalizeAppPassword(typed)));
  // Not app passwords: too short, too long, a character outside the alphabet.
  EXPECT_FALSE(auth::NormalizeAppPassword(pw.substr(0, 23)));
  EXPECT_FALSE(auth::NormalizeAppPassword(pw + "a"));
  EXPECT_FALSE(auth::NormalizeAppPassword("pw-for-tests"));
  EXPECT_FALSE(auth::NormalizeAppPassword(std::string(20, 'l')));  // l is left out
  EXPECT_NE(auth::AppPasswordHash(*n), auth::AppPasswordHash(std::string(20, 'a')));
}

TEST(ZipStream, Crc32KnownValue) {
  EXPECT_EQ(web::Crc32(0, "123456789"), 0xCBF43926u);  // the CRC-32 check value
  EXPECT_EQ(web::Crc32(web::Crc32(0, "12345"), "6789"), 0xCBF43926u);
  EXPECT_EQ(web::Crc32(0, ""), 0u);
}

uint32_t Le32(const std::string& s, size_t at) {
  return static_cast<uint8_t>(s[at]) | static_cast<uint8_t>(s[at + 1]) << 8 |
         static_cast<uint8_t>(s[at + 2]) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(s[at + 3])) << 24;
}

TEST(ZipStream, LayoutOfTwoEntries) {
  web::ZipStream z;
  std::string out = z.Begin("INBOX.mbox", 1767225600);
  EXPECT_EQ(Le32(out, 0), 0x04034b50u);
  EXPECT_EQ(out.size(), 30u + 10u);
  z.Data("From x\n");
  out += "From x\n";
  std::string d = z.End();
  EXPECT_EQ(Le32(d, 0), 0x08074b50u);
  EXPECT_EQ(Le32(d, 4), web::Crc32(0, "From x\n"));
  EXPECT_EQ(Le32(d, 8), 7u);
  out += d;
  size_t second = out.size();
  out += z.Begin("A/B.mbox", 0);  // before 1980: clamped, still valid
  out += z.End();
  size_t cd = out.size();
  std::string tail = z.Finish();
  out += tail;
  EXPECT_EQ(z.offset(), out.size());
  // End of central directory: 2 entries, the directory's size and offset.
  size_t eocd = out.size() - 22;
  EXPECT_EQ(Le32(out, eocd), 0x06054b50u);
  EXPECT_EQ(static_cast<uint8_t>(out[eocd + 10]), 2);
  EXPECT_EQ(Le32(out, eocd + 12), eocd - cd);
  EXPECT_EQ(Le32(out, eocd + 16), cd);
  // The second central entry points at the second local header.
  size_t entry2 = cd + 46 + 10;
  EXPECT_EQ(Le32(out, entry2), 0x02014b50u);
  EXPECT_EQ(Le32(out, entry2 + 42), second);
  EXPECT_TRUE(z.Fits(1000));
}

TEST(Audit, LineRoundTripAndTail) {
  web::AuditEntry e{1767225600,         "root@example.test",   "127.0.0.1", "account.add",
                    "bob@example.test", "with the admin role", true};
  std::string line = web::AuditLine(e);
  ASSERT_EQ(line.back(), '\n');
  web::AuditEntry back;
  ASSERT_TRUE(web::ParseAuditLine(line.substr(0, line.size() - 1), back));
  EXPECT_EQ(back.admin, e.admin);
  EXPECT_EQ(back.target, e.target);
  EXPECT_EQ(back.at, e.at);
  EXPECT_TRUE(back.ok);
  EXPECT_FALSE(web::ParseAuditLine("not json", back));
  EXPECT_FALSE(web::ParseAuditLine("{\"at\":1}", back));

  std::string dir =
      std::filesystem::temp_directory_path() / ("hato-audit-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  web::AuditLog log(dir + "/audit.log");
  EXPECT_TRUE(log.Tail(10).empty());  // no file yet
  for (int i = 0; i < 5; ++i) {
    e.target = "t";  // (not "t" + to_string(i): a g++ 12 -Wrestrict false positive)
    e.target += std::to_string(i);
    e.ok = i % 2 == 0;
    log.Record(e);
  }
  auto tail = log.Tail(3);
  ASSERT_EQ(tail.size(), 3u);
  EXPECT_EQ(tail[0].target, "t4");  // newest first
  EXPECT_EQ(tail[2].target, "t2");
  EXPECT_FALSE(tail[1].ok);
  std::filesystem::remove_all(dir);
}

TEST(AdminRole, EmbeddedStore) {
  std::string dir =
      std::filesystem::temp_directory_path() / ("hato-admin-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  auto s = store::OpenEmbeddedStore(dir, {});
  ASSERT_TRUE(s) << s.error().message;
  auto& st = **s;
  ASSERT_TRUE(st.AddDomain("example.test"));
  ASSERT_TRUE(st.AddAccount("a@example.test", "hash"));
  ASSERT_TRUE(st.AddAccount("b@example.test", "hash"));
  auto a = st.FindAccount("a@example.test");
  ASSERT_TRUE(a);
  EXPECT_FALSE(*st.IsAdmin(a->id));
  ASSERT_TRUE(st.SetAdmin("A@example.test", true));
  EXPECT_TRUE(*st.IsAdmin(a->id));
  auto list = st.ListAccounts();
  ASSERT_TRUE(list);
  EXPECT_TRUE((*list)[0].admin);
  EXPECT_FALSE((*list)[1].admin);
  EXPECT_EQ(st.SetAdmin("nobody@example.test", true).error().kind, ErrorKind::kNotFound);
  // A removed account is no admin (and cannot be made one).
  ASSERT_TRUE(st.RemoveAccount("a@example.test"));
  EXPECT_FALSE(*st.IsAdmin(a->id));
  EXPECT_FALSE(st.SetAdmin("a@example.test", true));
  // Token last use.
  auto b = st.FindAccount("b@example.test");
  auto id = st.AddToken(b->id, "h1", "app", "Phone", 0, 10);
  ASSERT_TRUE(id);
  EXPECT_EQ(st.FindToken("h1", 100)->last_used_at, 0);
  ASSERT_TRUE(st.TouchToken(*id, 1767225600));
  EXPECT_EQ(st.FindToken("h1", 100)->last_used_at, 1767225600);
  EXPECT_EQ((*st.ListTokens(b->id, 100))[0].last_used_at, 1767225600);
  s->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hato
