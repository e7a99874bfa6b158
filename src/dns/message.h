// DNS messages for the DNSSEC-aware stub (dns/secure_stub.h): a query that
// asks for the AD bit, and the parts of a response DANE needs. libunbound
// hands back record data but not the header of the upstream answer (it
// clears AD unless it validated itself, which needs a trust anchor), so the
// AD bit of a validating resolver is read here. Pure: bytes in, values out;
// fuzzed by fuzz/fuzz_dns_message.cc.
//
// STANDARDS
//   RFC 1035 4.1 (header, question, resource records), 4.1.4 (compression
//     pointers, followed here only to skip owner names).
//   RFC 4035 3.2.3 and RFC 6840 5.7 (a query with AD set asks for the AD
//     bit in the answer); RFC 6891 6.1 (the EDNS0 OPT record: payload size,
//     the DO bit of RFC 3225).
//   RFC 4035 4.9.3 / RFC 7672 2.2: a stub may trust AD only from a
//     validating resolver over a secure path (the caller's duty: loopback).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hato::dns {

// Record types (RFC 1035 3.2.2, RFC 3596, RFC 2782, RFC 6698 7.1) and class.
inline constexpr int kTypeA = 1;
inline constexpr int kTypeCname = 5;
inline constexpr int kTypePtr = 12;
inline constexpr int kTypeMx = 15;
inline constexpr int kTypeTxt = 16;
inline constexpr int kTypeAaaa = 28;
inline constexpr int kTypeSrv = 33;
inline constexpr int kTypeTlsa = 52;
inline constexpr int kClassIn = 1;
// The EDNS0 payload size announced (RFC 6891 6.2.5; 1232 is the DNS flag
// day 2020 value that avoids IP fragmentation).
inline constexpr uint16_t kEdnsPayload = 1232;

// A query for `name` (ASCII, no trailing dot needed) and `type`, class IN,
// with RD and AD set and an EDNS0 OPT record with DO. kInvalid for a name
// that does not fit the wire format (a label over 63 octets, an empty label,
// over 255 octets in all).
Result<std::string> BuildQuery(uint16_t id, std::string_view name, uint16_t type);

struct Response {
  uint16_t id = 0;
  int rcode = 0;       // RFC 1035 4.1.1 (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN)
  bool ad = false;     // authenticated data: the resolver validated it
  bool tc = false;     // truncated: ask again over TCP
  uint16_t qtype = 0;  // of the question
  std::string qname;   // of the question, lower-cased, no trailing dot
  // The rdata of the answer-section records of the question's type, as sent
  // (CNAMEs and other types are skipped).
  std::vector<std::string> rdata;
  // Where the answer's CNAME chain from qname ends (RFC 1034 3.6.2; at most
  // kMaxCnameChain links followed): qname itself when there is no CNAME.
  std::string canonical;
};

// The longest CNAME chain followed in one answer.
inline constexpr int kMaxCnameChain = 8;

// Parses a response (QR set, one question). kInvalid when malformed:
// truncated sections, bad names or pointers (or a label holding a dot, which
// the text form could not tell from two labels), a query instead of a
// response.
Result<Response> ParseResponse(std::string_view wire);

}  // namespace hato::dns
