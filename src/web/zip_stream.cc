#include "web/zip_stream.h"

#include <array>
#include <ctime>

namespace hato::web {
namespace {

const std::array<uint32_t, 256>& CrcTable() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

void Put16(std::string& out, uint32_t v) {
  out += static_cast<char>(v & 0xFF);
  out += static_cast<char>((v >> 8) & 0xFF);
}
void Put32(std::string& out, uint64_t v) {
  Put16(out, static_cast<uint32_t>(v & 0xFFFF));
  Put16(out, static_cast<uint32_t>((v >> 16) & 0xFFFF));
}

constexpr uint16_t kVersion = 20;    // 2.0: stored entries with data descriptors
constexpr uint16_t kFlags = 0x0808;  // bit 3: data descriptor; bit 11: UTF-8 names

}  // namespace

uint32_t Crc32(uint32_t crc, std::string_view data) {
  const auto& t = CrcTable();
  crc = ~crc;
  for (unsigned char b : data) crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

std::string ZipStream::Begin(std::string_view name, int64_t mtime) {
  Entry e;
  e.name = std::string(name);
  std::time_t tt = static_cast<std::time_t>(mtime);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  if (tm.tm_year < 80) tm = std::tm{0, 0, 0, 1, 0, 80, 0, 0, 0, 0, nullptr};  // 1980-01-01
  e.dos_time = static_cast<uint16_t>((tm.tm_hour << 11) | (tm.tm_min << 5) | (tm.tm_sec / 2));
  e.dos_date =
      static_cast<uint16_t>(((tm.tm_year - 80) << 9) | ((tm.tm_mon + 1) << 5) | tm.tm_mday);
  e.header_offset = offset_;
  std::string out;
  Put32(out, 0x04034b50);
  Put16(out, kVersion);
  Put16(out, kFlags);
  Put16(out, 0);  // stored
  Put16(out, e.dos_time);
  Put16(out, e.dos_date);
  Put32(out, 0);  // CRC, sizes: in the data descriptor
  Put32(out, 0);
  Put32(out, 0);
  Put16(out, static_cast<uint32_t>(e.name.size()));
  Put16(out, 0);
  out += e.name;
  offset_ += out.size();
  entries_.push_back(std::move(e));
  open_ = true;
  return out;
}

void ZipStream::Data(std::string_view data) {
  Entry& e = entries_.back();
  e.crc = Crc32(e.crc, data);
  e.size += data.size();
  offset_ += data.size();
}

std::string ZipStream::End() {
  const Entry& e = entries_.back();
  std::string out;
  Put32(out, 0x08074b50);
  Put32(out, e.crc);
  Put32(out, e.size);
  Put32(out, e.size);
  offset_ += out.size();
  open_ = false;
  return out;
}

std::string ZipStream::Finish() {
  std::string out;
  uint64_t start = offset_;
  for (const Entry& e : entries_) {
    Put32(out, 0x02014b50);
    Put16(out, kVersion);  // made by
    Put16(out, kVersion);  // needed
    Put16(out, kFlags);
    Put16(out, 0);
    Put16(out, e.dos_time);
    Put16(out, e.dos_date);
    Put32(out, e.crc);
    Put32(out, e.size);
    Put32(out, e.size);
    Put16(out, static_cast<uint32_t>(e.name.size()));
    Put16(out, 0);  // extra
    Put16(out, 0);  // comment
    Put16(out, 0);  // disk
    Put16(out, 0);  // internal attributes
    Put32(out, 0);  // external attributes
    Put32(out, e.header_offset);
    out += e.name;
  }
  uint64_t cd_size = out.size();
  Put32(out, 0x06054b50);
  Put16(out, 0);
  Put16(out, 0);
  Put16(out, static_cast<uint32_t>(entries_.size()));
  Put16(out, static_cast<uint32_t>(entries_.size()));
  Put32(out, cd_size);
  Put32(out, start);
  Put16(out, 0);
  offset_ += out.size();
  return out;
}

bool ZipStream::Fits(uint64_t more) const {
  // Room for the descriptor and a central directory entry per entry too.
  uint64_t tail = 16 + 22;
  for (const Entry& e : entries_) tail += 46 + e.name.size();
  return entries_.size() < 0xFFFF && offset_ + more + tail < kZipMaxOffset &&
         (entries_.empty() || entries_.back().size + more < kZipMaxOffset);
}

}  // namespace hato::web
