// libFuzzer target for SRS (src/outbound/srs.h): reversing a local part
// never crashes, and whatever SrsForward makes reverses to what it was made
// from (SRS0), or to an SRS0 address of the first forwarder (SRS1).
//
//   * SrsReverse accepts a local part only with the right hash;
//   * SrsForward(sender) of an address outside the SRS domain is an SRS
//     local part at that domain, and its reverse is the sender (or, for an
//     SRS address of another forwarder, an SRS0 address at that forwarder).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/strings.h"
#include "fuzz_util.h"
#include "outbound/srs.h"

namespace o = hato::outbound;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  constexpr std::string_view kSecret = "fuzz-secret-0123456789abcdef0123";
  constexpr int64_t kNow = 1'790'000'000;
  (void)o::SrsReverse(in, kSecret, kNow);
  (void)o::IsSrsLocalPart(in);

  std::string sender(in.substr(0, 200));
  if (sender.find('@') == std::string::npos) sender += "@example.org";
  size_t at = sender.rfind('@');
  if (at == 0 || at + 1 == sender.size() || sender.find('\0') != std::string::npos) return 0;
  std::string_view domain = std::string_view(sender).substr(at + 1);
  if (domain.find_first_of("@=") != std::string_view::npos ||
      hato::EqualsIgnoreCase(domain, "srs.example")) {
    return 0;
  }
  std::string fwd = o::SrsForward(sender, "srs.example", kSecret, kNow);
  size_t fat = fwd.rfind('@');
  FUZZ_CHECK(fat != std::string::npos && fwd.substr(fat + 1) == "srs.example");
  std::string_view local = std::string_view(fwd).substr(0, fat);
  FUZZ_CHECK(o::IsSrsLocalPart(local));
  auto back = o::SrsReverse(local, kSecret, kNow);
  if (local.substr(0, 4) == "SRS0") {
    FUZZ_CHECK(back.ok() && *back == sender);
  } else if (back.ok()) {
    FUZZ_CHECK(o::IsSrsLocalPart(std::string_view(*back).substr(0, back->rfind('@'))));
  }
  return 0;
}
