// A zip archive written as a stream (issue 13: the member's "download all my
// mail"): entries are stored (no compression: mbox text is sent gzip-less
// but the archive is built with bounded memory), each followed by a data
// descriptor (APPNOTE.TXT 6.3.x, section 4.3.9: general purpose bit 3), so
// no size or CRC is needed before an entry's data; the central directory
// at the end repeats them. File names are UTF-8 (bit 11). Without the
// Zip64 extensions: an entry or the whole archive must stay under 4 GiB
// (Fits says when the next bytes would not). Pure: bytes out, no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hato::web {

inline constexpr uint64_t kZipMaxOffset = 0xFFFFFFFFull;

// CRC-32 (ISO 3309, as zip uses it), continued from `crc` (0 to start).
uint32_t Crc32(uint32_t crc, std::string_view data);

class ZipStream {
 public:
  // The local file header of a new entry; `mtime` in unix seconds (UTC).
  std::string Begin(std::string_view name, int64_t mtime);
  // Accounts for `data` of the current entry; the caller writes it as is.
  void Data(std::string_view data);
  // The data descriptor that ends the current entry.
  std::string End();
  // The central directory and its end record; the archive is complete.
  std::string Finish();
  // Whether `more` bytes can still be added without passing 4 GiB.
  bool Fits(uint64_t more) const;
  uint64_t offset() const { return offset_; }

 private:
  struct Entry {
    std::string name;
    uint16_t dos_time = 0, dos_date = 0;
    uint32_t crc = 0;
    uint64_t size = 0;
    uint64_t header_offset = 0;
  };
  std::vector<Entry> entries_;
  uint64_t offset_ = 0;
  bool open_ = false;
};

}  // namespace hato::web
