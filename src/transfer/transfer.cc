#include "transfer/transfer.h"

#include <algorithm>

#include "base/progress.h"
#include "base/strings.h"
#include "imap/proto/utf7.h"
#include "mime/message.h"
#include "store/mailbox_name.h"
#include "store/restore_window.h"
#include "transfer/mbox.h"

namespace hato::transfer {
namespace {

io::FileSystem* Fs(io::FileSystem* fs) { return fs ? fs : io::FileSystem::Default(); }

Status EnsureEmptyDir(io::FileSystem* fs, const std::string& out) {
  if (fs->Exists(out)) {
    auto names = fs->ListDir(out);
    if (!names) return names.error();
    if (!names->empty()) return Err(ErrorKind::kExists, out + " exists and is not empty");
  }
  return fs->CreateDirs(out);
}

// "A/B" -> ".A.B" in modified UTF-7; INBOX -> "" (the Maildir itself).
Result<std::string> MaildirFolderDir(const std::string& name) {
  if (name == store::kInbox) return std::string();
  std::string out;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find(store::kHierarchySeparator, start);
    if (end == std::string::npos) end = name.size();
    std::string part = name.substr(start, end - start);
    if (part.find('.') != std::string::npos) {
      return Err(ErrorKind::kInvalid, "folder " + name +
                                          ": a '.' in a name cannot be kept in Maildir++; use "
                                          "--format mbox");
    }
    auto enc = imap::EncodeMailboxUtf7(part);
    if (!enc) return Err(ErrorKind::kInvalid, "folder " + name + ": " + enc.error().message);
    out += "." + *enc;
    start = end + 1;
  }
  return out;
}

// Why a folder cannot become export path components (each level a safe file
// name, the last with ".mbox"), or nullopt.
std::optional<std::string> ExportUnsafe(const std::string& name) {
  size_t start = 0;
  while (true) {
    size_t end = name.find(store::kHierarchySeparator, start);
    std::string level = name.substr(start, end == std::string::npos ? end : end - start);
    if (end == std::string::npos) level += ".mbox";
    if (!store::SafePathComponent(level)) {
      return std::string("a level is empty, '.', '..', too long or holds a control character");
    }
    if (end == std::string::npos) return std::nullopt;
    start = end + 1;
  }
}

// The messages of an import, written through a RestoreWindow.
class Importer {
 public:
  Importer(store::Store& store, int64_t account_id, TransferResult& out, Progress& progress)
      : store_(store),
        account_(account_id),
        progress_(progress),
        window_(store, kImportWindow, out) {}

  void Add(const std::string& folder, std::string content, uint32_t flags, int64_t date,
           std::string return_path, const std::string& where) {
    store::RestoreRequest req;
    req.account_id = account_;
    req.mailbox = folder;
    auto tree = mime::Parse(content);
    req.mime = tree ? mime::Serialize(*tree) : std::string();
    req.content = std::move(content);
    req.flags = flags;
    req.internal_date = date;
    req.return_path = std::move(return_path);
    window_.Add(std::move(req), where);
    window_.Locked([&](TransferResult& o) {
      ++o.messages;
      progress_.Update(o.messages, o.bytes);
    });
  }

  // An empty folder is kept too.
  void EnsureFolder(const std::string& folder, const std::string& where) {
    auto st = store::Wait<void>([&](store::Done<void> done) {
      store_.CreateMailbox(account_, folder, "", std::move(done));
    });
    if (!st && st.error().kind != ErrorKind::kExists) Problem(where + ": " + st.error().message);
    // A folder made by the import is subscribed, as the mail client it came
    // from showed it (the store's CreateMailbox subscribes nothing).
    if (st) {
      (void)store::Wait<void>([&](store::Done<void> done) {
        store_.SetSubscribed(account_, folder, true, std::move(done));
      });
    }
  }

  void Problem(std::string p) {
    window_.Locked([&](TransferResult& o) { o.problems.push_back(std::move(p)); });
  }

  void Drain() { window_.Drain(); }

 private:
  store::Store& store_;
  int64_t account_;
  Progress& progress_;
  store::RestoreWindow<TransferResult> window_;
};

int64_t Now() { return static_cast<int64_t>(std::time(nullptr)); }

// `in_tree`: a file found while walking a tree (not the path the admin
// named): opened only if it is a regular file, never through a link.
Status ImportMboxFile(io::FileSystem* fs, const std::string& path, const std::string& folder,
                      Importer& imp, bool in_tree) {
  auto file = in_tree ? fs->OpenRegularFile(path) : fs->OpenRead(path);
  if (!file) return file.error();
  auto size = fs->FileSize(path);
  if (!size) return size.error();
  MboxSplitter split;
  uint64_t n = 0;
  auto drain = [&] {
    while (auto m = split.Next()) {
      ++n;
      std::string where = "folder " + folder + " file " + path + " message " + std::to_string(n);
      if (m->too_large) {
        imp.Problem(where + ": larger than " + std::to_string(kMaxImportMessage) + " bytes");
        continue;
      }
      imp.Add(folder, std::move(m->content), 0, m->internal_date ? m->internal_date : Now(),
              std::move(m->return_path), where);
    }
  };
  for (uint64_t off = 0; off < *size;) {
    size_t len = static_cast<size_t>(std::min<uint64_t>(kReadChunk, *size - off));
    auto chunk = (*file)->ReadAt(off, len);
    if (!chunk) return chunk.error();
    split.Feed(*chunk);
    drain();
    off += len;
  }
  split.Finish();
  drain();
  if (n == 0 && *size > 0) imp.Problem("file " + path + ": no message (not an mbox?)");
  if (n == 0) imp.EnsureFolder(folder, "file " + path);
  return Ok();
}

Status ImportMaildirFolder(io::FileSystem* fs, const std::string& dir, const std::string& folder,
                           Importer& imp) {
  imp.EnsureFolder(folder, "folder directory " + dir);
  for (const char* sub : {"cur", "new"}) {
    std::string d = dir + "/" + sub;
    auto dtype = fs->Lstat(d);
    if (!dtype) return dtype.error();
    if (*dtype == io::FileSystem::FileType::kMissing) continue;
    if (*dtype != io::FileSystem::FileType::kDirectory) {
      imp.Problem("folder directory " + d + ": not a directory (a link?), skipped");
      continue;
    }
    auto names = fs->ListDir(d);
    if (!names) return names.error();
    std::sort(names->begin(), names->end());
    for (const auto& name : *names) {
      std::string path = d + "/" + name;
      std::string where = "folder " + folder + " file " + path;
      // Only regular files, never followed through a link (issue 11): a link
      // to a host file must not end up in a mailbox.
      auto type = fs->Lstat(path);
      if (!type) {
        imp.Problem(where + ": " + type.error().message);
        continue;
      }
      if (*type != io::FileSystem::FileType::kRegular) {
        imp.Problem(where + ": not a regular file (a link, FIFO or directory), skipped");
        continue;
      }
      auto size = fs->FileSize(path);
      if (!size) {
        imp.Problem(where + ": " + size.error().message);
        continue;
      }
      if (*size > kMaxImportMessage) {
        imp.Problem(where + ": larger than " + std::to_string(kMaxImportMessage) + " bytes");
        continue;
      }
      auto data = fs->ReadRegularFile(path);  // O_NOFOLLOW
      if (!data) {
        imp.Problem(where + ": " + data.error().message);
        continue;
      }
      // The unique name starts with the delivery time (Maildir convention).
      int64_t date = 0;
      for (char c : name) {
        if (c < '0' || c > '9') break;
        date = date * 10 + (c - '0');
        if (date > (int64_t{1} << 40)) break;
      }
      uint32_t flags = std::string_view(sub) == "cur" ? MaildirFlags(name) : 0;
      imp.Add(folder, ToCrlf(*data), flags, date > 0 ? date : Now(), "", where);
    }
  }
  return Ok();
}

// Walks a directory of mbox files; folder = relative path without ".mbox".
Status ImportMboxTree(io::FileSystem* fs, const std::string& dir, const std::string& prefix,
                      Importer& imp, int depth) {
  constexpr int kMaxDepth = 32;
  if (depth > kMaxDepth) return Err(ErrorKind::kInvalid, dir + ": folders nested too deep");
  auto names = fs->ListDir(dir);
  if (!names) return names.error();
  std::sort(names->begin(), names->end());
  for (const auto& name : *names) {
    if (name.empty() || name[0] == '.') continue;
    std::string path = dir + "/" + name;
    std::string base = name;
    if (base.size() > 5 && base.substr(base.size() - 5) == ".mbox") {
      base = base.substr(0, base.size() - 5);
    }
    std::string folder = prefix.empty() ? base : prefix + store::kHierarchySeparator + base;
    auto type = fs->Lstat(path);
    if (!type) {
      imp.Problem("file " + path + ": " + type.error().message);
      continue;
    }
    if (*type == io::FileSystem::FileType::kDirectory) {
      if (auto st = ImportMboxTree(fs, path, folder, imp, depth + 1); !st) return st;
      continue;
    }
    if (*type != io::FileSystem::FileType::kRegular) {
      imp.Problem("file " + path + ": not a regular file (a link, FIFO or device), skipped");
      continue;
    }
    auto canonical = store::CanonicalMailboxName(folder);
    if (canonical) {
      // The same rule as IMAP CREATE (issue 11): reported once per folder.
      if (auto st = store::CheckNewMailboxName(*canonical); !st) canonical = st.error();
    }
    if (!canonical) {
      imp.Problem("file " + path + ": folder name " + LogSafe(folder) + ": " +
                  canonical.error().message);
      continue;
    }
    if (auto st = ImportMboxFile(fs, path, *canonical, imp, /*in_tree=*/true); !st) {
      imp.Problem("file " + path + ": " + st.error().message);
    }
  }
  return Ok();
}

}  // namespace

std::optional<std::string> MboxExportProblem(const std::string& name) { return ExportUnsafe(name); }

Result<TransferResult> Export(store::Store& store, int64_t account_id, Format format,
                              const std::string& out_dir, io::FileSystem* fs_in) {
  io::FileSystem* fs = Fs(fs_in);
  if (auto st = EnsureEmptyDir(fs, out_dir); !st) return st.error();
  auto mailboxes = store.ListMailboxes(account_id);
  if (!mailboxes) return mailboxes.error();
  TransferResult out;
  uint64_t total = 0;
  for (const auto& mb : *mailboxes) total += mb.messages;
  Progress progress("export", total);
  uint64_t seq = 0;
  for (const auto& mb : *mailboxes) {
    ++out.folders;
    auto snap = store.ListMessages(account_id, mb.name);
    if (!snap) return Err(snap.error().kind, "folder " + mb.name + ": " + snap.error().message);
    std::string dir;
    std::unique_ptr<io::WritableFile> mbox;
    std::string mbox_path;
    // The path is built from checked components only, and nothing on the way
    // may be a symbolic link: a folder named "../../x" (stored by an older
    // Hato or a restored store) is reported, never written outside out_dir.
    auto unsafe = ExportUnsafe(mb.name);
    if (unsafe) {
      out.problems.push_back("folder " + LogSafe(mb.name) + ": " + *unsafe +
                             "; not exported (rename it over IMAP, then export again)");
      continue;
    }
    if (format == Format::kMaildir) {
      auto sub = MaildirFolderDir(mb.name);
      if (!sub) return sub.error();
      dir = out_dir + "/" + *sub;
      if (!sub->empty() && !store::SafePathComponent(*sub)) {
        out.problems.push_back("folder " + LogSafe(mb.name) + ": name too long for Maildir++");
        continue;
      }
      for (const char* d : {"/cur", "/new", "/tmp"}) {
        if (auto st = io::CheckNoSymlinkBelow(*fs, out_dir, dir + d); !st) return st.error();
        if (auto st = fs->CreateDirs(dir + d); !st) return st.error();
      }
    } else {
      mbox_path = out_dir + "/" + mb.name + ".mbox";
      size_t slash = mbox_path.rfind('/');
      if (auto st = io::CheckNoSymlinkBelow(*fs, out_dir, mbox_path); !st) return st.error();
      if (auto st = fs->CreateDirs(mbox_path.substr(0, slash)); !st) return st.error();
      if (auto st = io::CheckNoSymlinkBelow(*fs, out_dir, mbox_path); !st) return st.error();
      auto f = fs->OpenAppend(mbox_path);  // O_NOFOLLOW
      if (!f) return f.error();
      mbox = std::move(*f);
    }
    for (const auto& m : snap->messages) {
      auto content = store.ReadMessage(account_id, m.id);
      if (!content) {
        out.problems.push_back("folder " + mb.name + " uid " + std::to_string(m.uid) + ": " +
                               content.error().message);
        continue;
      }
      if (format == Format::kMaildir) {
        // Kept byte for byte (CRLF), as Dovecot accepts; the name carries the
        // internal date and the flags.
        std::string name = std::to_string(m.internal_date) + ".hato" + std::to_string(++seq) + "_" +
                           std::to_string(m.uid) + MaildirFlagSuffix(m.flags);
        std::string tmp = dir + "/tmp/" + name;
        if (auto st = fs->WriteFile(tmp, *content); !st) return st.error();
        if (auto st = fs->Rename(tmp, dir + "/cur/" + name); !st) return st.error();
      } else {
        std::string rec;
        AppendMboxMessage(rec, "", m.internal_date, *content);
        if (auto st = mbox->Append(rec); !st) return st.error();
      }
      ++out.messages;
      out.bytes += content->size();
      progress.Update(out.messages, out.bytes);
    }
    if (mbox) {
      if (auto st = mbox->Sync(); !st) return st.error();
    }
  }
  if (auto st = fs->SyncFileSystem(out_dir); !st) return st.error();
  progress.Finish();
  out.seconds = progress.Seconds();
  return out;
}

Result<TransferResult> Import(store::Store& store, int64_t account_id, const std::string& path,
                              const std::string& folder, io::FileSystem* fs_in) {
  io::FileSystem* fs = Fs(fs_in);
  if (!fs->Exists(path)) return Err(ErrorKind::kNotFound, "no such file or directory: " + path);
  TransferResult out;
  Progress progress("import", 0);
  Status st = Ok();
  {
    Importer imp(store, account_id, out, progress);
    auto top = fs->ListDir(path);
    if (top && fs->Exists(path + "/cur")) {
      // Maildir++: the directory is INBOX (or --folder), ".A.B" are A/B.
      ++out.folders;
      st = ImportMaildirFolder(fs, path, folder.empty() ? store::kInbox : folder, imp);
      std::sort(top->begin(), top->end());
      for (const auto& name : *top) {
        if (!st) break;
        if (name.size() < 2 || name[0] != '.' || name == ".." ||
            !fs->Exists(path + "/" + name + "/cur")) {
          continue;
        }
        auto type = fs->Lstat(path + "/" + name);
        if (!type || *type != io::FileSystem::FileType::kDirectory) {
          imp.Problem("folder directory " + path + "/" + name +
                      ": not a directory (a link?), "
                      "skipped");
          continue;
        }
        std::string f;
        bool ok = true;
        size_t start = 1;
        while (start <= name.size()) {
          size_t end = name.find('.', start);
          if (end == std::string::npos) end = name.size();
          auto dec = imap::DecodeMailboxUtf7(name.substr(start, end - start));
          if (!dec) {
            // Not modified UTF-7: taken as UTF-8 (a Maildir written with UTF-8 names).
            dec = name.substr(start, end - start);
          }
          if (!f.empty()) f += store::kHierarchySeparator;
          f += *dec;
          start = end + 1;
        }
        auto canonical = store::CanonicalMailboxName(f);
        if (canonical) {
          if (auto st = store::CheckNewMailboxName(*canonical); !st) canonical = st.error();
        }
        if (!canonical) {
          imp.Problem("folder directory " + path + "/" + name + ": " + canonical.error().message);
          ok = false;
        }
        if (!ok) continue;
        ++out.folders;
        st = ImportMaildirFolder(fs, path + "/" + name, *canonical, imp);
      }
    } else if (top) {
      st = ImportMboxTree(fs, path, "", imp, 0);
    } else {
      ++out.folders;
      std::string f = folder.empty() ? store::kInbox : folder;
      st = ImportMboxFile(fs, path, f, imp, /*in_tree=*/false);
    }
    imp.Drain();
  }
  progress.Finish();
  out.seconds = progress.Seconds();
  if (!st) return st.error();
  return out;
}

}  // namespace hato::transfer
