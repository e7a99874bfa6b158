#include "dns/rdata.h"

#include <arpa/inet.h>

#include <algorithm>

#include "base/strings.h"

namespace hato::dns {
namespace {
constexpr size_t kMaxNameLength = 255;  // RFC 1035 section 2.3.4
}

std::optional<std::string> ParseName(std::string_view wire) {
  std::string out;
  size_t i = 0;
  while (true) {
    if (i >= wire.size()) return std::nullopt;
    auto len = static_cast<unsigned char>(wire[i]);
    if (len == 0) {
      ++i;
      break;
    }
    if (len > 63) return std::nullopt;  // compression pointers or reserved label types
    if (i + 1 + len > wire.size()) return std::nullopt;
    if (!out.empty()) out.push_back('.');
    out.append(wire.substr(i + 1, len));
    i += 1 + len;
    if (out.size() > kMaxNameLength) return std::nullopt;
  }
  if (i != wire.size()) return std::nullopt;
  return AsciiLower(out);
}

std::optional<MxRecord> ParseMx(std::string_view rdata) {
  if (rdata.size() < 3) return std::nullopt;
  MxRecord mx;
  mx.preference = static_cast<uint16_t>((static_cast<unsigned char>(rdata[0]) << 8) |
                                        static_cast<unsigned char>(rdata[1]));
  auto name = ParseName(rdata.substr(2));
  if (!name) return std::nullopt;
  mx.host = std::move(*name);
  return mx;
}

std::optional<SrvRecord> ParseSrv(std::string_view rdata) {
  if (rdata.size() < 7) return std::nullopt;
  auto u16 = [&](size_t i) {
    return static_cast<uint16_t>((static_cast<unsigned char>(rdata[i]) << 8) |
                                 static_cast<unsigned char>(rdata[i + 1]));
  };
  SrvRecord srv{u16(0), u16(2), u16(4), {}};
  auto name = ParseName(rdata.substr(6));
  if (!name) return std::nullopt;
  srv.target = std::move(*name);
  return srv;
}

std::optional<std::string> ParseTxt(std::string_view rdata) {
  if (rdata.empty()) return std::nullopt;
  std::string out;
  size_t i = 0;
  while (i < rdata.size()) {
    size_t len = static_cast<unsigned char>(rdata[i]);
    if (i + 1 + len > rdata.size()) return std::nullopt;
    out.append(rdata.substr(i + 1, len));
    i += 1 + len;
  }
  return out;
}

std::optional<std::string> ParseAddress(std::string_view rdata) {
  char buf[INET6_ADDRSTRLEN];
  if (rdata.size() == 4) {
    if (!inet_ntop(AF_INET, rdata.data(), buf, sizeof(buf))) return std::nullopt;
    return std::string(buf);
  }
  if (rdata.size() == 16) {
    if (!inet_ntop(AF_INET6, rdata.data(), buf, sizeof(buf))) return std::nullopt;
    return std::string(buf);
  }
  return std::nullopt;
}

std::vector<MxRecord> SortMx(std::vector<MxRecord> mx, uint64_t seed) {
  // Shuffle first (a simple LCG keeps this pure), then a stable sort by preference.
  for (size_t i = mx.size(); i > 1; --i) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    std::swap(mx[i - 1], mx[(seed >> 33) % i]);
  }
  std::stable_sort(mx.begin(), mx.end(), [](const MxRecord& a, const MxRecord& b) {
    return a.preference < b.preference;
  });
  return mx;
}

bool IsNullMx(const std::vector<MxRecord>& mx) {
  return mx.size() == 1 && mx[0].host.empty() && mx[0].preference == 0;
}

}  // namespace hato::dns
