// libFuzzer target for the members CSV parser (src/lists/proto.h).
//
//   * nothing crashes; every line is either a member or an error, never both;
//   * members are unique, lower-case, and re-parse identically when written
//     back with CsvField (the export format).
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "base/strings.h"
#include "fuzz_util.h"
#include "lists/proto.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = hato::lists::ParseMembersCsv(in);
  std::set<std::string> seen;
  std::set<size_t> member_lines;
  std::string out = "address,name,roles\r\n";
  bool long_line = false;  // quoting may push a line past the limit: no round trip then
  for (const auto& m : r.members) {
    FUZZ_CHECK(seen.insert(m.address).second);
    FUZZ_CHECK(hato::AsciiLower(m.address) == m.address);
    member_lines.insert(m.line);
    std::string line = hato::lists::CsvField(m.address) + "," + hato::lists::CsvField(m.name) +
                       "," + hato::lists::CsvField(m.roles) + "\r\n";
    long_line = long_line || line.size() > hato::lists::kMaxCsvLineBytes;
    out += line;
  }
  for (const auto& e : r.errors) FUZZ_CHECK(!member_lines.count(e.line));
  if (long_line) return 0;
  auto again = hato::lists::ParseMembersCsv(out);
  FUZZ_CHECK(again.errors.empty());
  FUZZ_CHECK(again.members.size() == r.members.size());
  for (size_t i = 0; i < again.members.size(); ++i) {
    FUZZ_CHECK(again.members[i].address == r.members[i].address);
    FUZZ_CHECK(again.members[i].name == r.members[i].name);
    FUZZ_CHECK(again.members[i].roles == r.members[i].roles);
  }
  return 0;
}
