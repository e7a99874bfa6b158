// JMAP state strings (RFC 8620 section 1.2 and 5.2) built from the store's
// per-mailbox modification sequences (RFC 7162), so that IMAP CONDSTORE and
// JMAP see one truth: a state lists, per mailbox, its highest modseq, its
// next UID and (Mailbox state) a hash of its name, role and subscription.
// Foo/changes decodes the client's state and asks the store what changed
// after each mailbox's modseq. Pure (fuzzed by fuzz/fuzz_jmap_request.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hato::jmap {

inline constexpr size_t kMaxStateMailboxes = 100000;

struct MailboxMark {
  int64_t id = 0;
  uint64_t modseq = 0;
  uint32_t uidnext = 0;
  uint32_t meta = 0;  // Mailbox state only: hash of name, role, subscription
  bool operator==(const MailboxMark&) const = default;
};

// `kind` is 'e' (Email, Thread) or 'm' (Mailbox). Marks must be sorted by id.
std::string EncodeState(char kind, const std::vector<MailboxMark>& marks);
// nullopt for anything EncodeState did not produce (cannotCalculateChanges).
std::optional<std::vector<MailboxMark>> DecodeState(char kind, std::string_view state);

// A small stable hash (FNV-1a 32) for MailboxMark::meta.
uint32_t Hash32(std::string_view s);

}  // namespace hato::jmap
