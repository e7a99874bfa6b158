// libFuzzer target for the Public Suffix List parser and lookup (src/msgauth/psl.h).
//
//   * Parse never crashes; a list it accepts answers any lower-case domain;
//   * the organizational domain is a suffix of the domain made of whole
//     labels, and ends with the public suffix, which is itself such a suffix;
//   * the organizational domain of the organizational domain is itself.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/strings.h"
#include "fuzz_util.h"
#include "msgauth/psl.h"

namespace {

bool LabelSuffix(std::string_view s, std::string_view of) {
  if (s.size() > of.size() || !of.ends_with(s)) return false;
  return s.size() == of.size() || of[of.size() - s.size() - 1] == '.';
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  // The list, then after the last NUL byte a domain to look up.
  size_t nul = in.rfind('\0');
  std::string_view list = nul == std::string_view::npos ? in : in.substr(0, nul);
  std::string domain =
      nul == std::string_view::npos ? "a.b.c" : hato::AsciiLower(in.substr(nul + 1));
  auto psl = hato::msgauth::PublicSuffixList::Parse(list);
  if (!psl) return 0;
  // Lookups take names without empty labels (dmarc.cc normalizes them first).
  if (domain.empty() || domain.front() == '.' || domain.back() == '.' ||
      domain.find("..") != std::string::npos) {
    return 0;
  }
  std::string suffix = psl->PublicSuffix(domain);
  std::string org = psl->OrganizationalDomain(domain);
  FUZZ_CHECK(LabelSuffix(suffix, domain));
  FUZZ_CHECK(LabelSuffix(org, domain));
  FUZZ_CHECK(LabelSuffix(suffix, org));
  FUZZ_CHECK(psl->OrganizationalDomain(org) == org);
  return 0;
}
