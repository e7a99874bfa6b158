#include "web/zip_stream.h"

#include <zlib.h>

#include <ctime>

namespace hato::web {
namespace {

void Put16(std::string& out, uint32_t v) {
  out += static_cast<char>(v & 0xFF);
  out += static_cast<char>((v >> 8) & 0xFF);
}
void Put32(std::string& out, uint64_t v) {
  Put16(out, static_cast<uint32_t>(v & 0xFFFF));
  Put16(out, static_cast<uint32_t>((v >> 16) & 0xFFFF));
}
void Put64(std::string& out, uint64_t v) {
  Put32(out, v & 0xFFFFFFFFu);
  Put32(out, v >> 32);
}
// A 4-byte field, or its Zip64 marker when the value needs 8 (section 4.5.3).
uint64_t Clamp32(uint64_t v) { return v >= kZip32Max ? kZip32Max : v; }

constexpr uint16_t kVersion = 20;    // 2.0: stored entries with data descriptors
constexpr uint16_t kVersion64 = 45;  // 4.5: Zip64 (section 4.4.3.2)
constexpr uint16_t kZip64Extra = 0x0001;
constexpr uint16_t kFlags = 0x0808;  // bit 3: data descriptor; bit 11: UTF-8 names

}  // namespace

uint32_t Crc32(uint32_t crc, std::string_view data) {
  // zlib's: the same CRC-32, several times faster than a byte table (an
  // export passes gigabytes through it).
  return static_cast<uint32_t>(
      crc32_z(crc, reinterpret_cast<const Bytef*>(data.data()), data.size()));
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
  if (e.size >= kZip32Max) {  // section 4.3.9.2: 8-byte sizes
    Put64(out, e.size);
    Put64(out, e.size);
  } else {
    Put32(out, e.size);
    Put32(out, e.size);
  }
  offset_ += out.size();
  open_ = false;
  return out;
}

std::string ZipStream::Finish() {
  std::string out;
  uint64_t start = offset_;
  for (const Entry& e : entries_) {
    // The Zip64 extra holds, in this order, only the fields whose classic
    // form is the marker (section 4.5.3).
    std::string extra;
    if (e.size >= kZip32Max) {
      Put64(extra, e.size);  // original size
      Put64(extra, e.size);  // compressed size
    }
    if (e.header_offset >= kZip32Max) Put64(extra, e.header_offset);
    uint16_t version = extra.empty() ? kVersion : kVersion64;
    Put32(out, 0x02014b50);
    Put16(out, version);  // made by
    Put16(out, version);  // needed
    Put16(out, kFlags);
    Put16(out, 0);
    Put16(out, e.dos_time);
    Put16(out, e.dos_date);
    Put32(out, e.crc);
    Put32(out, Clamp32(e.size));
    Put32(out, Clamp32(e.size));
    Put16(out, static_cast<uint32_t>(e.name.size()));
    Put16(out, extra.empty() ? 0 : static_cast<uint32_t>(4 + extra.size()));
    Put16(out, 0);  // comment
    Put16(out, 0);  // disk
    Put16(out, 0);  // internal attributes
    Put32(out, 0);  // external attributes
    Put32(out, Clamp32(e.header_offset));
    out += e.name;
    if (!extra.empty()) {
      Put16(out, kZip64Extra);
      Put16(out, static_cast<uint32_t>(extra.size()));
      out += extra;
    }
  }
  uint64_t cd_size = out.size();
  uint64_t count = entries_.size();
  if (count >= kZip16Max || cd_size >= kZip32Max || start >= kZip32Max) {
    // Zip64 end of central directory record (section 4.3.14) and its
    // locator (4.3.15), before the classic record whose fields say "look".
    uint64_t record = start + cd_size;
    Put32(out, 0x06064b50);
    Put64(out, 44);  // the record's size after this field
    Put16(out, kVersion64);
    Put16(out, kVersion64);
    Put32(out, 0);  // this disk
    Put32(out, 0);  // the disk where the central directory starts
    Put64(out, count);
    Put64(out, count);
    Put64(out, cd_size);
    Put64(out, start);
    Put32(out, 0x07064b50);
    Put32(out, 0);  // the disk with the Zip64 record
    Put64(out, record);
    Put32(out, 1);  // disks in all
  }
  uint32_t count16 = count >= kZip16Max ? kZip16Max : static_cast<uint32_t>(count);
  Put32(out, 0x06054b50);
  Put16(out, 0);
  Put16(out, 0);
  Put16(out, count16);
  Put16(out, count16);
  Put32(out, Clamp32(cd_size));
  Put32(out, Clamp32(start));
  Put16(out, 0);
  offset_ += out.size();
  return out;
}

}  // namespace hato::web
