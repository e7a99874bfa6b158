// DNS record data parsing for the answers libunbound hands back (RFC 1035
// section 3.3.9 MX, 3.3.14 TXT, 3.4.1 A, 3.3.1 CNAME with ParseName; RFC 3596
// AAAA; RFC 2782 SRV) and RFC 7505 null MX. Pure: bytes
// in, values out; fuzzed by fuzz/fuzz_dns_rdata.cc. libunbound gives each
// rdata uncompressed, so names are plain label sequences here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hato::dns {

struct MxRecord {
  uint16_t preference = 0;
  std::string host;  // lower-cased, without the trailing dot; "" for the root (null MX)
};

// SRV (RFC 2782): a service's host and port; target "" is the root (".":
// the service is not offered at this domain, RFC 6186 section 3.4).
struct SrvRecord {
  uint16_t priority = 0;
  uint16_t weight = 0;
  uint16_t port = 0;
  std::string target;  // lower-cased, without the trailing dot
};

// An uncompressed domain name in wire format (RFC 1035 section 3.1) as text.
// nullopt when malformed (bad lengths, pointers, or trailing bytes).
std::optional<std::string> ParseName(std::string_view wire);
std::optional<MxRecord> ParseMx(std::string_view rdata);
std::optional<SrvRecord> ParseSrv(std::string_view rdata);
// TXT rdata (RFC 1035 section 3.3.14): one or more <character-string>s,
// concatenated (RFC 7208 section 3.3, RFC 6376 section 3.6.2.2). nullopt when
// a length runs past the end or the rdata is empty.
std::optional<std::string> ParseTxt(std::string_view rdata);
// A (4 bytes) or AAAA (16 bytes) rdata as an address string.
std::optional<std::string> ParseAddress(std::string_view rdata);

// MX records in the order to try (RFC 5321 section 5.1): by preference, with
// equal preferences shuffled by `seed` (a caller-chosen random number).
std::vector<MxRecord> SortMx(std::vector<MxRecord> mx, uint64_t seed);

// RFC 7505: a single MX of preference 0 with the root as host means the
// domain accepts no mail.
bool IsNullMx(const std::vector<MxRecord>& mx);

}  // namespace hato::dns
