#include "msgauth/ip.h"

#include <arpa/inet.h>

#include <algorithm>

namespace hato::msgauth {

std::optional<IpAddress> IpAddress::Parse(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;
  std::string s(text);
  IpAddress ip;
  if (s.find(':') == std::string::npos) {
    if (inet_pton(AF_INET, s.c_str(), ip.bytes.data()) != 1) return std::nullopt;
    return ip;
  }
  ip.v6 = true;
  if (inet_pton(AF_INET6, s.c_str(), ip.bytes.data()) != 1) return std::nullopt;
  return ip;
}

IpAddress IpAddress::Unmapped() const {
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (!v6 || !std::equal(kMapped, kMapped + 12, bytes.begin())) return *this;
  IpAddress v4;
  std::copy(bytes.begin() + 12, bytes.end(), v4.bytes.begin());
  return v4;
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  return buf;
}

bool IpAddress::InPrefix(const IpAddress& net, int bits) const {
  if (v6 != net.v6) return false;
  int max = v6 ? 128 : 32;
  bits = std::clamp(bits, 0, max);
  int full = bits / 8;
  if (!std::equal(bytes.begin(), bytes.begin() + full, net.bytes.begin())) return false;
  int rest = bits % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (bytes[full] & mask) == (net.bytes[full] & mask);
}

namespace {
constexpr char kHex[] = "0123456789abcdef";
}

std::string IpAddress::DottedForm() const {
  if (!v6) return ToString();
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i) out += '.';
    out += kHex[bytes[i] >> 4];
    out += '.';
    out += kHex[bytes[i] & 15];
  }
  return out;
}

std::string IpAddress::ReverseLabels() const {
  std::string out;
  if (!v6) {
    for (int i = 3; i >= 0; --i) {
      out += std::to_string(bytes[i]);
      if (i) out += '.';
    }
    return out;
  }
  for (int i = 15; i >= 0; --i) {
    out += kHex[bytes[i] & 15];
    out += '.';
    out += kHex[bytes[i] >> 4];
    if (i) out += '.';
  }
  return out;
}

}  // namespace hato::msgauth
