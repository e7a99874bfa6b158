// Content-addressed message bodies in append-only segment files.
//
// A message body is stored once, whatever the number of recipients, as one
// record appended to the current segment file var/blobs/seg-NNNNNNNN.hb. Its
// address is the SHA-256 of its content, kept in the metadata database with
// the record's segment and offset (a BlobRef). The record repeats the hash, so
// a read verifies both that the right record was read and that its bytes are
// intact. The format is described in docs/storage.md.
//
// Durability: Append() only writes; Sync() fdatasyncs the segment (and the
// directory when the segment is new). The store's writer appends every body of
// a batch, calls Sync() once, and only then commits the metadata that points
// at them, so a committed row never points at bytes that are not durable.
// Bytes appended but never committed (a crash, a failed commit) are unreferenced
// garbage that no reader can reach.
//
// Thread-safety: Append/Sync/Rotate are called by the single writer thread.
// Read may be called from any thread concurrently. Another process (a CLI
// restore --merge, import or fsck --repair next to the server) may append to
// the same segment: each record is one O_APPEND write and its offset is where
// it landed, so the two never overwrite each other.
//
// A segment or directory removed under a running store (storage destroyed)
// fails Sync and Read with kTemporary instead of acknowledging or serving
// bytes from an unlinked file.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "base/digest.h"
#include "base/result.h"
#include "io/fs.h"

namespace hato::store {

inline constexpr uint64_t kDefaultSegmentSize = 256ull << 20;  // roll to a new segment past this
inline constexpr size_t kSha256Size = 32;

enum class Codec : uint8_t { kRaw = 0, kZstd = 1 };

struct BlobRef {
  std::string sha256;  // 32 raw bytes
  uint32_t segment = 0;
  uint64_t offset = 0;         // of the record header
  uint64_t stored_length = 0;  // payload bytes on disk
  uint64_t size = 0;           // content bytes
  Codec codec = Codec::kRaw;
};

// A body's segment record built before the writer thread sees it (issue 17):
// its SHA-256 and the whole record (header and payload, zstd-compressed when
// that saves at least 1/8), so the single writer only writes the bytes. Built
// by BlobStore::Encode on any thread; valid only for the content it was built
// from (size and sha256 say which).
struct EncodedBlob {
  std::string sha256;  // 32 raw bytes
  uint64_t size = 0;   // content bytes
  Codec codec = Codec::kRaw;
  std::string record;  // as appended to a segment: header, then payload
};

class BlobStore {
 public:
  struct Options {
    uint64_t segment_size = kDefaultSegmentSize;
    bool compress = true;  // zstd when it saves at least 1/8
  };

  BlobStore(io::FileSystem* fs, std::string dir, Options options);

  // Finds the newest segment and appends after its end (a torn tail record
  // from a crash stays unreferenced).
  Status Open();

  // Writes a record for `content` whose SHA-256 is `sha256`. Not durable until Sync().
  Result<BlobRef> Append(std::string_view content, const std::string& sha256);
  // Encodes `content` as Append would (sha256 "" = computed here). Thread-safe:
  // callers encode on their own thread so the writer only writes the record.
  EncodedBlob Encode(std::string_view content, std::string sha256 = {}) const;
  // Writes a record built by Encode. Not durable until Sync().
  Result<BlobRef> AppendEncoded(const EncodedBlob& blob);
  // Makes every Append so far durable. On failure, the current segment is
  // abandoned (see WritableFile::Sync) and the next Append starts a new one.
  Status Sync();

  // Reads and verifies a record. kCorrupt when the bytes do not match the hash.
  Result<std::string> Read(const BlobRef& ref);

  const std::string& dir() const { return dir_; }

 private:
  Status StartSegment(uint32_t number);
  Result<std::shared_ptr<io::ReadableFile>> ReaderFor(uint32_t segment);
  std::string SegmentPath(uint32_t number) const;

  io::FileSystem* fs_;
  std::string dir_;
  Options options_;
  // Writer-thread state.
  std::unique_ptr<io::WritableFile> current_;
  uint32_t current_number_ = 0;
  bool dir_dirty_ = false;  // a new segment file needs the directory fsync'd
  bool broken_ = false;     // the last Sync failed: roll before the next Append

  std::mutex readers_mu_;
  std::map<uint32_t, std::shared_ptr<io::ReadableFile>> readers_;  // guarded by readers_mu_
};

}  // namespace hato::store
