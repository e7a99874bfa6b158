// libFuzzer target for DANE (src/outbound/dane.h): TLSA rdata (RFC 6698 2.1)
// and the verdict over TLSA records and a DER certificate chain (RFC 7672).
// Input: byte 0 = number of records (mod 5); each record = 1 length byte and
// that many bytes of TLSA rdata; then 1 length byte and a reference name; the
// rest is the chain, each certificate a 2-byte big-endian length and its DER.
//
//   * ParseTlsa accepts exactly 4 bytes or more, and its fields are the
//     first three bytes and the rest;
//   * VerifyDane says kUnusable exactly when no record is usable for SMTP
//     (DANE-TA/DANE-EE, selector <= 1, matching type <= 2, data); with no
//     parsable certificate it never says kMatch;
//   * when the server's certificate parses, DANE-EE records made from it
//     (3 0 0 the certificate, 3 1 1 SHA-256 of its key, 3 1 2 SHA-512)
//     match, and the same record with one data byte changed does not.
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "outbound/dane.h"

namespace o = hato::outbound;

namespace {

constexpr int64_t kNow = 1'800'000'000;  // 2027-01-15

bool Usable(const o::TlsaRecord& r) {
  return (r.usage == 2 || r.usage == 3) && r.selector <= 1 && r.matching_type <= 2 &&
         !r.data.empty();
}

// The server's certificate as VerifyDane sees it: DER with no trailing bytes.
X509* ParseCert(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  X509* cert = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (cert && p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
    X509_free(cert);
    return nullptr;
  }
  return cert;
}

std::string Der(X509* cert, bool spki) {
  unsigned char* buf = nullptr;
  int n = spki ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &buf) : i2d_X509(cert, &buf);
  if (n <= 0) return "";
  std::string out(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
  OPENSSL_free(buf);
  return out;
}

std::string Digest(const std::string& data, const EVP_MD* md) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1) return "";
  return std::string(reinterpret_cast<char*>(out), len);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  auto whole = o::ParseTlsa(in);
  FUZZ_CHECK(whole.has_value() == (size >= 4));
  if (whole) {
    FUZZ_CHECK(whole->usage == data[0] && whole->selector == data[1] &&
               whole->matching_type == data[2]);
    FUZZ_CHECK_EQ_STR(whole->data, in.substr(3));
  }
  if (size == 0) return 0;

  size_t pos = 1;
  std::vector<o::TlsaRecord> records;
  for (int i = 0; i < data[0] % 5 && pos < size; ++i) {
    size_t len = data[pos++];
    std::string_view rdata = in.substr(pos, len);
    pos += rdata.size();
    if (auto r = o::ParseTlsa(rdata)) records.push_back(std::move(*r));
  }
  std::vector<std::string> names;
  if (pos < size) {
    size_t len = data[pos++];
    names.emplace_back(in.substr(pos, len));
    pos += names.back().size();
  }
  std::vector<std::string> chain;
  while (pos + 2 <= size && chain.size() < 4) {
    size_t len = (size_t{data[pos]} << 8) | data[pos + 1];
    pos += 2;
    chain.emplace_back(in.substr(pos, len));
    pos += chain.back().size();
  }

  bool usable = false;
  for (const auto& r : records) usable = usable || Usable(r);
  X509* leaf = chain.empty() ? nullptr : ParseCert(chain[0]);
  o::DaneVerdict v = o::VerifyDane(records, chain, names, kNow);
  FUZZ_CHECK((v == o::DaneVerdict::kUnusable) == !usable);
  if (!leaf) FUZZ_CHECK(v != o::DaneVerdict::kMatch);
  if (!leaf) return 0;

  std::string cert_der = Der(leaf, false);
  std::string spki_der = Der(leaf, true);
  X509_free(leaf);
  std::vector<o::TlsaRecord> made;
  if (!cert_der.empty()) made.push_back({3, 0, 0, cert_der});
  if (!spki_der.empty()) {
    made.push_back({3, 1, 1, Digest(spki_der, EVP_sha256())});
    made.push_back({3, 1, 2, Digest(spki_der, EVP_sha512())});
  }
  uint64_t h = hato::fuzz::Hash(in);
  for (o::TlsaRecord r : made) {
    if (r.data.empty()) continue;
    FUZZ_CHECK(o::VerifyDane({r}, chain, names, kNow) == o::DaneVerdict::kMatch);
    // Together with the input's records the made one still matches.
    std::vector<o::TlsaRecord> all = records;
    all.push_back(r);
    FUZZ_CHECK(o::VerifyDane(all, chain, names, kNow) == o::DaneVerdict::kMatch);
    r.data[h % r.data.size()] ^= static_cast<char>(1 + (h >> 8) % 255);
    FUZZ_CHECK(o::VerifyDane({r}, chain, names, kNow) == o::DaneVerdict::kNoMatch);
  }
  return 0;
}
