// A zip archive written as a stream (issue 13: the member's "download all my
// mail"): entries are stored (no compression: mbox text is sent gzip-less
// but the archive is built with bounded memory), each followed by a data
// descriptor (APPNOTE.TXT 6.3.x, section 4.3.9: general purpose bit 3), so
// no size or CRC is needed before an entry's data; the central directory
// at the end repeats them. File names are UTF-8 (bit 11).
//
// Zip64 (APPNOTE section 4.5.3, 4.3.14-16) where the classic fields are too
// small, and only there, so small archives stay readable everywhere: an
// entry of 4 GiB or more gets 8-byte sizes in its data descriptor (section
// 4.3.9.2) and a Zip64 extra field in its central entry, as does an entry
// whose local header starts past 4 GiB; 65535 entries or more, or a central
// directory past 4 GiB, add the Zip64 end of central directory record and
// its locator. Pure: bytes out, no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hato::web {

// Past these a field takes its Zip64 form (0xFFFF.../the value elsewhere).
inline constexpr uint64_t kZip32Max = 0xFFFFFFFFull;
inline constexpr uint64_t kZip16Max = 0xFFFFull;

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
