// libFuzzer target for the report destinations taken from DNS
// (src/reports/format.h): TlsRptRua (the rua= of a "v=TLSRPTv1" TXT record,
// RFC 8460 3) and MailtoAddresses (the mailto: URIs of a TLS-RPT or DMARC
// rua=, RFC 7489 6.4). The addresses become RCPT TO and To: of report mail.
//
//   * TlsRptRua finds a value only after a leading "v=TLSRPTv1", and the
//     value is non-empty and holds no ';';
//   * HttpsRuaUrls gives URLs the HTTPS client accepts (http/url.h);
//   * MailtoAddresses gives at most one address per comma-separated URI,
//     each a valid RFC 5321 mailbox (RFC 6531 UTF-8 allowed) with a
//     lower-cased domain, and "mailto:" + the address percent-encoded gives
//     back exactly that address.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/strings.h"
#include "fuzz_util.h"
#include "http/url.h"
#include "reports/format.h"
#include "smtp/address.h"

namespace r = hato::reports;

namespace {

std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (c <= 0x20 || c >= 0x7f || c == '%' || c == ',' || c == '!' || c == '?') {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

void CheckAddresses(std::string_view rua) {
  auto addrs = r::MailtoAddresses(rua);
  size_t uris = 1;
  for (char c : rua) uris += c == ',';
  FUZZ_CHECK(addrs.size() <= uris);
  for (const std::string& a : addrs) {
    auto mb = hato::smtp::ParseMailbox(a, /*allow_utf8=*/true);
    if (!mb.ok())
      hato::fuzz::Fail(__FILE__, __LINE__, "ParseMailbox(address)", a, std::string(rua));
    size_t at = a.rfind('@');
    FUZZ_CHECK(at != std::string::npos && at > 0 && at + 1 < a.size());
    FUZZ_CHECK_EQ_STR(a.substr(at + 1), hato::AsciiLower(a.substr(at + 1)));
    auto again = r::MailtoAddresses("mailto:" + PercentEncode(a));
    FUZZ_CHECK(again.size() == 1);
    FUZZ_CHECK_EQ_STR(again[0], a);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  auto rua = r::TlsRptRua(in);
  if (rua) {
    FUZZ_CHECK(hato::TrimSpaces(in).substr(0, 10) == "v=TLSRPTv1");
    FUZZ_CHECK(!rua->empty() && rua->find(';') == std::string::npos);
    CheckAddresses(*rua);
  }
  CheckAddresses(in);
  // Every https: URI given is one the HTTPS client accepts, without spaces
  // or commas (it was one element of the list).
  for (const std::string& url : r::HttpsRuaUrls(in)) {
    FUZZ_CHECK(hato::http::ParseHttpsUrl(url).has_value());
    FUZZ_CHECK(url.find(',') == std::string::npos);
  }
  return 0;
}
