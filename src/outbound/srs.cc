#include "outbound/srs.h"

#include <openssl/hmac.h>

#include <array>

#include "base/strings.h"

namespace hato::outbound {
namespace {

constexpr std::string_view kBase32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr int64_t kDay = 86400;
constexpr int kTimeSlots = 1024;  // two base32 characters

std::string Hash(std::string_view secret, std::string_view data) {
  std::string lower = AsciiLower(data);
  std::array<unsigned char, 20> mac{};
  unsigned int len = 0;
  HMAC(EVP_sha1(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(lower.data()), lower.size(), mac.data(), &len);
  std::string b64 = Base64Encode(std::string_view(reinterpret_cast<const char*>(mac.data()), len));
  return b64.substr(0, kSrsHashChars);
}

bool HashMatches(std::string_view secret, std::string_view data, std::string_view hash) {
  return hash.size() == kSrsHashChars && EqualsIgnoreCase(Hash(secret, data), hash);
}

std::string Timestamp(int64_t now) {
  int64_t day = (now / kDay) % kTimeSlots;
  std::string out;
  out += kBase32[static_cast<size_t>(day >> 5)];
  out += kBase32[static_cast<size_t>(day & 31)];
  return out;
}

// Days since the timestamp `tt` was made, or -1 when malformed.
int AgeDays(std::string_view tt, int64_t now) {
  if (tt.size() != 2) return -1;
  int v = 0;
  for (char c : tt) {
    size_t i = kBase32.find(static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c));
    if (i == std::string_view::npos) return -1;
    v = v * 32 + static_cast<int>(i);
  }
  int today = static_cast<int>((now / kDay) % kTimeSlots);
  return ((today - v) % kTimeSlots + kTimeSlots) % kTimeSlots;
}

bool IsSeparator(char c) { return c == '=' || c == '+' || c == '-'; }

// The part of `s` up to the first '=' and what follows it, or false.
bool Field(std::string_view& s, std::string_view& field) {
  size_t eq = s.find('=');
  if (eq == std::string_view::npos) return false;
  field = s.substr(0, eq);
  s.remove_prefix(eq + 1);
  return true;
}

}  // namespace

bool IsSrsLocalPart(std::string_view local) {
  return local.size() > 5 &&
         (EqualsIgnoreCase(local.substr(0, 4), "SRS0") ||
          EqualsIgnoreCase(local.substr(0, 4), "SRS1")) &&
         IsSeparator(local[4]);
}

std::string SrsForward(std::string_view sender, std::string_view srs_domain,
                       std::string_view secret, int64_t now) {
  size_t at = sender.rfind('@');
  if (sender.empty() || at == std::string_view::npos || at == 0) return std::string(sender);
  std::string_view local = sender.substr(0, at);
  std::string_view domain = sender.substr(at + 1);
  if (EqualsIgnoreCase(domain, srs_domain)) return std::string(sender);
  if (IsSrsLocalPart(local)) {
    if (EqualsIgnoreCase(local.substr(0, 4), "SRS1")) {
      // SRS1=HHHH=first-host==rest: keep the first forwarder, rehash.
      std::string_view rest = local.substr(5);
      std::string_view old_hash, first_host;
      if (Field(rest, old_hash) && Field(rest, first_host) && !first_host.empty()) {
        std::string tail = std::string(first_host) + "=" + std::string(rest);
        return "SRS1=" + Hash(secret, tail) + "=" + tail + "@" + std::string(srs_domain);
      }
    } else {
      // SRS0 of another forwarder: SRS1=HHHH=that-host==HHHH=TT=domain=local.
      std::string tail = std::string(domain) + "=" + std::string(local.substr(4));
      return "SRS1=" + Hash(secret, tail) + "=" + tail + "@" + std::string(srs_domain);
    }
  }
  std::string tt = Timestamp(now);
  std::string tail = tt + "=" + std::string(domain) + "=" + std::string(local);
  return "SRS0=" + Hash(secret, tail) + "=" + tail + "@" + std::string(srs_domain);
}

Result<std::string> SrsReverse(std::string_view local, std::string_view secret, int64_t now,
                               int max_age_days) {
  if (!IsSrsLocalPart(local)) return Err(ErrorKind::kInvalid, "not an SRS address");
  bool srs1 = EqualsIgnoreCase(local.substr(0, 4), "SRS1");
  std::string_view rest = local.substr(5);
  std::string_view hash;
  if (!Field(rest, hash)) return Err(ErrorKind::kInvalid, "malformed SRS address");
  if (srs1) {
    // first-host==HHHH=TT=domain=local (the second '=' is the SRS0 separator).
    std::string_view signed_part = rest;
    std::string_view host;
    if (!Field(rest, host) || host.empty() || rest.size() < 2 || !IsSeparator(rest[0])) {
      return Err(ErrorKind::kInvalid, "malformed SRS1 address");
    }
    if (!HashMatches(secret, signed_part, hash)) {
      return Err(ErrorKind::kInvalid, "SRS address with a wrong hash");
    }
    return "SRS0" + std::string(rest) + "@" + std::string(host);
  }
  std::string_view signed_part = rest;
  std::string_view tt, domain;
  if (!Field(rest, tt) || !Field(rest, domain) || domain.empty() || rest.empty()) {
    return Err(ErrorKind::kInvalid, "malformed SRS0 address");
  }
  if (!HashMatches(secret, signed_part, hash)) {
    return Err(ErrorKind::kInvalid, "SRS address with a wrong hash");
  }
  int age = AgeDays(tt, now);
  if (age < 0 || age > max_age_days) return Err(ErrorKind::kInvalid, "SRS address expired");
  return std::string(rest) + "@" + std::string(domain);
}

}  // namespace hato::outbound
