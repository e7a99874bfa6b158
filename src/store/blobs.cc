#include "store/blobs.h"

#include <openssl/evp.h>
#include <zstd.h>

#include <cstring>
#include <memory>

#include "base/strings.h"

namespace hato::store {
namespace {

// Record header, little-endian (docs/storage.md):
//   magic "HBL1" | codec u8 | 3 reserved | size u64 | stored_length u64 | sha256[32]
constexpr char kMagic[4] = {'H', 'B', 'L', '1'};
constexpr size_t kHeaderSize = 4 + 1 + 3 + 8 + 8 + kSha256Size;
constexpr int kZstdLevel = 1;  // fast: bodies are compressed on the commit path

void PutU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}
uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// zstd contexts are large to create; keep one per thread (the writer
// compresses, readers decompress).
ZSTD_CCtx* CompressContext() {
  thread_local std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> ctx(ZSTD_createCCtx(),
                                                                        &ZSTD_freeCCtx);
  return ctx.get();
}
ZSTD_DCtx* DecompressContext() {
  thread_local std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> ctx(ZSTD_createDCtx(),
                                                                        &ZSTD_freeDCtx);
  return ctx.get();
}

}  // namespace

BlobStore::BlobStore(io::FileSystem* fs, std::string dir, Options options)
    : fs_(fs), dir_(std::move(dir)), options_(options) {}

std::string BlobStore::SegmentPath(uint32_t number) const {
  char name[32];
  std::snprintf(name, sizeof(name), "/seg-%08u.hb", number);
  return dir_ + name;
}

Status BlobStore::Open() {
  if (auto st = fs_->CreateDirs(dir_); !st) return st;
  auto names = fs_->ListDir(dir_);
  if (!names) return names.error();
  uint32_t newest = 0;
  for (const auto& n : *names) {
    unsigned v = 0;
    if (std::sscanf(n.c_str(), "seg-%08u.hb", &v) == 1 && v > newest) newest = v;
  }
  return StartSegment(newest == 0 ? 1 : newest);
}

Status BlobStore::StartSegment(uint32_t number) {
  std::string path = SegmentPath(number);
  bool existed = fs_->Exists(path);
  auto f = fs_->OpenAppend(path);
  if (!f) {
    // A missing directory (the storage was removed under us) is temporary for
    // a client: nothing was acknowledged, the operator restores service.
    return Err(ErrorKind::kTemporary, f.error().message);
  }
  current_ = std::move(*f);
  current_number_ = number;
  dir_dirty_ = dir_dirty_ || !existed;
  broken_ = false;
  return Ok();
}

EncodedBlob BlobStore::Encode(std::string_view content, std::string sha256) const {
  EncodedBlob blob;
  blob.sha256 = sha256.empty() ? Sha256(content) : std::move(sha256);
  blob.size = content.size();
  // The payload is compressed straight into the record after its header: no
  // intermediate buffer, no copy of the compressed bytes.
  std::string& record = blob.record;
  bool try_zstd = options_.compress && content.size() >= 512;
  record.reserve(kHeaderSize + (try_zstd ? ZSTD_compressBound(content.size()) : content.size()));
  record.append(kMagic, 4);
  record.append(4, '\0');  // codec and 3 reserved bytes
  PutU64(record, content.size());
  PutU64(record, 0);  // stored_length, set below
  record += blob.sha256;
  size_t stored = content.size();
  if (try_zstd) {
    record.resize(kHeaderSize + ZSTD_compressBound(content.size()));
    size_t n =
        ZSTD_compressCCtx(CompressContext(), record.data() + kHeaderSize,
                          record.size() - kHeaderSize, content.data(), content.size(), kZstdLevel);
    if (!ZSTD_isError(n) && n < content.size() - content.size() / 8) {
      blob.codec = Codec::kZstd;
      stored = n;
      record.resize(kHeaderSize + n);  // shrinking keeps the compressed bytes
    } else {
      record.resize(kHeaderSize);
    }
  }
  if (blob.codec == Codec::kRaw) record.append(content);
  record[4] = static_cast<char>(blob.codec);
  for (int i = 0; i < 8; ++i) record[16 + i] = static_cast<char>((stored >> (8 * i)) & 0xff);
  return blob;
}

Result<BlobRef> BlobStore::Append(std::string_view content, const std::string& sha256) {
  return AppendEncoded(Encode(content, sha256));
}

Result<BlobRef> BlobStore::AppendEncoded(const EncodedBlob& blob) {
  if (broken_ || current_ == nullptr || current_->Size() >= options_.segment_size) {
    if (auto st = StartSegment(current_number_ + 1); !st) return st.error();
  }
  BlobRef ref;
  ref.sha256 = blob.sha256;
  ref.segment = current_number_;
  ref.size = blob.size;
  ref.codec = blob.codec;
  ref.stored_length = blob.record.size() - kHeaderSize;
  if (auto st = current_->Append(blob.record); !st) {
    broken_ = true;  // a partial record may be on disk; never append after it
    return st.error();
  }
  // Where the record landed: another process (hato restore --merge, import)
  // may append to the same segment; each record is one O_APPEND write.
  ref.offset = current_->Size() - blob.record.size();
  return ref;
}

Status BlobStore::Sync() {
  if (current_ == nullptr) return Ok();
  if (auto st = current_->Sync(); !st) {
    broken_ = true;
    return st;
  }
  if (dir_dirty_) {
    if (auto st = fs_->SyncDir(dir_); !st) {
      broken_ = true;
      return st;
    }
    dir_dirty_ = false;
  }
  // Bytes written to a segment that was deleted under us are not stored: never
  // let them be acknowledged (docs/operations.md, "Storage destroyed").
  if (!fs_->Exists(SegmentPath(current_number_))) {
    broken_ = true;
    return Err(ErrorKind::kTemporary,
               "message storage is missing: " + SegmentPath(current_number_) + " was removed");
  }
  return Ok();
}

Result<std::shared_ptr<io::ReadableFile>> BlobStore::ReaderFor(uint32_t segment) {
  // A segment removed under us (storage destroyed) is not served from a stale
  // descriptor: reads fail temporarily until the operator restores service.
  std::string path = SegmentPath(segment);
  bool exists = fs_->Exists(path);
  std::lock_guard lock(readers_mu_);
  if (!exists) {
    readers_.erase(segment);
    return Err(ErrorKind::kTemporary, "message storage is missing: " + path);
  }
  auto it = readers_.find(segment);
  if (it != readers_.end()) return it->second;
  auto f = fs_->OpenRead(path);
  if (!f) return f.error();
  std::shared_ptr<io::ReadableFile> shared = std::move(*f);
  readers_[segment] = shared;
  return shared;
}

Result<std::string> BlobStore::Read(const BlobRef& ref) {
  auto file = ReaderFor(ref.segment);
  if (!file) return file.error();
  auto raw = (*file)->ReadAt(ref.offset, kHeaderSize + ref.stored_length);
  if (!raw) return raw.error();
  const std::string& rec = *raw;
  std::string where = SegmentPath(ref.segment) + "@" + std::to_string(ref.offset);
  if (std::memcmp(rec.data(), kMagic, 4) != 0 ||
      static_cast<uint8_t>(rec[4]) != uint8_t(ref.codec) || GetU64(rec.data() + 8) != ref.size ||
      GetU64(rec.data() + 16) != ref.stored_length ||
      rec.compare(24, kSha256Size, ref.sha256) != 0) {
    return Err(ErrorKind::kCorrupt, "blob record header mismatch at " + where);
  }
  std::string content;
  std::string_view payload(rec.data() + kHeaderSize, ref.stored_length);
  if (ref.codec == Codec::kZstd) {
    content.resize(ref.size);
    size_t n = ZSTD_decompressDCtx(DecompressContext(), content.data(), content.size(),
                                   payload.data(), payload.size());
    if (ZSTD_isError(n) || n != ref.size) {
      return Err(ErrorKind::kCorrupt, "blob does not decompress at " + where);
    }
  } else {
    content.assign(payload);
  }
  if (Sha256(content) != ref.sha256) {
    return Err(ErrorKind::kCorrupt,
               "blob checksum mismatch at " + where + " (want " + HexEncode(ref.sha256) + ")");
  }
  return content;
}

}  // namespace hato::store
