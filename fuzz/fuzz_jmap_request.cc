// libFuzzer target for the JMAP request decoder and state strings
// (src/jmap/request.h, src/jmap/state.h).
//
// Invariants:
//   * DecodeApiRequest returns (never crashes or throws) for any bytes;
//     a decoded request has at most max_calls_in_request calls, each with a
//     name, an object and an id; an error has a request-level URN type;
//   * the size limit is checked before parsing: a body over the limit is
//     always the "limit" error;
//   * result references resolve or fail with a method error, never crash,
//     against the decoded calls used as earlier responses;
//   * DecodeState(EncodeState(x)) == x, and DecodeState of anything either
//     fails or re-encodes to the same string.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "jmap/request.h"
#include "jmap/state.h"

using namespace hato::jmap;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  uint64_t h = hato::fuzz::Hash(in);
  DecodeLimits limits{64 + h % 100000, 1 + h % 16};
  std::vector<std::string> caps = {kCapCore, kCapMail};
  auto r = DecodeApiRequest(in, limits, caps);
  if (in.size() > limits.max_size_request) {
    FUZZ_CHECK(std::holds_alternative<RequestError>(r));
    FUZZ_CHECK(std::get<RequestError>(r).limit == "maxSizeRequest");
  }
  if (auto* req = std::get_if<ApiRequest>(&r)) {
    FUZZ_CHECK(req->calls.size() <= limits.max_calls_in_request);
    std::vector<Response> earlier;
    for (auto& c : req->calls) {
      json::object args = c.args;
      (void)ResolveReferences(args, earlier);
      earlier.push_back(Response{c.name, c.args, c.id});
    }
  } else {
    const RequestError& e = std::get<RequestError>(r);
    FUZZ_CHECK(e.type.rfind("urn:ietf:params:jmap:error:", 0) == 0);
    FUZZ_CHECK(!ProblemJson(e).empty());
  }
  (void)IsValidId(in);
  if (auto v = ParseJson(in)) (void)EvaluatePointer(*v, in.substr(0, h % (in.size() + 1)));
  for (char kind : {'e', 'm'}) {
    auto marks = DecodeState(kind, in);
    if (marks) FUZZ_CHECK_EQ_STR(EncodeState(kind, *marks), in);
  }
  return 0;
}
