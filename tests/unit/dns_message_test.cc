// DNS messages of the DNSSEC-aware stub (src/dns/message.h): the query asks
// for AD (RFC 6840 5.7) with EDNS0 DO, and responses give their AD bit and
// the answers of the question's type, names compressed or not.
#include <gtest/gtest.h>

#include "dns/message.h"

namespace hato::dns {
namespace {

std::string U16(uint16_t v) { return std::string{static_cast<char>(v >> 8), static_cast<char>(v)}; }

std::string Name(std::initializer_list<std::string> labels) {
  std::string out;
  for (const auto& l : labels) out += static_cast<char>(l.size()) + l;
  return out + '\0';
}

// A response header: id 0x1234, QR|RD|RA plus `flags`, one question.
std::string Header(uint16_t flags, uint16_t ancount) {
  return U16(0x1234) + U16(0x8180 | flags) + U16(1) + U16(ancount) + U16(0) + U16(0);
}

std::string Rr(const std::string& owner, uint16_t type, const std::string& rdata) {
  return owner + U16(type) + U16(1) + std::string("\0\0\0\x3c", 4) + U16(rdata.size()) + rdata;
}

TEST(DnsMessage, QueryAsksForAdWithEdnsDo) {
  auto q = BuildQuery(0xbeef, "_25._tcp.MX.example.", kTypeTlsa);
  ASSERT_TRUE(q);
  std::string want = U16(0xbeef) + U16(0x0120) + U16(1) + U16(0) + U16(0) + U16(1) +
                     Name({"_25", "_tcp", "MX", "example"}) + U16(52) + U16(1) +
                     std::string(1, '\0') + U16(41) + U16(1232) + U16(0) + U16(0x8000) + U16(0);
  EXPECT_EQ(*q, want);
}

TEST(DnsMessage, QueryRefusesBadNames) {
  EXPECT_FALSE(BuildQuery(1, "a..b", kTypeA));
  EXPECT_FALSE(BuildQuery(1, std::string(64, 'a') + ".example", kTypeA));
  std::string long_name;
  for (int i = 0; i < 5; ++i) long_name += std::string(60, 'a') + ".";
  EXPECT_FALSE(BuildQuery(1, long_name + "example", kTypeA));
}

TEST(DnsMessage, ResponseWithAdAndCompressedOwners) {
  std::string q = Name({"_25", "_tcp", "mx", "Example"}) + U16(52) + U16(1);
  std::string ptr("\xc0\x0c", 2);  // the question's name
  std::string tlsa1 = std::string("\x03\x01\x01", 3) + std::string(32, 'x');
  std::string tlsa2 = std::string("\x02\x00\x01", 3) + std::string(32, 'y');
  std::string wire = Header(0x0020, 3) + q + Rr(ptr, 52, tlsa1) +
                     Rr(ptr, 46, "signature") +  // an RRSIG: skipped
                     Rr(ptr, 52, tlsa2);
  auto r = ParseResponse(wire);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->id, 0x1234);
  EXPECT_TRUE(r->ad);
  EXPECT_FALSE(r->tc);
  EXPECT_EQ(r->rcode, 0);
  EXPECT_EQ(r->qname, "_25._tcp.mx.example");
  EXPECT_EQ(r->qtype, 52);
  ASSERT_EQ(r->rdata.size(), 2u);
  EXPECT_EQ(r->rdata[0], tlsa1);
  EXPECT_EQ(r->rdata[1], tlsa2);
}

TEST(DnsMessage, CnameChainEndsAtTheCanonicalName) {
  // alias.example CNAME mid.example; mid.example CNAME mx.example; mx.example A.
  std::string q = Name({"alias", "Example"}) + U16(1) + U16(1);
  std::string wire = Header(0x0020, 3) + q +
                     Rr(std::string("\xc0\x0c", 2), 5, Name({"mid", "example"})) +
                     Rr(Name({"mid", "example"}), 5, Name({"MX", "example"})) +
                     Rr(Name({"mx", "example"}), 1, std::string("\x7f\x00\x00\x01", 4));
  auto r = ParseResponse(wire);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->canonical, "mx.example");
  ASSERT_EQ(r->rdata.size(), 1u);
  // No CNAME: the name itself.
  std::string plain =
      Header(0x0020, 1) + q + Rr(std::string("\xc0\x0c", 2), 1, std::string("\x7f\x00\x00\x01", 4));
  auto p = ParseResponse(plain);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->canonical, "alias.example");
  // A CNAME target running past its rdata is refused.
  std::string bad = Header(0x0020, 1) + q + Rr(std::string("\xc0\x0c", 2), 5, "\x03mid");
  EXPECT_FALSE(ParseResponse(bad));
}

TEST(DnsMessage, ResponseWithoutAdAndNxdomain) {
  std::string q = Name({"example"}) + U16(15) + U16(1);
  auto r = ParseResponse(Header(0x0003, 0) + q);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->ad);
  EXPECT_EQ(r->rcode, 3);
  EXPECT_TRUE(r->rdata.empty());
}

TEST(DnsMessage, TruncatedResponseKeepsWhatCame) {
  std::string q = Name({"example"}) + U16(1) + U16(1);
  std::string wire = Header(0x0200, 2) + q + Rr(std::string("\xc0\x0c", 2), 1, "\x7f\0\0\x01");
  auto r = ParseResponse(wire + std::string("\xc0", 1));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->tc);
  EXPECT_EQ(r->rdata.size(), 1u);
}

TEST(DnsMessage, MalformedResponsesAreRefused) {
  std::string q = Name({"example"}) + U16(1) + U16(1);
  EXPECT_FALSE(ParseResponse(""));
  EXPECT_FALSE(ParseResponse(Header(0, 0).substr(0, 11)));
  // A query, not a response.
  std::string query = U16(1) + U16(0x0100) + U16(1) + U16(0) + U16(0) + U16(0) + q;
  EXPECT_FALSE(ParseResponse(query));
  // A pointer to itself in the question.
  EXPECT_FALSE(ParseResponse(Header(0, 0) + std::string("\xc0\x0c", 2) + U16(1) + U16(1)));
  // An answer whose rdata runs past the end (no TC).
  std::string rr = Rr(std::string("\xc0\x0c", 2), 1, "\x7f\0\0\x01");
  EXPECT_FALSE(ParseResponse(Header(0, 1) + q + rr.substr(0, rr.size() - 1)));
  // A label holding a dot: "a.b" as one label would read as two.
  EXPECT_FALSE(ParseResponse(Header(0, 0) + Name({"a.b"}) + U16(1) + U16(1)));
  // More answers announced than sent.
  EXPECT_FALSE(ParseResponse(Header(0, 2) + q + rr));
}

}  // namespace
}  // namespace hato::dns
