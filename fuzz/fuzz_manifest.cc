// libFuzzer target for the backup manifest parser (src/backup/manifest.h).
//
// Invariants:
//   * ParseManifest never crashes; errors are kInvalid;
//   * an accepted manifest has an id without "/", file paths that are relative
//     and free of "." / ".." components, and 64-hex-digit checksums;
//   * FormatManifest of a parsed manifest parses to the same manifest, and
//     formatting that again gives the same text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "backup/manifest.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto m = hato::backup::ParseManifest(in);
  if (!m) {
    FUZZ_CHECK(m.error().kind == hato::ErrorKind::kInvalid);
    return 0;
  }
  FUZZ_CHECK(!m->id.empty() && m->id.find('/') == std::string::npos);
  for (const auto& f : m->files) {
    FUZZ_CHECK(!f.path.empty() && f.path[0] != '/');
    std::string wrapped = "/" + f.path + "/";
    FUZZ_CHECK(wrapped.find("/../") == std::string::npos);
    FUZZ_CHECK(wrapped.find("/./") == std::string::npos);
    FUZZ_CHECK(wrapped.find("//") == std::string::npos);
    FUZZ_CHECK(f.sha256_hex.size() == 64);
  }
  std::string text = hato::backup::FormatManifest(*m);
  auto again = hato::backup::ParseManifest(text);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK_EQ_STR(hato::backup::FormatManifest(*again), text);
  FUZZ_CHECK(again->files.size() == m->files.size());
  FUZZ_CHECK(again->counts == m->counts);
  return 0;
}
