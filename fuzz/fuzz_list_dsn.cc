// libFuzzer target for the list bounce parsers (src/lists/proto.h): DSNs
// (RFC 3464), VERP addresses and list address forms.
//
//   * nothing crashes; at most kMaxDsnRecipients recipients come back;
//   * a DSN recipient's address is lower-case;
//   * VERP round trip: VerpMember(the encoding of VerpAddress) is the member.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/strings.h"
#include "fuzz_util.h"
#include "lists/proto.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto report = hato::lists::ParseDsn(in);
  FUZZ_CHECK(report.recipients.size() <= hato::lists::kMaxDsnRecipients);
  for (const auto& r : report.recipients)
    FUZZ_CHECK(hato::AsciiLower(r.final_recipient) == r.final_recipient);
  // The first line as a local part, and as a member address.
  std::string_view line = in.substr(0, std::min(in.find('\n'), in.size()));
  auto a = hato::lists::ParseListLocal(hato::AsciiLower(line));
  (void)a;
  std::string member = hato::lists::VerpMember(line);
  if (!member.empty()) {
    std::string verp = hato::lists::VerpAddress("list-bounces@example.test", member);
    std::string_view local = std::string_view(verp).substr(0, verp.rfind('@'));
    auto parsed = hato::lists::ParseListLocal(local);
    FUZZ_CHECK(parsed.kind == hato::lists::AddressKind::kBounces);
    FUZZ_CHECK(parsed.list_local == "list");
    FUZZ_CHECK(parsed.arg == member);
  }
  return 0;
}
