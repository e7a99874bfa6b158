// libFuzzer target for DNS record data as libunbound returns it (src/dns/rdata.h).
//
//   * ParseName accepts exactly the uncompressed label sequences: each label
//     1..63 bytes, a final root label, no trailing bytes, at most 255 bytes of
//     text; the text is lower-cased and re-encoding it (when no label holds a
//     dot) gives back the input, case-folded;
//   * ParseMx = 2 preference bytes + ParseName;
//   * ParseTxt accepts exactly the non-empty runs of length-prefixed
//     strings that end at the end, and drops one length byte per string;
//   * ParseAddress accepts exactly 4 and 16 bytes, and inet_pton of its text
//     gives back the bytes;
//   * SortMx keeps the records (as a multiset) and orders them by preference;
//     IsNullMx holds only for a single root MX of preference 0.
#include <arpa/inet.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/strings.h"
#include "dns/rdata.h"
#include "fuzz_util.h"

namespace {

using hato::dns::MxRecord;

std::string Encode(const std::string& name) {
  std::string out;
  size_t pos = 0;
  while (!name.empty() && pos <= name.size()) {
    size_t dot = name.find('.', pos);
    std::string label = name.substr(pos, dot == std::string::npos ? dot : dot - pos);
    out.push_back(static_cast<char>(label.size()));
    out += label;
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  out.push_back('\0');
  return out;
}

bool LabelsHaveDots(std::string_view wire) {
  size_t i = 0;
  while (i < wire.size() && wire[i] != 0) {
    size_t len = static_cast<unsigned char>(wire[i]);
    if (wire.substr(i + 1, len).find('.') != std::string_view::npos) return true;
    i += 1 + len;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  auto name = hato::dns::ParseName(in);
  if (name) {
    FUZZ_CHECK(name->size() <= 255);
    FUZZ_CHECK(!hato::fuzz::HasAsciiUpper(*name));
    if (!LabelsHaveDots(in)) FUZZ_CHECK_EQ_STR(Encode(*name), hato::AsciiLower(in));
  }

  auto mx = hato::dns::ParseMx(in);
  FUZZ_CHECK(mx.has_value() == (size >= 3 && hato::dns::ParseName(in.substr(2)).has_value()));
  if (mx) {
    FUZZ_CHECK(mx->preference == ((data[0] << 8) | data[1]));
  }

  auto txt = hato::dns::ParseTxt(in);
  {
    size_t i = 0, strings = 0;
    while (i < size) {
      i += 1 + data[i];
      ++strings;
    }
    FUZZ_CHECK(txt.has_value() == (size > 0 && i == size));
    if (txt) FUZZ_CHECK(txt->size() == size - strings);
  }

  auto addr = hato::dns::ParseAddress(in);
  FUZZ_CHECK(addr.has_value() == (size == 4 || size == 16));
  if (addr) {
    unsigned char buf[16];
    FUZZ_CHECK(inet_pton(size == 4 ? AF_INET : AF_INET6, addr->c_str(), buf) == 1);
    FUZZ_CHECK(std::string_view(reinterpret_cast<const char*>(buf), size) == in);
  }

  // Records made from the input bytes: sorting keeps them and orders them.
  std::vector<MxRecord> records;
  for (size_t i = 0; i + 1 < size && records.size() < 16; i += 2) {
    records.push_back(MxRecord{static_cast<uint16_t>(data[i] % 4),
                               data[i + 1] % 3 == 0 ? "" : std::string(1, 'a' + data[i + 1] % 5)});
  }
  uint64_t seed = hato::fuzz::Hash(in);
  auto sorted = hato::dns::SortMx(records, seed);
  FUZZ_CHECK(sorted.size() == records.size());
  for (size_t i = 1; i < sorted.size(); ++i) {
    FUZZ_CHECK(sorted[i - 1].preference <= sorted[i].preference);
  }
  auto key = [](const MxRecord& r) { return std::to_string(r.preference) + "/" + r.host; };
  std::vector<std::string> a, b;
  for (auto& r : records) a.push_back(key(r));
  for (auto& r : sorted) b.push_back(key(r));
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  FUZZ_CHECK(a == b);
  FUZZ_CHECK(hato::dns::IsNullMx(records) ==
             (records.size() == 1 && records[0].preference == 0 && records[0].host.empty()));
  return 0;
}
