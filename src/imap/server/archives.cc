#include "imap/server/archives.h"

#include "base/strings.h"

namespace hato::imap {
namespace {

constexpr std::string_view kRoot = "#lists";  // kListArchivePrefix without its separator

// The archive account's INBOX, presented under the shared name.
Result<Archive> ArchiveOf(store::Store& store, const store::ListInfo& list) {
  if (list.archive_account_id == 0) {
    // A list from before the archives: its account is made at its next post.
    return Err(ErrorKind::kNotFound, "no archive yet");
  }
  auto boxes = store.ListMailboxes(list.archive_account_id);
  if (!boxes) return boxes.error();
  for (const auto& b : *boxes) {
    if (b.name != store::kInbox) continue;
    Archive a;
    a.account_id = list.archive_account_id;
    a.mailbox = b;
    a.mailbox.name = std::string(store::kListArchivePrefix) + list.address;
    a.mailbox.special_use.clear();
    a.mailbox.subscribed = false;
    a.mailbox.recent = 0;  // shared: nobody claims \Recent (RFC 3501 2.3.2)
    return a;
  }
  return Err(ErrorKind::kNotFound, "the archive has no INBOX");
}

}  // namespace

bool IsArchiveName(std::string_view name) {
  return name == kRoot || name.starts_with(store::kListArchivePrefix);
}

Result<Archive> FindArchive(store::Store& store, const std::string& user, std::string_view name) {
  if (!name.starts_with(store::kListArchivePrefix)) {
    return Err(ErrorKind::kNotFound, "not a list archive");
  }
  std::string address = AsciiLower(name.substr(store::kListArchivePrefix.size()));
  auto list = store.FindList(address);
  if (!list) return list.error();
  auto member = store.FindListMember(list->id, user);
  if (!member) return member.error();
  return ArchiveOf(store, *list);
}

Result<std::vector<Archive>> ListArchives(store::Store& store, const std::string& user) {
  auto lists = store.ListsOfMember(user);
  if (!lists) return lists.error();
  std::vector<Archive> out;
  for (const auto& l : *lists) {
    auto a = ArchiveOf(store, l);
    if (!a) {
      if (a.error().kind == ErrorKind::kNotFound) continue;
      return a.error();
    }
    out.push_back(std::move(*a));
  }
  return out;
}

}  // namespace hato::imap
