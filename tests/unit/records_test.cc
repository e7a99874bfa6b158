// dns::ValidateHostName and the records hato init prints (src/dns/records.h).
#include "dns/records.h"

#include <gtest/gtest.h>

#include <cctype>

#include "dns/rdata.h"

namespace hato::dns {
namespace {

TEST(ValidateHostName, AcceptsLdhNames) {
  for (const char* ok :
       {"example.org", "mail.example.org", "xn--bcher-kva.example", "a", "a-b.c1", "EXAMPLE.ORG"}) {
    EXPECT_TRUE(ValidateHostName(ok, "domain").ok()) << ok;
  }
}

TEST(ValidateHostName, RefusesBadNames) {
  std::string long_label(64, 'a');
  std::string long_name;
  for (int i = 0; i < 64; ++i) long_name += "abc.";
  long_name += "org";
  for (const std::string& bad :
       {std::string(""), std::string("bad domain"), std::string("a..b"), std::string(".a"),
        std::string("a."), std::string("-a.b"), std::string("a-.b"), std::string("a_b.c"),
        std::string("a@b"), long_label + ".org", long_name, std::string("bücher.example")}) {
    auto st = ValidateHostName(bad, "domain");
    EXPECT_FALSE(st.ok()) << bad;
    if (!st.ok()) {
      EXPECT_NE(st.error().message.find("invalid domain"), std::string::npos);
    }
  }
}

TEST(DomainRecords, RequiredRecordsAndZoneLines) {
  RecordInput in{"example.org",
                 "mx.example.org",
                 "sel",
                 "v=DKIM1; k=rsa; p=AAAA",
                 {"192.0.2.1", "2001:db8::1"},
                 "20261202"};
  auto recs = DomainRecords(in);
  auto find = [&](const std::string& name, const std::string& type) -> const Record* {
    for (const auto& r : recs) {
      if (r.name == name && r.type == type) return &r;
    }
    return nullptr;
  };
  ASSERT_NE(find("example.org", "MX"), nullptr);
  EXPECT_EQ(ZoneLine(*find("example.org", "MX")), "example.org. 3600 IN MX 10 mx.example.org.");
  EXPECT_EQ(find("mx.example.org", "A")->value, "192.0.2.1");
  EXPECT_EQ(find("mx.example.org", "AAAA")->value, "2001:db8::1");
  EXPECT_FALSE(find("mx.example.org", "A")->placeholder);
  EXPECT_EQ(find("sel._domainkey.example.org", "TXT")->need, Need::kRequired);
  EXPECT_EQ(find("_dmarc.example.org", "TXT")->need, Need::kRequired);
  EXPECT_EQ(find("_mta-sts.example.org", "TXT")->value, "v=STSv1; id=20261202");
  EXPECT_EQ(find("_imaps._tcp.example.org", "SRV")->value, "0 1 993 mx.example.org.");
  EXPECT_EQ(find("_submissions._tcp.example.org", "SRV")->value, "0 1 465 mx.example.org.");
  // Without addresses: placeholders; without a DKIM key: no DKIM record.
  in.addresses.clear();
  in.dkim_record.clear();
  recs = DomainRecords(in);
  EXPECT_TRUE(find("mx.example.org", "A")->placeholder);
  EXPECT_EQ(find("sel._domainkey.example.org", "TXT"), nullptr);
}

TEST(ZoneLine, SplitsLongTxtInto255OctetStrings) {
  Record r{"k._domainkey.example.org", "TXT", std::string(300, 'x'), Need::kRequired, "", false};
  EXPECT_EQ(ZoneLine(r), "k._domainkey.example.org. 3600 IN TXT \"" + std::string(255, 'x') +
                             "\" \"" + std::string(45, 'x') + "\"");
}

TEST(MtaStsPolicy, HasTheRfc8461Fields) {
  EXPECT_EQ(MtaStsPolicy("mx.example.org", "enforce"),
            "version: STSv1\r\nmode: enforce\r\nmx: mx.example.org\r\nmax_age: 604800\r\n");
}

TEST(MtaStsPolicy, ListsEveryMxPatternAndMaxAge) {
  EXPECT_EQ(
      MtaStsPolicy("mx.example.org", "testing", {"*.backup.example", "mx.example.org"}, 86400),
      "version: STSv1\r\nmode: testing\r\nmx: mx.example.org\r\nmx: *.backup.example\r\n"
      "max_age: 86400\r\n");
}

TEST(MtaStsPolicyId, ChangesWithThePolicyOnly) {
  std::string a = MtaStsPolicyId(MtaStsPolicy("mx.example.org", "testing"));
  EXPECT_EQ(a, MtaStsPolicyId(MtaStsPolicy("mx.example.org", "testing")));
  EXPECT_NE(a, MtaStsPolicyId(MtaStsPolicy("mx.example.org", "enforce")));
  // RFC 8461 3.1: 1 to 32 letters and digits.
  EXPECT_EQ(a.size(), 20u);
  for (char c : a) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << a;
}

TEST(DomainRecords, NoMtaStsRecordsWithoutAPolicy) {
  RecordInput in{"example.org", "mx.example.org", "", "", {}, ""};
  for (const auto& r : DomainRecords(in)) {
    EXPECT_EQ(r.name.find("mta-sts"), std::string::npos) << r.name;
  }
}

TEST(ParseSrv, ReadsPriorityWeightPortTarget) {
  // RFC 2782: 0 1 993 mx.example.org.
  std::string rd(
      "\x00\x00\x00\x01\x03\xe1\x02mx\x07"
      "example\x03org\x00",
      22);
  auto srv = ParseSrv(rd);
  ASSERT_TRUE(srv);
  EXPECT_EQ(srv->priority, 0);
  EXPECT_EQ(srv->weight, 1);
  EXPECT_EQ(srv->port, 993);
  EXPECT_EQ(srv->target, "mx.example.org");
  // "." (service not offered) and a truncated record.
  auto none = ParseSrv(std::string("\x00\x00\x00\x00\x00\x00\x00", 7));
  ASSERT_TRUE(none);
  EXPECT_EQ(none->target, "");
  EXPECT_FALSE(ParseSrv(std::string("\x00\x00\x00\x01\x03", 5)));
}

}  // namespace
}  // namespace hato::dns
