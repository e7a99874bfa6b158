// libFuzzer target for host-name validation and the DNS records built from
// it (src/dns/records.h).
//
//   * ValidateHostName never crashes; a name it accepts has only letters,
//     digits, '-' and '.', no empty label, no label over 63, at most 253;
//   * the records of an accepted domain and host are zone-file lines that
//     start with an owner name ending in the domain.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "dns/records.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto st = hato::dns::ValidateHostName(in, "name");
  if (!st) return 0;
  FUZZ_CHECK(!in.empty() && in.size() <= hato::dns::kMaxNameLength);
  size_t label = 0;
  for (char c : in) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.';
    FUZZ_CHECK(ok);
    label = c == '.' ? 0 : label + 1;
    FUZZ_CHECK(label <= hato::dns::kMaxLabelLength);
  }
  FUZZ_CHECK(in.find("..") == std::string_view::npos && in.front() != '.' && in.back() != '.');
  hato::dns::RecordInput r{
      std::string(in), "mail." + std::string(in), "s", "v=DKIM1; p=x", {}, "1"};
  for (const auto& rec : hato::dns::DomainRecords(r)) {
    std::string line = hato::dns::ZoneLine(rec);
    FUZZ_CHECK(line.rfind(rec.name + ". 3600 IN " + rec.type + " ", 0) == 0);
    FUZZ_CHECK(rec.name.size() >= in.size() && rec.name.ends_with(in));
  }
  return 0;
}
