// libFuzzer target for RFC 8058 one-click unsubscribe (src/lists/proto.h):
// the token of a request URL and the body of its POST are untrusted.
//
//   * nothing crashes;
//   * a token only checks when it is the key's own token for what it names
//     (a round trip through UnsubscribeToken gives the same string);
//   * a token made from any list/member pair checks and names them again;
//   * the pages escape what they show (no '<' from the input).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/strings.h"
#include "fuzz_util.h"
#include "lists/proto.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hato::lists;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::string key = "fuzz-key-0123456789abcdef0123456789";
  if (auto t = CheckUnsubscribeToken(key, in)) {
    FUZZ_CHECK(UnsubscribeToken(key, t->list, t->member) == in);
  }
  // The first line as a content type, the rest as a POST body.
  size_t nl = in.find('\n');
  std::string_view type = in.substr(0, nl == std::string_view::npos ? 0 : nl);
  std::string_view body = nl == std::string_view::npos ? in : in.substr(nl + 1);
  (void)IsOneClickPost(type, body);
  // Two lines as a list and a member address.
  std::string_view list = type, member = body.substr(0, body.find('\n'));
  if (list.find('@') != std::string_view::npos && member.find('@') != std::string_view::npos) {
    std::string token = UnsubscribeToken(key, list, member);
    if (auto t = CheckUnsubscribeToken(key, token)) {
      FUZZ_CHECK(t->list == hato::AsciiLower(list));
      FUZZ_CHECK(t->member == hato::AsciiLower(member));
    }
  }
  std::string page =
      RenderUnsubscribePage(UnsubscribePage::kConfirm, size % 2, list, member, body.substr(0, 64));
  if (in.find("<script") != std::string_view::npos) {
    FUZZ_CHECK(page.find("<script") == std::string::npos);
  }
  return 0;
}
