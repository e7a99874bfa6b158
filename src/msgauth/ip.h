// IP addresses for SPF and the DNS seam: parsing, prefix matching and the
// reverse/macro forms of RFC 7208 section 7.3 (%{i}) and 5.5 (PTR names).
// Pure value type, no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hato::msgauth {

struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // IPv4 uses the first 4 bytes

  // Dotted quad or RFC 4291 section 2.2 text (no zone id, no brackets).
  static std::optional<IpAddress> Parse(std::string_view text);
  // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as IPv4 (RFC 7208 section 5).
  IpAddress Unmapped() const;

  std::string ToString() const;
  // True when the first `bits` bits equal those of `net` (same family).
  bool InPrefix(const IpAddress& net, int bits) const;
  // "4.3.2.1" for 1.2.3.4, or 32 dot-separated nibbles, lowest first, for
  // IPv6: the %{i} form reversed (RFC 7208 section 7.3) and the name under
  // in-addr.arpa / ip6.arpa.
  std::string ReverseLabels() const;
  // "1.2.3.4", or 32 dot-separated nibbles for IPv6: the %{i} macro.
  std::string DottedForm() const;

  bool operator==(const IpAddress&) const = default;
};

}  // namespace hato::msgauth
