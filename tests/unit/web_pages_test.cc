// The member's pages and the admin console, pure and store parts: app
// passwords, the streamed zip of the mbox download, the audit log's lines and
// tail, and the admin role and token last use in the embedded store.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>

#include "auth/app_password.h"
#include "sieve/deliver.h"
#include "sieve/interpret.h"
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

TEST(Forwarding, ScriptRoundTripAndValidSieve) {
  for (bool keep : {true, false}) {
    sieve::Forwarding f{"carol@remote.example", keep};
    std::string text = sieve::ForwardScript(f);
    EXPECT_EQ(sieve::ParseForwardScript(text), f);
    // The stored text is a real Sieve script that does the same.
    auto script = sieve::Compile(text);
    ASSERT_TRUE(script) << script.error().message;
    sieve::Environment env;
    env.message = "From: a@b\r\nSubject: x\r\n\r\nbody\r\n";
    auto out = sieve::Run(*script, env);
    ASSERT_TRUE(out) << out.error().message;
    EXPECT_EQ(out->redirects, std::vector<std::string>{"carol@remote.example"});
    EXPECT_EQ(out->files.empty(), !keep);
  }
  EXPECT_EQ(sieve::ParseForwardScript(""), std::nullopt);
  EXPECT_EQ(sieve::ParseForwardScript("redirect \"x@y\";\n"), std::nullopt);
  EXPECT_EQ(sieve::ParseForwardScript("# hato-forward maybe x@y\n"), std::nullopt);
  EXPECT_EQ(sieve::ParseForwardScript("# hato-forward keep \n"), std::nullopt);
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
  // Small archives have no Zip64 records.
  EXPECT_EQ(out.find(std::string("PK\x06\x06", 4)), std::string::npos);
}

uint16_t Le16(const std::string& s, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(s[at]) | static_cast<uint8_t>(s[at + 1]) << 8);
}
uint64_t Le64(const std::string& s, size_t at) {
  return Le32(s, at) | static_cast<uint64_t>(Le32(s, at + 4)) << 32;
}

// The Zip64 end records at the end of `tail` (Finish()): the number of
// entries, the central directory's size and offset, as a reader finds them
// (APPNOTE 4.3.14-16).
struct Zip64End {
  uint64_t count = 0, cd_size = 0, cd_offset = 0, record_offset = 0;
};
Zip64End ReadZip64End(const std::string& tail) {
  size_t eocd = tail.size() - 22;
  EXPECT_EQ(Le32(tail, eocd), 0x06054b50u);
  size_t locator = eocd - 20;
  EXPECT_EQ(Le32(tail, locator), 0x07064b50u);
  size_t record = locator - 56;
  EXPECT_EQ(Le32(tail, record), 0x06064b50u);
  EXPECT_EQ(Le64(tail, record + 4), 44u);
  EXPECT_EQ(Le16(tail, record + 14), 45u);  // version needed: 4.5
  Zip64End z{Le64(tail, record + 24), Le64(tail, record + 40), Le64(tail, record + 48),
             Le64(tail, locator + 8)};
  EXPECT_EQ(Le64(tail, record + 32), z.count);  // on this disk = in all
  return z;
}

TEST(ZipStream, Zip64PastSixtyFiveThousandEntries) {
  web::ZipStream z;
  const size_t n = 70000;
  uint64_t written = 0;
  for (size_t i = 0; i < n; ++i) {
    std::string name = "f";  // (not "f" + ...: GCC 12's -Wrestrict false positive)
    name += std::to_string(i);
    name += ".mbox";
    written += z.Begin(name, 1767225600).size();
    z.Data("x");
    written += 1;
    written += z.End().size();
  }
  std::string tail = z.Finish();
  Zip64End e = ReadZip64End(tail);
  EXPECT_EQ(e.count, n);
  EXPECT_EQ(e.cd_offset, written);
  EXPECT_EQ(e.record_offset, written + e.cd_size);
  size_t eocd = tail.size() - 22;
  EXPECT_EQ(Le16(tail, eocd + 8), 0xFFFFu);  // entries: see the Zip64 record
  EXPECT_EQ(Le16(tail, eocd + 10), 0xFFFFu);
  EXPECT_EQ(Le32(tail, eocd + 16), written);  // the offset still fits 32 bits
  // Entries themselves need no Zip64 extra: every central entry is 46 bytes
  // plus its name, and the last one points at its local header.
  size_t at = 0;
  uint64_t last_offset = 0;
  for (size_t i = 0; i < n; ++i) {
    ASSERT_EQ(Le32(tail, at), 0x02014b50u) << i;
    EXPECT_EQ(Le16(tail, at + 30), 0u);
    last_offset = Le32(tail, at + 42);
    at += 46 + Le16(tail, at + 28);
  }
  EXPECT_EQ(at, e.cd_size);
  EXPECT_EQ(last_offset, written - (30 + std::string("f69999.mbox").size() + 1 + 16));
  EXPECT_EQ(z.offset(), written + tail.size());
}

TEST(ZipStream, Zip64PastFourGibibytes) {
  web::ZipStream z;
  std::string head = z.Begin("INBOX.mbox", 1767225600);
  // 4 GiB and 10 bytes of one entry, fed in chunks (the CRC sees them all).
  const uint64_t size = (uint64_t{1} << 32) + 10;
  std::string chunk(64 << 20, 'a');
  const uint32_t chunk_crc = web::Crc32(0, chunk);
  uint32_t crc = 0;
  for (uint64_t left = size; left > 0;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(left, chunk.size()));
    std::string_view part(chunk.data(), n);
    z.Data(part);
    crc = n == chunk.size() ? static_cast<uint32_t>(crc32_combine(crc, chunk_crc, n))
                            : web::Crc32(crc, part);
    left -= n;
  }
  std::string d = z.End();
  ASSERT_EQ(d.size(), 24u);  // 8-byte sizes (APPNOTE 4.3.9.2)
  EXPECT_EQ(Le32(d, 4), crc);
  EXPECT_EQ(Le64(d, 8), size);
  EXPECT_EQ(Le64(d, 16), size);
  uint64_t second = head.size() + size + d.size();
  std::string head2 = z.Begin("Sent.mbox", 1767225600);
  z.Data("From y\n");
  std::string d2 = z.End();
  EXPECT_EQ(d2.size(), 16u);  // a small entry keeps the classic descriptor
  uint64_t cd = second + head2.size() + 7 + d2.size();
  std::string tail = z.Finish();
  // First central entry: sizes in its Zip64 extra, the offset (0) classic.
  EXPECT_EQ(Le16(tail, 6), 45u);
  EXPECT_EQ(Le32(tail, 16), crc);
  EXPECT_EQ(Le32(tail, 20), 0xFFFFFFFFu);
  EXPECT_EQ(Le32(tail, 24), 0xFFFFFFFFu);
  EXPECT_EQ(Le16(tail, 30), 20u);
  EXPECT_EQ(Le32(tail, 42), 0u);
  size_t extra = 46 + 10;
  EXPECT_EQ(Le16(tail, extra), 1u);
  EXPECT_EQ(Le16(tail, extra + 2), 16u);
  EXPECT_EQ(Le64(tail, extra + 4), size);
  EXPECT_EQ(Le64(tail, extra + 12), size);
  // Second: classic sizes, its local header's offset in the extra.
  size_t e2 = extra + 20;
  ASSERT_EQ(Le32(tail, e2), 0x02014b50u);
  EXPECT_EQ(Le16(tail, e2 + 6), 45u);
  EXPECT_EQ(Le32(tail, e2 + 20), 7u);
  EXPECT_EQ(Le32(tail, e2 + 42), 0xFFFFFFFFu);
  EXPECT_EQ(Le16(tail, e2 + 30), 12u);
  EXPECT_EQ(Le16(tail, e2 + 46 + 9), 1u);
  EXPECT_EQ(Le16(tail, e2 + 46 + 9 + 2), 8u);
  EXPECT_EQ(Le64(tail, e2 + 46 + 9 + 4), second);
  // The directory starts past 4 GiB: the Zip64 end records say where.
  Zip64End e = ReadZip64End(tail);
  EXPECT_EQ(e.count, 2u);
  EXPECT_EQ(e.cd_offset, cd);
  EXPECT_EQ(e.cd_size, e2 + 46 + 9 + 12);
  EXPECT_EQ(Le32(tail, tail.size() - 22 + 16), 0xFFFFFFFFu);
  EXPECT_EQ(Le16(tail, tail.size() - 22 + 10), 2u);
  EXPECT_EQ(z.offset(), cd + tail.size());
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
