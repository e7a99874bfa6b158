// The SORT and THREAD keys of a message (RFC 5256, RFC 5957), derived from
// its parsed MIME tree and header, and their stored form: a compact record
// the store keeps with each body from delivery on (StoreOptions::sort_keys,
// Store::ReadSortKeys), so that SORT and THREAD over a large mailbox read one
// row per message and parse nothing, even on a cold server (issue 16).
//
// Pure: bytes in, values out. Fuzzed by fuzz/fuzz_sort_record.cc (decoding
// never crashes; what decodes re-encodes to the same bytes).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "imap/proto/sort.h"
#include "mime/message.h"

namespace hato::imap {

// The first byte of a record. A record of another version (the derivation
// changed) is ignored and the keys derived again from the MIME tree.
inline constexpr uint8_t kSortRecordVersion = 1;
// A record past this is not stored (a pathological References field): the
// keys are then derived at SORT time as for bodies stored before records.
inline constexpr size_t kMaxSortRecordBytes = 64 * 1024;

// The keys of a message from its tree's envelope and, when
// `with_references`, the References field of `header` (its raw header
// block). `arrival`, `size`, `seq` and `number` are left 0; `date` is the
// Date field's time, and `*has_date` (when given) tells whether there was a
// valid one (RFC 5256 section 2.2: else INTERNALDATE is used).
SortInput DeriveSortInput(const mime::Part* tree, std::string_view header, bool with_references,
                          bool* has_date = nullptr);

// The stored record of derived keys (always with the references).
std::string EncodeSortRecord(const SortInput& keys, bool has_date);
// The keys of a record; a missing Date becomes `internal_date`. nullopt when
// the record is malformed or of another version.
std::optional<SortInput> DecodeSortRecord(std::string_view record, int64_t internal_date);

// The record of a stored body: `mime` is its mime::Serialize form. "" when
// there is no tree or the record would pass kMaxSortRecordBytes.
std::string SortRecordOf(std::string_view content, std::string_view mime);

}  // namespace hato::imap
