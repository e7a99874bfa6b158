// libFuzzer target for SRV record data (RFC 2782) as libunbound returns it,
// read by `hato dns check` (src/dns/rdata.h ParseSrv, src/app/setup.cc).
//
//   * ParseSrv accepts exactly 6 bytes of priority, weight and port followed
//     by a name ParseName accepts, and its fields are those bytes (big-endian)
//     and that name;
//   * the target is lower-cased and at most 255 bytes; a record written back
//     as rdata (when no label holds a dot) re-parses to the same record, and
//     written as a zone-file value ("P W PORT TARGET.", what `hato dns check`
//     prints) splits into the same four fields.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/strings.h"
#include "dns/rdata.h"
#include "fuzz_util.h"

namespace {

std::string EncodeName(const std::string& name) {
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

std::string U16(uint16_t v) {
  return std::string{static_cast<char>(v >> 8), static_cast<char>(v & 0xff)};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  auto srv = hato::dns::ParseSrv(in);
  bool name_ok = size >= 7 && hato::dns::ParseName(in.substr(6)).has_value();
  FUZZ_CHECK(srv.has_value() == name_ok);
  if (!srv) return 0;

  FUZZ_CHECK(srv->priority == ((data[0] << 8) | data[1]));
  FUZZ_CHECK(srv->weight == ((data[2] << 8) | data[3]));
  FUZZ_CHECK(srv->port == ((data[4] << 8) | data[5]));
  std::string name = *hato::dns::ParseName(in.substr(6));
  FUZZ_CHECK_EQ_STR(srv->target, name);
  FUZZ_CHECK(srv->target.size() <= 255);
  FUZZ_CHECK(!hato::fuzz::HasAsciiUpper(srv->target));

  if (!LabelsHaveDots(in.substr(6))) {
    FUZZ_CHECK(srv->target.empty() || srv->target.back() != '.');
    std::string wire = U16(srv->priority) + U16(srv->weight) + U16(srv->port) +
                       (srv->target.empty() ? std::string(1, '\0') : EncodeName(srv->target));
    FUZZ_CHECK_EQ_STR(wire, std::string(in.substr(0, 6)) + hato::AsciiLower(in.substr(6)));
    auto again = hato::dns::ParseSrv(wire);
    FUZZ_CHECK(again && again->priority == srv->priority && again->weight == srv->weight &&
               again->port == srv->port && again->target == srv->target);
  }

  // The zone-file form `hato dns check` prints and compares (setup.cc).
  std::string target = srv->target.empty() ? "." : srv->target + ".";
  std::string zone = std::to_string(srv->priority) + " " + std::to_string(srv->weight) + " " +
                     std::to_string(srv->port) + " " + target;
  // (A label may hold any byte, RFC 2181 11; the printed form is only
  // unambiguous without spaces.)
  if (target.find_first_of(" \t") == std::string::npos) {
    std::vector<std::string_view> f = hato::SplitWords(zone);
    FUZZ_CHECK(f.size() == 4);
    FUZZ_CHECK_EQ_STR(f[2], std::to_string(srv->port));
    std::string want = hato::AsciiLower(f[3]);
    if (!want.empty() && want.back() == '.') want.pop_back();
    FUZZ_CHECK_EQ_STR(want, srv->target);
  }
  return 0;
}
