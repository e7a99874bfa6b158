// LoadOrCreateSrsSecret (outbound/srs.h): the file-system side of SRS, kept
// out of srs.cc so that the pure code links without the io layer (fuzz_srs).
#include <openssl/rand.h>

#include "base/strings.h"
#include "outbound/srs.h"

namespace hato::outbound {

Result<std::string> LoadOrCreateSrsSecret(io::FileSystem& fs, const std::string& data_dir) {
  const std::string path = data_dir + "/" + kSrsKeyFile;
  if (fs.Exists(path)) {
    auto text = fs.ReadRegularFile(path);
    if (!text) return text.error();
    std::string key = *text;
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' ')) {
      key.pop_back();
    }
    if (key.size() < 32) return Err(ErrorKind::kCorrupt, path + ": too short for an SRS secret");
    return key;
  }
  std::string fresh(32, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(fresh.data()), 32) != 1) {
    return Err(ErrorKind::kTemporary, "no random bytes for the SRS secret");
  }
  std::string key = HexEncode(fresh);
  if (auto st = fs.WriteFileAtomic(path, key + "\n"); !st) return st.error();  // mode 0600
  return key;
}

}  // namespace hato::outbound
