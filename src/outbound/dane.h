// DANE for SMTP (RFC 7672): checking an MX host's certificate chain against
// its TLSA records (RFC 6698). Pure: records and DER certificates in, a
// verdict out (OpenSSL for hashing, parsing and signatures; no I/O),
// unit-tested in tests/unit/dane_test.cc.
//
// Used by the outbound queue ([outbound] dane, queue.cc) with TLSA records
// from DNSSEC-validated answers (RFC 7672 section 2.2; dns/secure_stub.h)
// and the chain the MX host sent in the TLS handshake.
//
// STANDARDS
//   RFC 6698 2.1 (TLSA rdata), 2.1.1-2.1.3 (usage, selector, matching type).
//   RFC 7672 3.1 (only DANE-TA(2) and DANE-EE(3) are usable for SMTP;
//     PKIX-TA(0) and PKIX-EE(1) make a record "unusable"), 3.1.1 (DANE-EE:
//     no name or expiry checks), 3.1.2 (DANE-TA: the chain to the matched
//     trust anchor, the name checks of 3.2.2 against the MX host name and
//     the TLSA base domain), 2.2 (no usable record: opportunistic TLS).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hato::outbound {

struct TlsaRecord {
  uint8_t usage = 0;          // 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE
  uint8_t selector = 0;       // 0 full certificate, 1 SubjectPublicKeyInfo
  uint8_t matching_type = 0;  // 0 exact, 1 SHA-256, 2 SHA-512
  std::string data;           // the certificate association data (bytes)
};

// TLSA rdata (RFC 6698 2.1): three octets and the data; nullopt when short.
std::optional<TlsaRecord> ParseTlsa(std::string_view rdata);

enum class DaneVerdict {
  kMatch,     // a usable record matches: the session is authenticated
  kNoMatch,   // usable records, none matches: do not deliver (RFC 7672 2.2)
  kUnusable,  // no usable record: TLS is still required, unauthenticated
};

// `chain`: DER certificates as the server sent them, its own first.
// `names`: the reference identifiers for DANE-TA (RFC 7672 3.2.2): the MX
// host name and the TLSA base domain; "*." wildcards in the certificate are
// matched by OpenSSL's host check. `now`: unix seconds for DANE-TA validity.
DaneVerdict VerifyDane(const std::vector<TlsaRecord>& records,
                       const std::vector<std::string>& chain, const std::vector<std::string>& names,
                       int64_t now);

}  // namespace hato::outbound
