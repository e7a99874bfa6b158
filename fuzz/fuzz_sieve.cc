// libFuzzer target for the Sieve parser, checker and interpreter
// (src/sieve/script.h, src/sieve/interpret.h).
//
// Invariants:
//   * Parse and Compile return (never crash); errors are kInvalid (syntax,
//     unknown command, ...) or kTooLarge (a named limit), and name a line;
//   * a script that compiles runs to an Outcome or an error without crashing,
//     whatever its loops of includes, wildcards or variables, within the limits;
//   * an Outcome respects the limits: at most max_redirects redirects, at most
//     max_actions files, and a reject never comes with a kept copy.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "sieve/interpret.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  hato::sieve::Limits limits;
  limits.max_match_steps = 20000;
  auto script = hato::sieve::Compile(text, limits);
  if (!script) {
    auto k = script.error().kind;
    FUZZ_CHECK(k == hato::ErrorKind::kInvalid || k == hato::ErrorKind::kTooLarge);
    FUZZ_CHECK(script.error().message.rfind("line ", 0) == 0 ||
               script.error().message.find("larger than") != std::string::npos);
    return 0;
  }
  static const std::string message =
      "Received: from a\r\nReceived: from b\r\nFrom: A <a@x.test>\r\nTo: b+d@y.test, c@z.test\r\n"
      "Subject: =?utf-8?q?caf=C3=A9?= [list] hello\r\nDate: Tue, 1 Dec 2026 10:00:00 +0100\r\n"
      "Message-ID: <1@x.test>\r\nList-Id: <l.x.test>\r\nContent-Type: multipart/mixed; "
      "boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nbody text\r\n--b--\r\n";
  hato::sieve::Environment env;
  env.message = message;
  env.envelope = {"a@x.test", "b+d@y.test"};
  env.now = 1796212800;
  env.verdict.spam_scanned = true;
  env.verdict.spam_score = 3;
  env.verdict.spam_required = 5;
  env.mailbox_exists = [](const std::string& m) { return m == "INBOX"; };
  // include of any name gives the script itself: recursion must stop at the limit.
  env.load_script = [&](const std::string&, bool) -> hato::Result<std::string> {
    return std::string(text);
  };
  env.duplicate_seen = [](const std::string&, int64_t) { return false; };
  auto out = hato::sieve::Run(*script, env, limits);
  if (!out) return 0;
  FUZZ_CHECK(out->redirects.size() <= limits.max_redirects);
  FUZZ_CHECK(out->files.size() <= limits.max_actions + 1);
  FUZZ_CHECK(!(out->reject && !out->files.empty() && !out->implicit_keep));
  return 0;
}
