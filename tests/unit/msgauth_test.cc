// Unit tests of src/msgauth: DKIM, SPF, DMARC and Authentication-Results,
// with a fake DNS table (msgauth/dns_table.h).
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "base/strings.h"
#include "msgauth/auth_results.h"
#include "msgauth/dkim.h"
#include "msgauth/dkim_record.h"
#include "msgauth/dmarc.h"
#include "msgauth/dns_table.h"
#include "msgauth/keyring.h"
#include "msgauth/spf.h"
#include "msgauth/spf_record.h"
#include "test_util.h"

namespace hato::msgauth {
namespace {

IpAddress Ip(std::string_view s) {
  auto ip = IpAddress::Parse(s);
  EXPECT_TRUE(ip.has_value()) << s;
  return ip.value_or(IpAddress{});
}

// ---------------------------------------------------------------- IP, DNS table

TEST(IpAddress, ParsePrefixAndReverse) {
  EXPECT_FALSE(IpAddress::Parse("1.2.3"));
  EXPECT_FALSE(IpAddress::Parse("1.2.3.4/8"));
  EXPECT_TRUE(Ip("192.0.2.130").InPrefix(Ip("192.0.2.128"), 25));
  EXPECT_FALSE(Ip("192.0.2.127").InPrefix(Ip("192.0.2.128"), 25));
  EXPECT_TRUE(Ip("10.0.0.1").InPrefix(Ip("192.0.2.1"), 0));
  EXPECT_FALSE(Ip("::1").InPrefix(Ip("0.0.0.0"), 0));  // families never match
  EXPECT_EQ(Ip("192.0.2.3").ReverseLabels(), "3.2.0.192");
  EXPECT_EQ(Ip("2001:db8::cb01").DottedForm(),
            "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.b.0.1");
  EXPECT_EQ(Ip("::ffff:192.0.2.3").Unmapped(), Ip("192.0.2.3"));
}

TEST(DnsTable, NxdomainNodataAndTempfail) {
  auto t = DnsTable::Parse(
      "# comment\n"
      "a.example TXT \"v=spf1 \" \"-all\"\n"
      "a.example A 192.0.2.1\n"
      "a.example MX 10 mx.example.\n"
      "192.0.2.1 PTR a.example\n"
      "slow.example TEMPFAIL\n"
      "half.example TEMPFAIL MX\n"
      "half.example A 192.0.2.9\n");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->Txt("A.Example.")->at(0), "v=spf1 -all");
  EXPECT_TRUE(t->Aaaa("a.example")->empty());  // NODATA
  auto nx = t->A("b.example");
  ASSERT_FALSE(nx.ok());
  EXPECT_TRUE(IsNxDomain(nx.error()));
  auto slow = t->Txt("slow.example");
  ASSERT_FALSE(slow.ok());
  EXPECT_EQ(slow.error().kind, ErrorKind::kTemporary);
  EXPECT_FALSE(t->Mx("half.example").ok());
  EXPECT_TRUE(t->A("half.example").ok());
  EXPECT_EQ(t->Mx("a.example")->at(0).exchange, "mx.example");
  EXPECT_EQ(t->Ptr(Ip("192.0.2.1"))->at(0), "a.example");
  EXPECT_FALSE(DnsTable::Parse("x.example BOGUS 1\n").ok());
  EXPECT_FALSE(DnsTable::Parse("x.example A 2001:db8::1\n").ok());
}

// ---------------------------------------------------------------- DKIM formats

TEST(DkimTags, TagListSyntax) {
  auto t = ParseTagList(" v = 1 ;a=rsa-sha256;\r\n\tb= ab cd\r\n ef ; x=;");
  ASSERT_TRUE(t.ok()) << t.error().message;
  ASSERT_EQ(t->size(), 4u);
  EXPECT_EQ((*t)[0].name, "v");
  EXPECT_EQ((*t)[0].value, "1");
  EXPECT_EQ((*t)[2].value, "ab cd\r\n ef");
  EXPECT_EQ(StripFws((*t)[2].value), "abcdef");
  EXPECT_EQ((*t)[3].value, "");
  EXPECT_FALSE(ParseTagList("a=1; a=2").ok());  // RFC 6376 3.2: duplicate
  EXPECT_FALSE(ParseTagList("1a=1").ok());
  EXPECT_FALSE(ParseTagList("a").ok());
  EXPECT_FALSE(ParseTagList("a=\x01").ok());
  EXPECT_TRUE(ParseTagList("").ok());
}

constexpr char kSig[] =
    "v=1; a=rsa-sha256; d=Example.ORG; s=sel; c=relaxed; h=From:To; "
    "bh=MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=; b=AAAA";

TEST(DkimTags, SignatureValidation) {
  auto s = ParseSignature(kSig);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->domain, "example.org");
  EXPECT_EQ(s->identity, "@example.org");
  EXPECT_EQ(s->header_canon, Canon::kRelaxed);
  EXPECT_EQ(s->body_canon, Canon::kSimple);  // "relaxed" alone: body simple (3.5 c=)
  EXPECT_EQ(s->headers, (std::vector<std::string>{"From", "To"}));

  std::string base = kSig;
  auto with = [&](std::string_view from, std::string_view to) {
    std::string x = base;
    x.replace(x.find(from), from.size(), to);
    return ParseSignature(x);
  };
  EXPECT_FALSE(with("v=1", "v=2").ok());
  EXPECT_FALSE(with("a=rsa-sha256", "a=rsa-sha1").ok());  // RFC 8301
  EXPECT_FALSE(with("h=From:To", "h=To:Subject").ok());   // From must be signed
  EXPECT_FALSE(with("s=sel;", "").ok());
  EXPECT_FALSE(with("c=relaxed", "c=fancy").ok());
  EXPECT_TRUE(with("d=Example.ORG", "d=Example.ORG; i=joe@sub.example.org").ok());
  EXPECT_FALSE(with("d=Example.ORG", "d=Example.ORG; i=joe@badexample.org").ok());
  EXPECT_FALSE(with("d=Example.ORG", "d=Example.ORG; t=200; x=100").ok());
  EXPECT_FALSE(with("d=Example.ORG", "d=Example.ORG; q=http").ok());
  EXPECT_FALSE(with("d=Example.ORG", "d=Example.ORG; l=-1").ok());
}

TEST(DkimTags, KeyRecords) {
  auto k = ParseKeyRecord("v=DKIM1; k=ed25519; t=y:s; p=" + Base64Encode(std::string(32, 'k')));
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->type, KeyType::kEd25519);
  EXPECT_TRUE(k->testing);
  EXPECT_TRUE(k->strict);
  auto revoked = ParseKeyRecord("v=DKIM1; p=");
  ASSERT_TRUE(revoked.ok());
  EXPECT_TRUE(revoked->revoked);
  EXPECT_TRUE(ParseKeyRecord("p=AAAA; unknown=tag; n=notes").ok());
  EXPECT_FALSE(ParseKeyRecord("k=rsa").ok());                   // no p=
  EXPECT_FALSE(ParseKeyRecord("k=rsa; v=DKIM1; p=AAAA").ok());  // v= not first
  EXPECT_FALSE(ParseKeyRecord("v=DKIM2; p=AAAA").ok());
  EXPECT_FALSE(ParseKeyRecord("h=sha1; p=AAAA").ok());
  EXPECT_TRUE(ParseKeyRecord("h=sha1:sha256; p=AAAA").ok());
  EXPECT_FALSE(ParseKeyRecord("k=dsa; p=AAAA").ok());
  EXPECT_FALSE(ParseKeyRecord("s=other; p=AAAA").ok());
  EXPECT_FALSE(ParseKeyRecord("k=ed25519; p=AAAA").ok());  // not 32 bytes
  EXPECT_FALSE(ParseKeyRecord("p=!!!!").ok());
}

TEST(DkimCanon, Rfc6376Section346Example) {
  // RFC 6376 section 3.4.6.
  EXPECT_EQ(CanonHeader(Canon::kRelaxed, "A: X\r\n"), "a:X\r\n");
  EXPECT_EQ(CanonHeader(Canon::kRelaxed, "B : Y\t\r\n\tZ  \r\n"), "b:Y Z\r\n");
  EXPECT_EQ(CanonHeader(Canon::kSimple, "B : Y\t\r\n\tZ  \r\n"), "B : Y\t\r\n\tZ  \r\n");
  const std::string body = " C \r\nD \t E\r\n\r\n\r\n";
  EXPECT_EQ(CanonBody(Canon::kRelaxed, body), " C\r\nD E\r\n");
  EXPECT_EQ(CanonBody(Canon::kSimple, body), " C \r\nD \t E\r\n");
  // Empty bodies (3.4.3, 3.4.4) and a missing final CRLF.
  EXPECT_EQ(CanonBody(Canon::kSimple, ""), "\r\n");
  EXPECT_EQ(CanonBody(Canon::kRelaxed, ""), "");
  EXPECT_EQ(CanonBody(Canon::kRelaxed, "\r\n  \r\n"), "");
  EXPECT_EQ(CanonBody(Canon::kSimple, "x"), "x\r\n");
  EXPECT_EQ(CanonBody(Canon::kRelaxed, "x \t"), "x\r\n");
}

// ---------------------------------------------------------------- DKIM sign/verify

constexpr char kMessage[] =
    "From: Joe <joe@example.org>\r\n"
    "To: suzie@example.net\r\n"
    "Subject: Is dinner ready?\r\n"
    "Date: Fri, 11 Jul 2003 21:00:37 -0700\r\n"
    "Message-ID: <1@example.org>\r\n"
    "\r\n"
    "Hi.\r\n\r\nWe lost the game.  Are you hungry yet?\r\n";

struct Keys {
  SigningKey rsa = SigningKey::Generate(KeyType::kRsa, 2048).value();
  SigningKey ed = SigningKey::Generate(KeyType::kEd25519).value();
};

const Keys& TestKeys() {
  static const Keys* keys = new Keys();  // RSA generation is slow: once per run
  return *keys;
}

DnsTable KeyTable() {
  DnsTable t;
  t.AddTxt("rsa._domainkey.example.org", TestKeys().rsa.DnsRecord().value());
  t.AddTxt("ed._domainkey.example.org", TestKeys().ed.DnsRecord().value());
  return t;
}

std::string SignWith(const SigningKey& key, std::string_view selector, std::string_view msg,
                     SignOptions so = {}) {
  so.domain = "example.org";
  so.selector = std::string(selector);
  auto sig = Sign(key, so, msg);
  EXPECT_TRUE(sig.ok()) << sig.error().message;
  return sig.value() + std::string(msg);
}

std::vector<DkimStatus> Statuses(std::string_view msg, DnsTable& dns, VerifyOptions vo = {}) {
  std::vector<DkimStatus> out;
  for (const auto& r : Verify(msg, dns, vo)) out.push_back(r.status);
  return out;
}

using S = std::vector<DkimStatus>;

TEST(Dkim, SignAndVerifyEveryAlgorithmAndCanonicalization) {
  DnsTable dns = KeyTable();
  for (const auto* key : {&TestKeys().rsa, &TestKeys().ed}) {
    std::string sel = key->type() == KeyType::kRsa ? "rsa" : "ed";
    for (Canon hc : {Canon::kSimple, Canon::kRelaxed}) {
      for (Canon bc : {Canon::kSimple, Canon::kRelaxed}) {
        SignOptions so;
        so.header_canon = hc;
        so.body_canon = bc;
        std::string signed_msg = SignWith(*key, sel, kMessage, so);
        auto results = Verify(signed_msg, dns, {});
        ASSERT_EQ(results.size(), 1u);
        EXPECT_EQ(results[0].status, DkimStatus::kPass) << sel << " " << results[0].reason;
        EXPECT_EQ(results[0].domain, "example.org");
        EXPECT_EQ(results[0].algorithm, sel == "rsa" ? "rsa-sha256" : "ed25519-sha256");

        std::string body_changed = signed_msg;
        body_changed.replace(body_changed.find("lost"), 4, "won!");
        EXPECT_EQ(Statuses(body_changed, dns), S{DkimStatus::kFail});
        std::string header_changed = signed_msg;
        header_changed.replace(header_changed.find("dinner"), 6, "supper");
        EXPECT_EQ(Statuses(header_changed, dns), S{DkimStatus::kFail});
      }
    }
  }
}

TEST(Dkim, RelaxedSurvivesWhitespaceAndFoldingChanges) {
  DnsTable dns = KeyTable();
  std::string m = SignWith(TestKeys().ed, "ed", kMessage);
  std::string refolded = m;
  refolded.replace(refolded.find("Subject: Is dinner"), 18, "SUBJECT:  Is\r\n\tdinner");
  refolded.replace(refolded.find("game."), 5, "game.   \t");
  EXPECT_EQ(Statuses(refolded, dns), S{DkimStatus::kPass});
}

TEST(Dkim, OversignedFromRejectsAnAddedFrom) {
  DnsTable dns = KeyTable();
  std::string m = SignWith(TestKeys().ed, "ed", kMessage);
  EXPECT_NE(m.find("h=from:from:"), std::string::npos);
  std::string added = m;
  added.insert(added.find("To: suzie"), "From: evil@example.com\r\n");
  EXPECT_EQ(Statuses(added, dns), S{DkimStatus::kFail});
  // An unsigned field may be added.
  EXPECT_EQ(Statuses("X-Spam: no\r\n" + m, dns), S{DkimStatus::kPass});
}

TEST(Dkim, KeyProblems) {
  DnsTable dns = KeyTable();
  dns.AddTxt("revoked._domainkey.example.org", "v=DKIM1; k=rsa; p=");
  dns.AddTempFail("slow._domainkey.example.org");
  dns.AddTxt("wrongtype._domainkey.example.org", TestKeys().rsa.DnsRecord().value());
  dns.AddTxt("garbage._domainkey.example.org", "v=DKIM1; p=%%%");
  auto one = [&](const SigningKey& key, std::string_view sel) {
    auto r = Verify(SignWith(key, sel, kMessage), dns, {});
    EXPECT_EQ(r.size(), 1u);
    return r.empty() ? DkimResult{} : r[0];
  };
  EXPECT_EQ(one(TestKeys().rsa, "revoked").status, DkimStatus::kPermError);
  EXPECT_EQ(one(TestKeys().rsa, "revoked").reason, "key revoked");
  EXPECT_EQ(one(TestKeys().rsa, "slow").status, DkimStatus::kTempError);
  EXPECT_EQ(one(TestKeys().rsa, "missing").status, DkimStatus::kPermError);
  EXPECT_EQ(one(TestKeys().ed, "wrongtype").status, DkimStatus::kPermError);
  EXPECT_EQ(one(TestKeys().rsa, "garbage").status, DkimStatus::kPermError);
  // Another domain's key does not verify this signature.
  dns.AddTxt("other._domainkey.example.org",
             SigningKey::Generate(KeyType::kEd25519).value().DnsRecord().value());
  EXPECT_EQ(one(TestKeys().ed, "other").status, DkimStatus::kFail);
}

TEST(Dkim, TestingAndStrictFlags) {
  DnsTable dns;
  std::string rec = TestKeys().ed.DnsRecord().value();
  dns.AddTxt("t._domainkey.example.org", rec + "; t=y");
  dns.AddTxt("s._domainkey.example.org", rec + "; t=s");
  auto r = Verify(SignWith(TestKeys().ed, "t", kMessage), dns, {});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].status, DkimStatus::kPass);
  EXPECT_TRUE(r[0].testing);
  SignOptions sub;
  sub.identity = "joe@mail.example.org";
  EXPECT_EQ(Statuses(SignWith(TestKeys().ed, "s", kMessage, sub), dns), S{DkimStatus::kPermError});
  SignOptions exact;
  exact.identity = "joe@example.org";
  EXPECT_EQ(Statuses(SignWith(TestKeys().ed, "s", kMessage, exact), dns), S{DkimStatus::kPass});
}

TEST(Dkim, ExpirationAndLengthPolicies) {
  DnsTable dns = KeyTable();
  SignOptions so;
  so.timestamp = 1'000'000;
  so.expire_after = 100;
  std::string m = SignWith(TestKeys().ed, "ed", kMessage, so);
  VerifyOptions vo;
  vo.now = 1'000'100;
  EXPECT_EQ(Statuses(m, dns, vo), S{DkimStatus::kPass});
  vo.now = 1'000'101;
  EXPECT_EQ(Statuses(m, dns, vo), S{DkimStatus::kFail});

  SignOptions len;
  len.body_length = true;
  std::string l = SignWith(TestKeys().rsa, "rsa", kMessage, len);
  std::string appended = l + "P.S. click here\r\n";
  VerifyOptions allow, reject_appended, reject_any;
  allow.length_policy = LengthPolicy::kAllowAppended;
  reject_any.length_policy = LengthPolicy::kRejectAnyLength;
  EXPECT_EQ(Statuses(l, dns, reject_appended), S{DkimStatus::kPass});
  EXPECT_EQ(Statuses(appended, dns, reject_appended), S{DkimStatus::kPolicy});
  EXPECT_EQ(Statuses(appended, dns, allow), S{DkimStatus::kPass});
  EXPECT_EQ(Statuses(l, dns, reject_any), S{DkimStatus::kPolicy});
}

TEST(Dkim, SeveralSignaturesEachJudgedAndBounded) {
  DnsTable dns = KeyTable();
  std::string twice = SignWith(TestKeys().rsa, "rsa", SignWith(TestKeys().ed, "ed", kMessage));
  EXPECT_EQ(Statuses(twice, dns), (S{DkimStatus::kPass, DkimStatus::kPass}));
  std::string broken = "DKIM-Signature: v=1; a=rsa-sha256\r\n" + twice;
  EXPECT_EQ(Statuses(broken, dns),
            (S{DkimStatus::kPermError, DkimStatus::kPass, DkimStatus::kPass}));
  VerifyOptions two;
  two.max_signatures = 2;
  EXPECT_EQ(Statuses(broken, dns, two).size(), 2u);
  EXPECT_TRUE(Statuses(kMessage, dns).empty());
}

TEST(Dkim, KeysRoundTripThroughPem) {
  for (const auto* key : {&TestKeys().rsa, &TestKeys().ed}) {
    auto pem = key->PrivatePem();
    ASSERT_TRUE(pem.ok());
    auto again = SigningKey::FromPem(*pem);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(again->DnsRecord().value(), key->DnsRecord().value());
  }
  EXPECT_FALSE(SigningKey::FromPem("not a key").ok());
  SignOptions so;
  so.domain = "example.org";
  so.selector = "s";
  EXPECT_FALSE(Sign(TestKeys().ed, so, "Subject: no from\r\n\r\n").ok());
}

TEST(DkimKeyRing, LoadsKeysAndSignsByFromDomain) {
  testing::TempDir dir;
  auto* fs = io::FileSystem::Default();
  std::string d = dir.path() + "/dkim";
  auto empty = KeyRing::Load(*fs, d);  // no directory yet: no keys
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->size(), 0u);
  ASSERT_TRUE(fs->CreateDirs(d).ok());
  ASSERT_TRUE(
      fs->WriteFileAtomic(d + "/example.org.2026a.key", TestKeys().rsa.PrivatePem().value()).ok());
  ASSERT_TRUE(
      fs->WriteFileAtomic(d + "/example.org.2026b.key", TestKeys().ed.PrivatePem().value()).ok());
  ASSERT_TRUE(fs->WriteFileAtomic(d + "/README", "not a key").ok());
  auto ring = KeyRing::Load(*fs, d);
  ASSERT_TRUE(ring.ok()) << ring.error().message;
  ASSERT_NE(ring->For("Example.ORG"), nullptr);
  EXPECT_EQ(ring->For("example.org")->selector, "2026b");  // the greatest selector
  EXPECT_EQ(ring->For("other.example"), nullptr);

  auto sig = ring->SignatureFor(kMessage, 1'700'000'000);
  ASSERT_TRUE(sig.ok());
  DnsTable dns;
  dns.AddTxt("2026b._domainkey.example.org", TestKeys().ed.DnsRecord().value());
  EXPECT_EQ(Statuses(*sig + kMessage, dns), S{DkimStatus::kPass});
  EXPECT_EQ(ring->SignatureFor("From: a@other.example\r\n\r\nx\r\n", 0).value(), "");

  ASSERT_TRUE(fs->WriteFileAtomic(d + "/bad.example.s.key", "garbage").ok());
  auto bad = KeyRing::Load(*fs, d);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("bad.example.s.key"), std::string::npos);
}

// Mailing-list copies signed one by one ([lists] copy_dkim): a domain with an
// RSA and an Ed25519 key signs with the one(s) the choice names, and every
// signature verifies.
TEST(DkimKeyRing, SignaturesByKeyChoice) {
  testing::TempDir dir;
  auto* fs = io::FileSystem::Default();
  std::string d = dir.path() + "/dkim";
  ASSERT_TRUE(fs->CreateDirs(d).ok());
  // The RSA key has the greatest selector: the domain's key for everything else.
  ASSERT_TRUE(
      fs->WriteFileAtomic(d + "/example.org.rsa.key", TestKeys().rsa.PrivatePem().value()).ok());
  ASSERT_TRUE(
      fs->WriteFileAtomic(d + "/example.org.ed.key", TestKeys().ed.PrivatePem().value()).ok());
  ASSERT_TRUE(
      fs->WriteFileAtomic(d + "/rsa-only.example.s.key", TestKeys().rsa.PrivatePem().value()).ok());
  auto ring = KeyRing::Load(*fs, d);
  ASSERT_TRUE(ring.ok()) << ring.error().message;
  EXPECT_EQ(ring->For("example.org")->selector, "rsa");
  ASSERT_NE(ring->For("example.org", KeyType::kEd25519), nullptr);
  EXPECT_EQ(ring->For("example.org", KeyType::kEd25519)->selector, "ed");
  EXPECT_EQ(ring->For("example.org", KeyType::kRsa)->selector, "rsa");
  EXPECT_EQ(ring->For("rsa-only.example", KeyType::kEd25519), nullptr);

  EXPECT_EQ(ParseKeyChoice("key"), KeyChoice::kDomainKey);
  EXPECT_EQ(ParseKeyChoice("ed25519"), KeyChoice::kEd25519);
  EXPECT_EQ(ParseKeyChoice("rsa+ed25519"), KeyChoice::kRsaAndEd25519);
  EXPECT_EQ(ParseKeyChoice("rsa"), std::nullopt);

  DnsTable dns = KeyTable();
  dns.AddTxt("s._domainkey.rsa-only.example", TestKeys().rsa.DnsRecord().value());
  auto algorithms = [&](std::string_view domain, std::string_view msg, KeyChoice choice) {
    auto sig = ring->SignaturesAs(domain, msg, 1'700'000'000, choice);
    std::vector<std::string> out;
    if (!sig.ok()) {
      ADD_FAILURE() << sig.error().message;
      return out;
    }
    for (const auto& r : Verify(*sig + std::string(msg), dns, {})) {
      EXPECT_EQ(r.status, DkimStatus::kPass) << r.algorithm << " " << r.reason;
      out.push_back(r.algorithm + " s=" + r.selector);
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(algorithms("example.org", kMessage, KeyChoice::kDomainKey), V{"rsa-sha256 s=rsa"});
  EXPECT_EQ(algorithms("Example.org", kMessage, KeyChoice::kEd25519), V{"ed25519-sha256 s=ed"});
  EXPECT_EQ(algorithms("example.org", kMessage, KeyChoice::kRsaAndEd25519),
            (V{"ed25519-sha256 s=ed", "rsa-sha256 s=rsa"}));
  // A domain without an Ed25519 key keeps its own key; one without keys stays unsigned.
  std::string other = "From: a@rsa-only.example\r\nSubject: x\r\n\r\nx\r\n";
  EXPECT_EQ(algorithms("rsa-only.example", other, KeyChoice::kEd25519), V{"rsa-sha256 s=s"});
  EXPECT_EQ(algorithms("rsa-only.example", other, KeyChoice::kRsaAndEd25519), V{"rsa-sha256 s=s"});
  EXPECT_EQ(ring->SignaturesAs("none.example", other, 0, KeyChoice::kEd25519).value(), "");
}

// ---------------------------------------------------------------- SPF

TEST(SpfRecord, Syntax) {
  EXPECT_TRUE(IsSpfRecord("v=spf1"));
  EXPECT_TRUE(IsSpfRecord("V=SPF1 -all"));
  EXPECT_FALSE(IsSpfRecord("v=spf10"));
  auto r = ParseSpfRecord(
      "v=spf1 +a/24//64 ~mx:mx.%{d} ip4:192.0.2.0/24 ip6:2001:db8::/32 "
      "-include:_spf.example.com ?exists:%{i}.x.example ptr all "
      "redirect=r.example exp=e.example unknown=%{d}");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->mechanisms.size(), 8u);
  EXPECT_EQ(r->mechanisms[0].cidr4, 24);
  EXPECT_EQ(r->mechanisms[0].cidr6, 64);
  EXPECT_EQ(r->mechanisms[1].qualifier, SpfQualifier::kSoftFail);
  EXPECT_EQ(r->mechanisms[1].domain_spec, "mx.%{d}");
  EXPECT_EQ(r->mechanisms[2].cidr4, 24);
  EXPECT_EQ(r->mechanisms[4].qualifier, SpfQualifier::kFail);
  EXPECT_EQ(r->redirect, "r.example");
  for (const char* bad :
       {"v=spf1 ip4:192.0.2.0/33", "v=spf1 ip6:2001:db8::/129",
        "v=spf1 ip4:2001:db8::", "v=spf1 a/01", "v=spf1 include", "v=spf1 foo",
        "v=spf1 redirect=a.example redirect=b.example", "v=spf1 exp=a.example exp=b.example",
        "v=spf1 a:%{x}.example", "v=spf1 a:nodot", "v=spf1 all:x",
        "v=spf1 -exists:%(ir).example.com", "v=spf1 a:example.-com"}) {
    EXPECT_FALSE(ParseSpfRecord(bad).ok()) << bad;
  }
}

TEST(SpfMacros, Rfc7208Section74Examples) {
  MacroContext c;
  c.sender = "strong-bad@email.example.com";
  c.local = "strong-bad";
  c.sender_domain = "email.example.com";
  c.domain = "email.example.com";
  c.ip = Ip("192.0.2.3");
  auto x = [&c](std::string_view s) { return ExpandMacros(s, c, false).value(); };
  EXPECT_EQ(x("%{s}"), "strong-bad@email.example.com");
  EXPECT_EQ(x("%{o}"), "email.example.com");
  EXPECT_EQ(x("%{d}"), "email.example.com");
  EXPECT_EQ(x("%{d4}"), "email.example.com");
  EXPECT_EQ(x("%{d3}"), "email.example.com");
  EXPECT_EQ(x("%{d2}"), "example.com");
  EXPECT_EQ(x("%{d1}"), "com");
  EXPECT_EQ(x("%{dr}"), "com.example.email");
  EXPECT_EQ(x("%{d2r}"), "example.email");
  EXPECT_EQ(x("%{l}"), "strong-bad");
  EXPECT_EQ(x("%{l-}"), "strong.bad");
  EXPECT_EQ(x("%{lr}"), "strong-bad");
  EXPECT_EQ(x("%{lr-}"), "bad.strong");
  EXPECT_EQ(x("%{l1r-}"), "strong");
  EXPECT_EQ(x("%{ir}.%{v}._spf.%{d2}"), "3.2.0.192.in-addr._spf.example.com");
  EXPECT_EQ(x("%{lr-}.lp._spf.%{d2}"), "bad.strong.lp._spf.example.com");
  EXPECT_EQ(x("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}"),
            "bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
  EXPECT_EQ(x("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}"), "3.2.0.192.in-addr.strong.lp._spf.example.com");
  EXPECT_EQ(x("%{d2}.trusted-domains.example.net"), "example.com.trusted-domains.example.net");
  c.ip = Ip("2001:db8::cb01");
  EXPECT_EQ(x("%{ir}.%{v}._spf.%{d2}"),
            "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
  EXPECT_EQ(x("%%%_%-"), "% %20");
  EXPECT_EQ(x("%{S}"), "strong-bad%40email.example.com");  // upper case: URL-escaped
  EXPECT_FALSE(ExpandMacros("%{c}", c, false).ok());       // c, r, t only in exp
  EXPECT_TRUE(ExpandMacros("%{c} via %{r} at %{t}", c, true).ok());
  EXPECT_EQ(TruncateDomain(std::string(250, 'a') + ".example.com."), "example.com");
}

SpfResult Check(DnsTable& dns, std::string_view ip, std::string_view from) {
  SpfRequest req;
  req.ip = Ip(ip);
  req.helo = "helo.example.net";
  req.mail_from = std::string(from);
  return CheckMailFrom(dns, req).result;
}

TEST(Spf, ResultsOfEachKind) {
  auto dns = DnsTable::Parse(
                 "example.org TXT v=spf1 ip4:192.0.2.0/24 a mx -all\n"
                 "example.org A 198.51.100.1\n"
                 "example.org MX 10 mx.example.org\n"
                 "mx.example.org AAAA 2001:db8::25\n"
                 "soft.example TXT v=spf1 ~all\n"
                 "neutral.example TXT v=spf1 ?all\n"
                 "nomatch.example TXT v=spf1 ip4:10.0.0.0/8\n"
                 "dup.example TXT v=spf1 -all\n"
                 "dup.example TXT v=spf1 +all\n"
                 "other.example TXT google-site-verification=x\n"
                 "temp.example TEMPFAIL\n"
                 "inc.example TXT v=spf1 include:example.org include:temp.example -all\n"
                 "inc-none.example TXT v=spf1 include:other.example -all\n"
                 "redir.example TXT v=spf1 redirect=example.org\n")
                 .value();
  EXPECT_EQ(Check(dns, "192.0.2.77", "a@example.org"), SpfResult::kPass);
  EXPECT_EQ(Check(dns, "198.51.100.1", "a@example.org"), SpfResult::kPass);
  EXPECT_EQ(Check(dns, "2001:db8::25", "a@example.org"), SpfResult::kPass);
  EXPECT_EQ(Check(dns, "::ffff:192.0.2.1", "a@example.org"), SpfResult::kPass);
  EXPECT_EQ(Check(dns, "203.0.113.1", "a@example.org"), SpfResult::kFail);
  EXPECT_EQ(Check(dns, "203.0.113.1", "a@soft.example"), SpfResult::kSoftFail);
  EXPECT_EQ(Check(dns, "203.0.113.1", "a@neutral.example"), SpfResult::kNeutral);
  EXPECT_EQ(Check(dns, "203.0.113.1", "a@nomatch.example"), SpfResult::kNeutral);
  EXPECT_EQ(Check(dns, "203.0.113.1", "a@dup.example"), SpfResult::kPermError);
  EXPECT_EQ(Check(dns, "203.0.113.1", "a@other.example"), SpfResult::kNone);
  EXPECT_EQ(Check(dns, "203.0.113.1", "a@nxdomain.example"), SpfResult::kNone);
  EXPECT_EQ(Check(dns, "203.0.113.1", "a@temp.example"), SpfResult::kTempError);
  EXPECT_EQ(Check(dns, "192.0.2.1", "a@inc.example"), SpfResult::kPass);  // before temp
  EXPECT_EQ(Check(dns, "203.0.113.1", "a@inc.example"), SpfResult::kTempError);
  EXPECT_EQ(Check(dns, "203.0.113.1", "a@inc-none.example"), SpfResult::kPermError);
  EXPECT_EQ(Check(dns, "192.0.2.1", "a@redir.example"), SpfResult::kPass);
  EXPECT_EQ(Check(dns, "203.0.113.1", "a@redir.example"), SpfResult::kFail);
  EXPECT_EQ(Check(dns, "203.0.113.1", "a@not a domain"), SpfResult::kNone);
}

TEST(Spf, TenLookupLimitAndVoidLimit) {
  auto chain = [](int n) {
    DnsTable t;
    std::string rec = "v=spf1";
    for (int i = 0; i < n; ++i) {
      std::string host = "h";
      host += std::to_string(i);
      host += ".example";
      rec += " a:";
      rec += host;
      t.AddA(host, "192.0.2.200");
    }
    t.AddTxt("limit.example", rec + " +all");
    return t;
  };
  DnsTable ten = chain(10), eleven = chain(11);
  EXPECT_EQ(Check(ten, "203.0.113.1", "a@limit.example"), SpfResult::kPass);
  EXPECT_EQ(Check(eleven, "203.0.113.1", "a@limit.example"), SpfResult::kPermError);
  // The limit stops the lookups: no 11th query is made.
  size_t a_queries = 0;
  for (const auto& q : eleven.queries()) a_queries += q.starts_with("A ");
  EXPECT_EQ(a_queries, 10u);

  DnsTable v;
  v.AddTxt("two.example", "v=spf1 a:n1.example a:n2.example +all");
  v.AddTxt("three.example", "v=spf1 a:n1.example a:n2.example exists:n3.example +all");
  EXPECT_EQ(Check(v, "203.0.113.1", "a@two.example"), SpfResult::kPass);
  EXPECT_EQ(Check(v, "203.0.113.1", "a@three.example"), SpfResult::kPermError);

  // An include loop ends at the limit.
  DnsTable loop;
  loop.AddTxt("loop.example", "v=spf1 include:loop.example -all");
  EXPECT_EQ(Check(loop, "203.0.113.1", "a@loop.example"), SpfResult::kPermError);
}

TEST(Spf, PtrExistsAndExplanation) {
  DnsTable dns;
  dns.AddTxt("p.example", "v=spf1 ptr -all");
  dns.AddPtr("192.0.2.5", "mail.p.example");
  dns.AddPtr("192.0.2.6", "forged.p.example");  // forward lookup does not confirm
  dns.AddA("mail.p.example", "192.0.2.5");
  dns.AddA("forged.p.example", "192.0.2.99");
  EXPECT_EQ(Check(dns, "192.0.2.5", "a@p.example"), SpfResult::kPass);
  EXPECT_EQ(Check(dns, "192.0.2.6", "a@p.example"), SpfResult::kFail);
  EXPECT_EQ(Check(dns, "192.0.2.7", "a@p.example"), SpfResult::kFail);  // no PTR: no match

  dns.AddTxt("e.example", "v=spf1 exists:%{l}.allowed.e.example -all exp=why.e.example");
  dns.AddA("ok.allowed.e.example", "127.0.0.2");
  dns.AddTxt("why.e.example", "%{l} may not send from %{i} (%{p})");
  EXPECT_EQ(Check(dns, "192.0.2.5", "ok@e.example"), SpfResult::kPass);
  SpfRequest req;
  req.ip = Ip("192.0.2.5");
  req.mail_from = "no@e.example";
  auto out = CheckMailFrom(dns, req);
  EXPECT_EQ(out.result, SpfResult::kFail);
  EXPECT_EQ(out.explanation, "no may not send from 192.0.2.5 (mail.p.example)");
}

TEST(Spf, NullPathUsesHelo) {
  DnsTable dns;
  dns.AddTxt("helo.example.net", "v=spf1 ip4:192.0.2.1 -all");
  SpfRequest req;
  req.ip = Ip("192.0.2.1");
  req.helo = "helo.example.net";
  auto out = CheckMailFrom(dns, req);
  EXPECT_EQ(out.result, SpfResult::kPass);
  EXPECT_EQ(out.domain, "helo.example.net");
  req.ip = Ip("192.0.2.2");
  EXPECT_EQ(CheckHelo(dns, req).result, SpfResult::kFail);
}

// ---------------------------------------------------------------- DMARC

TEST(Dmarc, OrganizationalDomain) {
  EXPECT_EQ(OrganizationalDomain("mail.Example.COM"), "example.com");
  EXPECT_EQ(OrganizationalDomain("example.com"), "example.com");
  EXPECT_EQ(OrganizationalDomain("a.b.example.co.uk"), "example.co.uk");
  EXPECT_EQ(OrganizationalDomain("co.uk"), "co.uk");
  EXPECT_EQ(OrganizationalDomain("com"), "com");
  EXPECT_EQ(OrganizationalDomain("x.y.z.example.com."), "example.com");
}

TEST(Dmarc, RecordParsing) {
  auto r = ParseDmarcRecord("v=DMARC1; p=reject; sp=quarantine; adkim=s; aspf=r; pct=20");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->policy, DmarcPolicy::kReject);
  EXPECT_EQ(r->subdomain_policy, DmarcPolicy::kQuarantine);
  EXPECT_TRUE(r->strict_dkim);
  EXPECT_FALSE(r->strict_spf);
  EXPECT_EQ(r->pct, 20);
  EXPECT_FALSE(ParseDmarcRecord("p=reject; v=DMARC1").ok());
  EXPECT_FALSE(ParseDmarcRecord("v=DMARC1").ok());
  EXPECT_FALSE(ParseDmarcRecord("v=DMARC1; p=bogus").ok());
  auto rua_only = ParseDmarcRecord("v=DMARC1; rua=mailto:d@example.com");
  ASSERT_TRUE(rua_only.ok());  // RFC 7489 6.6.3: p=none assumed
  EXPECT_EQ(rua_only->policy, DmarcPolicy::kNone);
  EXPECT_EQ(ParseDmarcRecord("v=DMARC1; p=none; pct=500")->pct, 100);
}

TEST(Dmarc, FromDomain) {
  EXPECT_EQ(FromDomain("From: Joe <joe@Mail.Example.org>\r\n\r\nx").value(), "mail.example.org");
  EXPECT_FALSE(FromDomain("From: a@x.example\r\nFrom: b@x.example\r\n\r\n").ok());
  EXPECT_FALSE(FromDomain("From: a@x.example, b@y.example\r\n\r\n").ok());
  EXPECT_TRUE(FromDomain("From: a@x.example, b@x.example\r\n\r\n").ok());
  EXPECT_FALSE(FromDomain("To: a@x.example\r\n\r\n").ok());
}

TEST(Dmarc, AlignmentPolicyAndSampling) {
  DnsTable dns;
  dns.AddTxt("_dmarc.example.com", "v=DMARC1; p=reject; sp=quarantine; pct=50");
  dns.AddTxt("_dmarc.strict.example", "v=DMARC1; p=reject; adkim=s; aspf=s");
  dns.AddTempFail("_dmarc.slow.example");
  dns.AddTxt("_dmarc.two.example", "v=DMARC1; p=none");
  dns.AddTxt("_dmarc.two.example", "v=DMARC1; p=reject");
  auto check = [&](std::string from, SpfResult spf, std::string spf_domain,
                   std::vector<std::string> dkim, int sample = 0) {
    DmarcInput in;
    in.from_domain = std::move(from);
    in.spf = spf;
    in.spf_domain = std::move(spf_domain);
    in.dkim_pass_domains = std::move(dkim);
    in.sample = sample;
    return CheckDmarc(dns, in);
  };
  // Relaxed alignment: a subdomain's DKIM or SPF pass aligns.
  auto r = check("example.com", SpfResult::kFail, "x.example", {"mail.example.com"});
  EXPECT_EQ(r.status, DmarcStatus::kPass);
  EXPECT_TRUE(r.dkim_aligned);
  r = check("example.com", SpfResult::kPass, "bounce.example.com", {});
  EXPECT_EQ(r.status, DmarcStatus::kPass);
  EXPECT_TRUE(r.spf_aligned);
  // SPF softfail does not count.
  r = check("example.com", SpfResult::kSoftFail, "example.com", {"other.example"});
  EXPECT_EQ(r.status, DmarcStatus::kFail);
  EXPECT_EQ(r.requested, DmarcPolicy::kReject);
  EXPECT_EQ(r.applied, DmarcPolicy::kReject);  // sample 0 < pct 50
  r = check("example.com", SpfResult::kNone, "", {}, 50);
  EXPECT_EQ(r.applied, DmarcPolicy::kQuarantine);  // outside pct: one step less
  // Organizational fallback and sp=.
  r = check("news.example.com", SpfResult::kNone, "", {});
  EXPECT_EQ(r.record_domain, "example.com");
  EXPECT_EQ(r.requested, DmarcPolicy::kQuarantine);
  // Strict alignment.
  r = check("strict.example", SpfResult::kPass, "mail.strict.example", {"mail.strict.example"});
  EXPECT_EQ(r.status, DmarcStatus::kFail);
  r = check("strict.example", SpfResult::kNone, "", {"strict.example"});
  EXPECT_EQ(r.status, DmarcStatus::kPass);
  EXPECT_EQ(check("nothing.example", SpfResult::kPass, "nothing.example", {}).status,
            DmarcStatus::kNone);
  EXPECT_EQ(check("slow.example", SpfResult::kPass, "slow.example", {}).status,
            DmarcStatus::kTempError);
  EXPECT_EQ(check("two.example", SpfResult::kNone, "", {}).status, DmarcStatus::kNone);
}

TEST(PublicSuffixList, RulesWildcardsAndExceptions) {
  auto psl = PublicSuffixList::Parse(
      "// ===BEGIN ICANN DOMAINS===\n"
      "com\nuk\nco.uk\njp\n*.kawasaki.jp\n!city.kawasaki.jp\nck\n*.ck\n!www.ck\n"
      "// ===BEGIN PRIVATE DOMAINS===\ngithub.io\n");
  ASSERT_TRUE(psl.ok()) << psl.error().message;
  EXPECT_EQ(psl->OrganizationalDomain("mail.example.co.uk"), "example.co.uk");
  EXPECT_EQ(psl->OrganizationalDomain("example.com"), "example.com");
  EXPECT_EQ(psl->OrganizationalDomain("com"), "com");  // a suffix is its own organization
  EXPECT_EQ(psl->OrganizationalDomain("a.b.foo.kawasaki.jp"), "b.foo.kawasaki.jp");
  EXPECT_EQ(psl->OrganizationalDomain("a.city.kawasaki.jp"), "city.kawasaki.jp");
  EXPECT_EQ(psl->OrganizationalDomain("www.ck"), "www.ck");
  EXPECT_EQ(psl->OrganizationalDomain("x.other.ck"), "x.other.ck");
  EXPECT_EQ(psl->OrganizationalDomain("alice.github.io"), "alice.github.io");
  EXPECT_EQ(psl->OrganizationalDomain("mail.example.unknowntld"), "example.unknowntld");
  EXPECT_FALSE(PublicSuffixList::Parse("// only comments\n").ok());
}

TEST(PublicSuffixList, DebianListSeparatesPrivateSuffixes) {
  // Debian's publicsuffix package (scripts/install-deps.sh).
  std::ifstream f(kDebianPublicSuffixList);
  ASSERT_TRUE(f.good()) << kDebianPublicSuffixList;
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto psl = PublicSuffixList::Parse(text);
  ASSERT_TRUE(psl.ok());
  EXPECT_GT(psl->size(), 5000u);
  EXPECT_EQ(OrganizationalDomain("Mail.Example.CO.UK.", &*psl), "example.co.uk");
  EXPECT_EQ(OrganizationalDomain("news.alice.github.io", &*psl), "alice.github.io");
  // The built-in table does not know the private suffix: both sites align.
  EXPECT_EQ(OrganizationalDomain("news.alice.github.io"), "github.io");

  DnsTable dns;
  dns.AddTxt("_dmarc.alice.github.io", "v=DMARC1; p=reject");
  DmarcInput in;
  in.from_domain = "alice.github.io";
  in.spf = SpfResult::kPass;
  in.spf_domain = "mallory.github.io";
  EXPECT_EQ(CheckDmarc(dns, in).status, DmarcStatus::kPass);  // built-in: wrongly aligned
  in.psl = &*psl;
  EXPECT_EQ(CheckDmarc(dns, in).status, DmarcStatus::kFail);
}

TEST(Dmarc, Disposition) {
  DmarcOutcome o;
  o.status = DmarcStatus::kFail;
  o.applied = DmarcPolicy::kReject;
  EXPECT_EQ(DecideDisposition(o, RejectHandling::kReject), Disposition::kReject);
  EXPECT_EQ(DecideDisposition(o, RejectHandling::kJunk), Disposition::kJunk);
  EXPECT_EQ(DecideDisposition(o, RejectHandling::kNone), Disposition::kDeliver);
  o.applied = DmarcPolicy::kQuarantine;  // p=quarantine, or p=reject outside pct=
  EXPECT_EQ(DecideDisposition(o, RejectHandling::kReject), Disposition::kJunk);
  EXPECT_EQ(DecideDisposition(o, RejectHandling::kNone), Disposition::kDeliver);
  o.applied = DmarcPolicy::kNone;
  EXPECT_EQ(DecideDisposition(o, RejectHandling::kReject), Disposition::kDeliver);
  // Only a failure is acted on: temperror never rejects.
  o.status = DmarcStatus::kTempError;
  o.applied = DmarcPolicy::kReject;
  EXPECT_EQ(DecideDisposition(o, RejectHandling::kReject), Disposition::kDeliver);
}

// ---------------------------------------------------------------- Authentication-Results

TEST(AuthResults, Format) {
  EXPECT_EQ(FormatAuthResults("mx.example.org", {}),
            "Authentication-Results: mx.example.org; none\r\n");
  std::vector<AuthMethod> m = {{"spf", "pass", "", {{"smtp.mailfrom", "joe@example.com"}}},
                               {"dkim",
                                "fail",
                                "body hash (did) not verify",
                                {{"header.d", "example.com"}, {"header.b", "ab+/cd=="}}},
                               {"dmarc", "fail", "", {{"header.from", "example.com"}}}};
  EXPECT_EQ(FormatAuthResults("mx.example.org", m),
            "Authentication-Results: mx.example.org;\r\n"
            "\tspf=pass smtp.mailfrom=joe@example.com;\r\n"
            "\tdkim=fail (body hash \\(did\\) not verify) header.d=example.com "
            "header.b=\"ab+/cd==\";\r\n"
            "\tdmarc=fail header.from=example.com\r\n");
}

TEST(AuthResults, RemoveOwnResultsOnly) {
  std::string msg =
      "Authentication-Results: MX.example.org; spf=pass\r\n"
      "Authentication-Results: other.example; dkim=pass\r\n"
      "Authentication-Results: mx.example.org 1;\r\n dkim=pass\r\n"
      "Subject: x\r\n\r\nAuthentication-Results: mx.example.org; in the body\r\n";
  EXPECT_EQ(RemoveOwnResults(msg, "mx.example.org"),
            "Authentication-Results: other.example; dkim=pass\r\n"
            "Subject: x\r\n\r\nAuthentication-Results: mx.example.org; in the body\r\n");
}

TEST(AuthResults, InboundCheckEndToEnd) {
  DnsTable dns = KeyTable();
  dns.AddTxt("example.org", "v=spf1 ip4:192.0.2.0/24 -all");
  dns.AddTxt("_dmarc.example.org", "v=DMARC1; p=reject");
  InboundCheck in;
  in.ip = Ip("192.0.2.10");
  in.helo = "mail.example.org";
  in.mail_from = "joe@example.org";
  in.authserv_id = "mx.hato.test";
  std::string signed_msg = SignWith(TestKeys().ed, "ed", kMessage);
  auto r = CheckInbound(dns, in, signed_msg);
  EXPECT_EQ(r.spf.result, SpfResult::kPass);
  ASSERT_EQ(r.dkim.size(), 1u);
  EXPECT_EQ(r.dmarc.status, DmarcStatus::kPass);
  EXPECT_NE(r.header.find("spf=pass"), std::string::npos) << r.header;
  EXPECT_NE(r.header.find("dkim=pass"), std::string::npos) << r.header;
  EXPECT_NE(r.header.find("dmarc=pass (p=reject dis=none) header.from=example.org"),
            std::string::npos)
      << r.header;

  // A forged message from a foreign IP without a signature: DMARC fails,
  // reject is requested and applied.
  in.ip = Ip("203.0.113.66");
  r = CheckInbound(dns, in, kMessage);
  EXPECT_EQ(r.spf.result, SpfResult::kFail);
  EXPECT_TRUE(r.dkim.empty());
  EXPECT_EQ(r.dmarc.status, DmarcStatus::kFail);
  EXPECT_EQ(r.dmarc.applied, DmarcPolicy::kReject);
  EXPECT_NE(r.header.find("dkim=none"), std::string::npos) << r.header;
  EXPECT_NE(r.header.find("dmarc=fail (p=reject dis=reject)"), std::string::npos) << r.header;
}

}  // namespace
}  // namespace hato::msgauth
