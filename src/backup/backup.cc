#include "backup/backup.h"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "base/progress.h"
#include "base/strings.h"
#include "mime/message.h"
#include "store/restore_window.h"

namespace hato::backup {
namespace {

constexpr const char* kMarker = "HATO-BACKUP";
constexpr const char* kMarkerText = "hato-backup 1\n";
constexpr size_t kHashChunk = 1 << 20;
// The data dir's own files a set carries, so a wiped host can be rebuilt.
// acme/: the ACME account key and the certificate it got (acme/client.h).
// srs.key: bounces to SRS addresses given out before a restore still come back.
// list-unsubscribe.key: the one-click links (RFC 8058) in list mail already sent keep working.
constexpr const char* kConfigFiles[] = {
    "hato.toml", "tls/cert.pem",        "tls/key.pem", "acme/account.key", "acme/certificate.pem",
    "srs.key",   "list-unsubscribe.key"};

io::FileSystem* Fs(io::FileSystem* fs) { return fs ? fs : io::FileSystem::Default(); }

// The data dir's files a set carries: kConfigFiles and the DKIM signing keys
// (DATA/dkim/*.key, msgauth/keyring.h), without which a restored server
// would stop signing.
std::vector<std::string> ConfigFiles(io::FileSystem* fs, const std::string& data_dir) {
  std::vector<std::string> out(std::begin(kConfigFiles), std::end(kConfigFiles));
  if (auto keys = fs->ListDir(data_dir + "/dkim")) {
    std::sort(keys->begin(), keys->end());
    for (const auto& name : *keys) {
      if (name.size() > 4 && name.compare(name.size() - 4, 4, ".key") == 0) {
        out.push_back("dkim/" + name);
      }
    }
  }
  return out;
}

// Gives `to` the permission bits of `from` (keys stay 0600, a certificate
// keeps its 0644): the file-system seam writes every file 0600.
Status CopyMode(const std::string& from, const std::string& to) {
  struct stat st {};
  if (::stat(from.c_str(), &st) != 0) {
    return Err(ErrorKind::kInternal, "cannot stat " + from + ": " + strerror(errno));
  }
  if (::chmod(to.c_str(), st.st_mode & 07777) != 0) {
    return Err(ErrorKind::kInternal, "cannot chmod " + to + ": " + strerror(errno));
  }
  return Ok();
}

std::string BodyDir(const std::string& dest, const std::string& hex) {
  return dest + "/bodies/" + hex.substr(0, 2);
}
std::string BodyPath(const std::string& dest, const std::string& sha256) {
  std::string hex = HexEncode(sha256);
  return BodyDir(dest, hex) + "/" + hex;
}
std::string SetDir(const std::string& dest, const std::string& id) { return dest + "/sets/" + id; }

Result<std::string> Sha256File(io::FileSystem* fs, const std::string& path, uint64_t size) {
  auto f = fs->OpenRead(path);
  if (!f) return f.error();
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  for (uint64_t off = 0; off < size;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kHashChunk, size - off));
    auto chunk = (*f)->ReadAt(off, n);
    if (!chunk) return chunk.error();
    EVP_DigestUpdate(ctx.get(), chunk->data(), chunk->size());
    off += n;
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  return HexEncode(std::string_view(reinterpret_cast<char*>(md), len));
}

std::string NewSetId(io::FileSystem* fs, const std::string& dest) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  std::string id = buf;
  for (int n = 2; fs->Exists(SetDir(dest, id)); ++n)
    id = std::string(buf) + "-" + std::to_string(n);
  return id;
}

Status InitDest(io::FileSystem* fs, const std::string& dest) {
  std::string marker = dest + "/" + kMarker;
  if (fs->Exists(marker)) {
    auto text = fs->ReadFile(marker);
    if (!text) return text.error();
    if (*text != kMarkerText) {
      return Err(ErrorKind::kInvalid, marker + ": not a hato backup of a format this hato reads");
    }
  } else {
    if (fs->Exists(dest)) {
      auto names = fs->ListDir(dest);
      if (!names) return names.error();
      if (!names->empty()) {
        return Err(ErrorKind::kInvalid,
                   dest + " is not empty and not a hato backup destination; use an empty dir");
      }
    }
    if (auto st = fs->CreateDirs(dest); !st) return st;
    if (auto st = fs->WriteFileAtomic(marker, kMarkerText); !st) return st;
  }
  for (int i = 0; i < 256; ++i) {
    char hex[3];
    std::snprintf(hex, sizeof(hex), "%02x", i);
    std::string dir = dest + "/bodies/" + hex;
    if (auto st = fs->CreateDirs(dir); !st) return st;
    // Bodies are never written through a link planted in DEST (issue 11):
    // every body directory must be a real directory (files are then written
    // with O_NOFOLLOW and renamed into place).
    if (auto st = io::CheckNoSymlinkBelow(*fs, dest, dir); !st) return st;
  }
  if (auto st = fs->CreateDirs(dest + "/sets"); !st) return st;
  return io::CheckNoSymlinkBelow(*fs, dest, dest + "/sets");
}

// Every file under a set directory, relative to it (a link is reported as
// itself, never followed). For `backup verify`: files the MANIFEST does not
// list are flagged.
Status ListSetTree(io::FileSystem* fs, const std::string& root, const std::string& rel,
                   std::vector<std::string>& out, std::vector<std::string>& links, int depth) {
  constexpr int kMaxDepth = 8;
  if (depth > kMaxDepth) return Err(ErrorKind::kInvalid, root + "/" + rel + ": nested too deep");
  std::string dir = rel.empty() ? root : root + "/" + rel;
  auto names = fs->ListDir(dir);
  if (!names) return names.error();
  for (const auto& n : *names) {
    std::string r = rel.empty() ? n : rel + "/" + n;
    auto type = fs->Lstat(root + "/" + r);
    if (!type) return type.error();
    if (*type == io::FileSystem::FileType::kDirectory) {
      if (auto st = ListSetTree(fs, root, r, out, links, depth + 1); !st) return st;
    } else if (*type == io::FileSystem::FileType::kSymlink) {
      links.push_back(r);
    } else {
      out.push_back(r);
    }
  }
  return Ok();
}

Status AddFile(io::FileSystem* fs, const std::string& set_dir, const std::string& rel,
               Manifest& m) {
  auto size = fs->FileSize(set_dir + "/" + rel);
  if (!size) return size.error();
  auto sha = Sha256File(fs, set_dir + "/" + rel, *size);
  if (!sha) return sha.error();
  m.files.push_back({rel, *size, *sha});
  return Ok();
}

// Reads a body from DEST and checks it is the one named.
Result<std::string> ReadBackupBody(io::FileSystem* fs, const std::string& dest,
                                   const store::BlobRef& ref) {
  std::string path = BodyPath(dest, ref.sha256);
  auto data = fs->ReadFile(path);
  if (!data) {
    return Err(
        data.error().kind == ErrorKind::kNotFound ? ErrorKind::kNotFound : ErrorKind::kTemporary,
        "body missing from backup: " + path + " (" + data.error().message + ")");
  }
  if (data->size() != ref.size || Sha256(*data) != ref.sha256) {
    return Err(ErrorKind::kCorrupt, "body damaged in backup: " + path + " (checksum mismatch)");
  }
  return data;
}

Result<SetInfo> ReadSet(io::FileSystem* fs, const std::string& dest, const std::string& id) {
  SetInfo info;
  info.id = id;
  std::string path = SetDir(dest, id) + "/MANIFEST";
  if (!fs->Exists(path)) {
    info.problem = "incomplete (no MANIFEST: interrupted backup)";
    return info;
  }
  auto text = fs->ReadFile(path);
  if (!text) return text.error();
  auto m = ParseManifest(*text);
  if (!m) {
    info.problem = path + ": " + m.error().message;
    return info;
  }
  if (m->id != id) {
    info.problem = path + ": names set " + m->id;
    return info;
  }
  info.manifest = std::move(*m);
  info.complete = true;
  return info;
}

Result<SetInfo> ChooseSet(io::FileSystem* fs, const std::string& dest, const std::string& id) {
  if (!fs->Exists(dest + "/" + kMarker)) {
    return Err(ErrorKind::kNotFound, dest + " is not a hato backup (no " + kMarker + ")");
  }
  if (!id.empty()) {
    auto s = ReadSet(fs, dest, id);
    if (!s) return s.error();
    if (!fs->Exists(SetDir(dest, id))) return Err(ErrorKind::kNotFound, "no backup set " + id);
    if (!s->complete) return Err(ErrorKind::kInvalid, "backup set " + id + ": " + s->problem);
    return s;
  }
  auto all = ListBackups(dest, fs);
  if (!all) return all.error();
  for (auto it = all->rbegin(); it != all->rend(); ++it) {
    if (it->complete) return *it;
  }
  return Err(ErrorKind::kNotFound, "no complete backup set in " + dest);
}

// Checks the set's own files (metadata, config) against the manifest.
void CheckSetFiles(io::FileSystem* fs, const std::string& dest, const SetInfo& set,
                   std::vector<std::string>& problems) {
  for (const auto& f : set.manifest.files) {
    std::string path = SetDir(dest, set.id) + "/" + f.path;
    auto size = fs->FileSize(path);
    if (!size) {
      problems.push_back("set " + set.id + ": " + path + " missing");
      continue;
    }
    if (*size != f.size) {
      problems.push_back("set " + set.id + ": " + path + " has " + std::to_string(*size) +
                         " bytes, manifest says " + std::to_string(f.size));
      continue;
    }
    auto sha = Sha256File(fs, path, *size);
    if (!sha) {
      problems.push_back("set " + set.id + ": " + path + ": " + sha.error().message);
    } else if (*sha != f.sha256_hex) {
      problems.push_back("set " + set.id + ": " + path + " checksum mismatch");
    }
  }
}

}  // namespace

Result<Manifest> CreateBackup(store::Store& store, const std::string& data_dir,
                              const std::string& dest, io::FileSystem* fs_in) {
  io::FileSystem* fs = Fs(fs_in);
  if (auto st = InitDest(fs, dest); !st) return st.error();
  Manifest m;
  m.id = NewSetId(fs, dest);
  m.created = std::time(nullptr);
  std::string set_dir = SetDir(dest, m.id);
  if (auto st = fs->CreateDirs(set_dir + "/config/tls"); !st) return st.error();
  if (auto st = fs->CreateDirs(set_dir + "/config/dkim"); !st) return st.error();
  if (auto st = fs->CreateDirs(set_dir + "/config/acme"); !st) return st.error();
  if (auto st = io::CheckNoSymlinkBelow(*fs, dest, set_dir + "/config/tls"); !st) {
    return st.error();
  }
  if (auto st = io::CheckNoSymlinkBelow(*fs, dest, set_dir + "/config/acme"); !st) {
    return st.error();
  }
  if (auto st = io::CheckNoSymlinkBelow(*fs, dest, set_dir + "/config/dkim"); !st) {
    return st.error();
  }

  // 1. The metadata, consistent as of one read transaction, and 2. the
  // bodies DEST does not have yet, read as of the same instant (a body freed
  // since is still read: Store::SnapshotForBackup). A sharded store hands a
  // body again when it retries; those are in DEST by then.
  uint64_t copied = 0, copied_bytes = 0, handed = 0, handed_bytes = 0;
  Progress progress("backup " + m.id, 0);
  auto st = store.SnapshotForBackup(
      set_dir + "/meta.db",
      [&](const store::BlobRef& ref, const std::function<Result<std::string>()>& read) -> Status {
        ++handed;
        handed_bytes += ref.size;
        std::string path = BodyPath(dest, ref.sha256);
        if (!fs->Exists(path)) {
          auto content = read();
          if (!content) {
            return Err(content.error().kind, "body " + HexEncode(ref.sha256) +
                                                 " could not be read from the store: " +
                                                 content.error().message + " (run hato fsck)");
          }
          std::string tmp = path + ".tmp";
          if (auto w = fs->WriteFile(tmp, *content); !w) return w;
          if (auto r = fs->Rename(tmp, path); !r) return r;
          ++copied;
          copied_bytes += content->size();
        }
        progress.Update(handed, handed_bytes);
        return Ok();
      });
  progress.Finish();
  if (!st) return st.error();
  auto snap = store::OpenMetadataSnapshot(set_dir + "/meta.db");
  if (!snap) return snap.error();
  m.schema = (*snap)->schema_version();
  uint64_t bodies = 0, bytes = 0;
  st = (*snap)->ForEachBody([&](const store::BlobRef& ref) -> Status {
    ++bodies;
    bytes += ref.size;
    return Ok();
  });
  if (!st) return st.error();

  // 3. Counts, for `backup list`.
  auto accounts = (*snap)->Accounts();
  if (!accounts) return accounts.error();
  uint64_t messages = 0, live_accounts = 0;
  for (const auto& a : *accounts) {
    if (a.removed_at == 0) ++live_accounts;
    auto c = (*snap)->ForEachMessage(a.id, false, [&messages](const store::SnapshotMessage&) {
      ++messages;
      return Ok();
    });
    if (!c) return c.error();
  }
  snap->reset();

  // 4. The configuration, so a wiped host can be rebuilt from the backup alone.
  if (auto a = AddFile(fs, set_dir, "meta.db", m); !a) return a.error();
  for (const std::string& name : ConfigFiles(fs, data_dir)) {
    std::string from = data_dir + "/" + name;
    if (!fs->Exists(from)) continue;
    auto data = fs->ReadFile(from);
    if (!data) return data.error();
    std::string rel = "config/" + name;
    if (auto w = fs->WriteFile(set_dir + "/" + rel, *data); !w) return w.error();
    if (auto c = CopyMode(from, set_dir + "/" + rel); !c) return c.error();
    if (auto a = AddFile(fs, set_dir, rel, m); !a) return a.error();
  }
  m.counts = {{"accounts", live_accounts},
              {"messages", messages},
              {"bodies", bodies},
              {"body_bytes", bytes},
              {"copied_bodies", copied},
              {"copied_bytes", copied_bytes},
              {"seconds_x1000", static_cast<uint64_t>(progress.Seconds() * 1000)}};

  // 5. Durable, then complete: the MANIFEST is the commit point.
  if (auto s = fs->SyncFileSystem(dest); !s) return s.error();
  if (auto w = fs->WriteFileAtomic(set_dir + "/MANIFEST", FormatManifest(m)); !w) return w.error();
  return m;
}

Result<std::vector<SetInfo>> ListBackups(const std::string& dest, io::FileSystem* fs_in) {
  io::FileSystem* fs = Fs(fs_in);
  if (!fs->Exists(dest + "/" + kMarker)) {
    return Err(ErrorKind::kNotFound, dest + " is not a hato backup (no " + kMarker + ")");
  }
  auto names = fs->ListDir(dest + "/sets");
  if (!names) return names.error();
  std::sort(names->begin(), names->end());
  std::vector<SetInfo> out;
  for (const auto& id : *names) {
    auto s = ReadSet(fs, dest, id);
    if (!s) return s.error();
    out.push_back(std::move(*s));
  }
  return out;
}

Status CheckDestination(const std::string& dest, bool create, io::FileSystem* fs_in) {
  io::FileSystem* fs = Fs(fs_in);
  if (create || fs->Exists(dest + "/" + kMarker)) return Ok();
  if (!fs->Exists(dest)) {
    return Err(ErrorKind::kNotFound, dest +
                                         " does not exist (is the backup disk mounted?); pass "
                                         "--create to start a new backup destination there");
  }
  return Err(ErrorKind::kNotFound,
             dest +
                 " is not a hato backup destination yet (an unmounted disk's empty mount "
                 "point?); pass --create to start a new backup destination there");
}

namespace {

// Removes a directory tree written by this module (files and directories only).
Status RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return Err(ErrorKind::kTemporary, "cannot remove " + path + ": " + ec.message());
  return Ok();
}

}  // namespace

Result<PruneResult> PruneBackups(const std::string& dest, size_t keep, io::FileSystem* fs_in) {
  io::FileSystem* fs = Fs(fs_in);
  if (keep == 0) return Err(ErrorKind::kInvalid, "--keep must be at least 1");
  auto sets = ListBackups(dest, fs);
  if (!sets) return sets.error();
  PruneResult out;
  size_t complete = 0;
  for (const auto& s : *sets) complete += s.complete ? 1 : 0;
  // Sets are sorted oldest first; the oldest complete ones beyond `keep` go.
  size_t to_remove = complete > keep ? complete - keep : 0;
  std::vector<const SetInfo*> kept;
  for (const auto& s : *sets) {
    if (s.complete && to_remove > 0) {
      // The MANIFEST first: an interrupted prune leaves an incomplete set,
      // never a complete one with files missing.
      if (auto st = fs->Remove(SetDir(dest, s.id) + "/MANIFEST"); !st) return st.error();
      if (auto st = RemoveTree(SetDir(dest, s.id)); !st) return st.error();
      out.removed_sets.push_back(s.id);
      --to_remove;
      continue;
    }
    if (!s.complete) out.bodies_kept = true;
    kept.push_back(&s);
  }
  if (out.bodies_kept) return out;
  // Mark: every body a remaining set references. Sweep: the others.
  std::unordered_set<std::string> live;
  for (const SetInfo* s : kept) {
    auto snap = store::OpenMetadataSnapshot(SetDir(dest, s->id) + "/meta.db");
    if (!snap) return snap.error();
    auto st = (*snap)->ForEachBody([&live](const store::BlobRef& ref) -> Status {
      live.insert(HexEncode(ref.sha256));
      return Ok();
    });
    if (!st) return st.error();
  }
  for (int i = 0; i < 256; ++i) {
    char hex[3];
    std::snprintf(hex, sizeof(hex), "%02x", i);
    std::string dir = dest + "/bodies/" + hex;
    auto names = fs->ListDir(dir);
    if (!names) continue;
    for (const auto& name : *names) {
      if (live.count(name)) continue;
      auto size = fs->FileSize(dir + "/" + name);
      if (auto st = fs->Remove(dir + "/" + name); !st) return st.error();
      ++out.removed_bodies;
      if (size) out.removed_bytes += *size;
    }
  }
  return out;
}

Result<VerifyResult> VerifyBackup(const std::string& dest, const std::string& id,
                                  io::FileSystem* fs_in) {
  io::FileSystem* fs = Fs(fs_in);
  std::vector<SetInfo> sets;
  if (!id.empty()) {
    auto s = ChooseSet(fs, dest, id);
    if (!s) return s.error();
    sets.push_back(std::move(*s));
  } else {
    auto all = ListBackups(dest, fs);
    if (!all) return all.error();
    sets = std::move(*all);
  }
  VerifyResult out;
  // A body shared by several sets is read once.
  std::unordered_map<std::string, std::string> checked;  // sha256 -> problem ("" = good)
  Progress progress("verify", 0);
  for (const auto& set : sets) {
    if (!set.complete) {
      out.problems.push_back("set " + set.id + ": " + set.problem);
      continue;
    }
    ++out.sets;
    size_t before = out.problems.size();
    CheckSetFiles(fs, dest, set, out.problems);
    // A file the MANIFEST does not list (a link, or something added later)
    // would not be checked, and an older restore copied some: flagged.
    std::vector<std::string> present, links;
    if (auto st = ListSetTree(fs, SetDir(dest, set.id), "", present, links, 0); !st) {
      out.problems.push_back("set " + set.id + ": " + st.error().message);
    }
    for (const auto& rel : links) {
      out.problems.push_back("set " + set.id + ": " + SetDir(dest, set.id) + "/" + rel +
                             " is a symbolic link");
    }
    for (const auto& rel : present) {
      if (rel == "MANIFEST") continue;
      bool listed = false;
      for (const auto& f : set.manifest.files) listed = listed || f.path == rel;
      if (!listed) {
        out.problems.push_back("set " + set.id + ": " + SetDir(dest, set.id) + "/" + rel +
                               " is not listed in the MANIFEST");
      }
    }
    if (out.problems.size() != before) continue;  // the metadata itself is not trustworthy
    auto snap = store::OpenMetadataSnapshot(SetDir(dest, set.id) + "/meta.db");
    if (!snap) {
      out.problems.push_back("set " + set.id + ": " + snap.error().message);
      continue;
    }
    auto integrity = (*snap)->CheckIntegrity();
    if (!integrity) {
      out.problems.push_back("set " + set.id + ": " + integrity.error().message);
      continue;
    }
    for (const auto& p : *integrity) out.problems.push_back("set " + set.id + ": " + p);
    std::unordered_set<std::string> bad;
    auto st = (*snap)->ForEachBody([&](const store::BlobRef& ref) -> Status {
      auto it = checked.find(ref.sha256);
      if (it == checked.end()) {
        auto body = ReadBackupBody(fs, dest, ref);
        ++out.bodies;
        out.bytes += ref.size;
        progress.Update(out.bodies, out.bytes);
        it = checked.emplace(ref.sha256, body ? "" : body.error().message).first;
      }
      if (!it->second.empty()) bad.insert(ref.sha256);
      return Ok();
    });
    if (!st) {
      out.problems.push_back("set " + set.id + ": " + st.error().message);
      continue;
    }
    if (bad.empty()) continue;
    // Name every message that the damage reaches.
    std::unordered_set<std::string> named;
    auto accounts = (*snap)->Accounts();
    if (!accounts) return accounts.error();
    for (const auto& a : *accounts) {
      auto m = (*snap)->ForEachMessage(a.id, true, [&](const store::SnapshotMessage& msg) {
        if (bad.count(msg.body.sha256)) {
          named.insert(msg.body.sha256);
          out.problems.push_back("set " + set.id + ": account " + a.address + " folder " +
                                 msg.mailbox + " uid " + std::to_string(msg.uid) + ": " +
                                 checked[msg.body.sha256]);
        }
        return Ok();
      });
      if (!m) return m.error();
    }
    for (const auto& sha : bad) {
      if (!named.count(sha)) out.problems.push_back("set " + set.id + ": " + checked[sha]);
    }
  }
  progress.Finish();
  if (sets.empty()) out.problems.push_back(dest + ": no backup sets");
  return out;
}

Result<RestoreResult> RestoreInto(const std::string& dest, const std::string& data_dir,
                                  const RestoreOptions& options, io::FileSystem* fs_in) {
  io::FileSystem* fs = Fs(fs_in);
  auto set = ChooseSet(fs, dest, options.id);
  if (!set) return set.error();
  std::vector<std::string> problems;
  CheckSetFiles(fs, dest, *set, problems);
  if (!problems.empty()) return Err(ErrorKind::kCorrupt, problems.front());
  RestoreResult out;
  out.id = set->id;
  std::string set_dir = SetDir(dest, set->id);
  if (auto st = fs->CreateDirs(data_dir); !st) return st.error();
  if (!fs->Exists(data_dir + "/hato.toml")) {
    // Every config file the set carries (hato.toml, tls/, dkim/, acme/), with its
    // permissions.
    for (const auto& f : set->manifest.files) {
      if (f.path.rfind("config/", 0) != 0) continue;
      std::string name = f.path.substr(7);
      if (name.find("..") != std::string::npos || name.front() == '/') {
        return Err(ErrorKind::kCorrupt, "backup set " + set->id + ": bad file name " + f.path);
      }
      std::string from = set_dir + "/" + f.path;
      auto data = fs->ReadRegularFile(from);  // never through a link (issue 11)
      if (!data) return data.error();
      size_t slash = name.rfind('/');
      if (slash != std::string::npos) {
        if (auto st = fs->CreateDirs(data_dir + "/" + name.substr(0, slash)); !st) {
          return st.error();
        }
      }
      if (auto st = fs->WriteFileAtomic(data_dir + "/" + name, *data); !st) return st.error();
      if (auto st = CopyMode(from, data_dir + "/" + name); !st) return st.error();
    }
  }
  Progress progress("restore " + set->id, set->manifest.counts["bodies"]);
  store::RebuildOptions ro;
  ro.accounts = options.accounts;
  ro.without_messages = options.accounts_only;
  ro.fs = fs;
  ro.progress = [&](uint64_t n, uint64_t b) {
    out.added = n;
    out.bytes = b;
    progress.Update(n, b);
  };
  auto source = [fs, &dest](const store::BlobRef& ref) { return ReadBackupBody(fs, dest, ref); };
  auto st = store::RebuildStoreFromSnapshot(set_dir + "/meta.db", data_dir, ro, source);
  progress.Finish();
  if (!st) return st.error();
  out.seconds = progress.Seconds();
  auto snap = store::OpenMetadataSnapshot(data_dir + "/meta.db");
  if (!snap) return snap.error();
  auto accounts = (*snap)->Accounts();
  if (!accounts) return accounts.error();
  for (const auto& a : *accounts) {
    auto c = (*snap)->ForEachMessage(a.id, false, [&out](const store::SnapshotMessage&) {
      ++out.messages;
      return Ok();
    });
    if (!c) return c.error();
  }
  return out;
}

namespace {

// restore --merge: the account's Sieve scripts the live account lacks (by
// name; a live script of that name is newer and kept), and the backup's
// active one when no live script is active.
Status MergeSieveScripts(store::MetadataSnapshot& snap, store::Store& store,
                         int64_t snapshot_account, int64_t account_id) {
  auto scripts = snap.SieveScripts(snapshot_account);
  if (!scripts) return scripts.error();
  if (scripts->empty()) return Ok();
  auto live = store.ListSieveScripts(account_id);
  if (!live) return live.error();
  bool live_active = false;
  for (const auto& l : *live) live_active = live_active || l.active;
  for (const auto& sc : *scripts) {
    bool have = std::any_of(live->begin(), live->end(),
                            [&sc](const store::SieveScriptInfo& l) { return l.name == sc.name; });
    if (!have) {
      if (auto st = store.PutSieveScript(account_id, sc.name, sc.content); !st) {
        return Err(st.error().kind, "Sieve script " + sc.name + ": " + st.error().message);
      }
    }
    if (sc.active && !live_active) {
      if (auto st = store.SetActiveSieveScript(account_id, sc.name); !st) {
        return Err(st.error().kind, "Sieve script " + sc.name + ": " + st.error().message);
      }
    }
  }
  return Ok();
}

}  // namespace

Result<RestoreResult> RestoreMerge(const std::string& dest, store::Store& store,
                                   const RestoreOptions& options, io::FileSystem* fs_in) {
  io::FileSystem* fs = Fs(fs_in);
  auto set = ChooseSet(fs, dest, options.id);
  if (!set) return set.error();
  std::vector<std::string> problems;
  CheckSetFiles(fs, dest, *set, problems);
  if (!problems.empty()) return Err(ErrorKind::kCorrupt, problems.front());
  auto snap = store::OpenMetadataSnapshot(SetDir(dest, set->id) + "/meta.db");
  if (!snap) return snap.error();
  auto accounts = (*snap)->Accounts();
  if (!accounts) return accounts.error();

  // Which accounts: the live ones, or the named ones (live in the backup, else
  // the most recently removed). A named address may be a list's: that list is
  // merged (with its members and archive); the others are left out, and said.
  auto lists = (*snap)->Lists();
  if (!lists) return lists.error();
  auto named = [&options](const std::string& addr) {
    return std::find(options.accounts.begin(), options.accounts.end(), addr) !=
           options.accounts.end();
  };
  std::map<std::string, store::SnapshotAccount> chosen;
  for (const auto& a : *accounts) {
    if (!options.accounts.empty() && !named(a.address)) continue;
    if (options.accounts.empty() && a.removed_at != 0) continue;
    auto it = chosen.find(a.address);
    if (it == chosen.end() || it->second.removed_at != 0) chosen[a.address] = a;
  }
  for (const auto& addr : options.accounts) {
    bool is_list = std::any_of(lists->begin(), lists->end(), [&addr](const store::SnapshotList& l) {
      return l.info.address == addr;
    });
    if (!chosen.count(addr) && !is_list) {
      return Err(ErrorKind::kNotFound, "no account " + addr + " in backup");
    }
  }

  RestoreResult out;
  out.id = set->id;
  Progress progress("restore --merge " + set->id, set->manifest.counts["messages"]);
  store::RestoreWindow window(store, kRestoreWindow, out);
  // Merges the messages of a backed-up account (or list archive) into a live
  // one: bodies from the set, identical messages skipped (RestoreMessage).
  auto merge_messages = [&](int64_t snap_account, int64_t account_id,
                            const std::string& what) -> Status {
    auto st = (*snap)->ForEachMessage(snap_account, false, [&](const store::SnapshotMessage& m) {
      std::string where = what + " folder " + m.mailbox + " uid " + std::to_string(m.uid);
      auto body = ReadBackupBody(fs, dest, m.body);
      if (!body) {
        window.Locked([&](RestoreResult& o) {
          ++o.messages;
          o.problems.push_back(where + ": " + body.error().message);
        });
        return Ok();
      }
      store::RestoreRequest req;
      req.account_id = account_id;
      req.mailbox = m.mailbox;
      req.special_use = m.special_use;
      auto tree = mime::Parse(*body);
      req.mime = tree ? mime::Serialize(*tree) : std::string();
      req.content = std::move(*body);
      req.flags = m.flags;
      req.keywords = m.keywords;
      req.return_path = m.return_path;
      req.internal_date = m.internal_date;
      window.Add(std::move(req), std::move(where));
      window.Locked([&](RestoreResult& o) {
        ++o.messages;
        progress.Update(o.messages, o.bytes);
      });
      return Ok();
    });
    window.Drain();
    if (!st) return Err(st.error().kind, what + ": " + st.error().message);
    return Ok();
  };
  for (const auto& chosen_entry : chosen) {
    // Named, not a structured binding: the lambdas below capture addr.
    const auto& addr = chosen_entry.first;
    const auto& acct = chosen_entry.second;
    // The account, created with its password when the live store lacks it.
    auto live = store.FindAccount(addr);
    if (!live && live.error().kind == ErrorKind::kNotFound) {
      std::string domain = addr.substr(addr.rfind('@') + 1);
      auto local = store.IsLocalDomain(domain);
      if (!local) return local.error();
      if (!*local) {
        if (auto st = store.AddDomain(domain); !st) return st.error();
      }
      if (auto st = store.AddAccount(addr, acct.password_hash, acct.scram_sha256); !st)
        return st.error();
      live = store.FindAccount(addr);
    }
    if (!live) return Err(live.error().kind, "account " + addr + ": " + live.error().message);
    int64_t account_id = live->id;
    auto mailboxes = (*snap)->Mailboxes(acct.id);
    if (!mailboxes) return mailboxes.error();
    for (const auto& mb : *mailboxes) {
      auto st = store::Wait<void>([&](store::Done<void> done) {
        store.CreateMailbox(account_id, mb.name, mb.special_use, std::move(done));
      });
      if (!st && st.error().kind != ErrorKind::kExists) {
        return Err(st.error().kind,
                   "account " + addr + " folder " + mb.name + ": " + st.error().message);
      }
      // CreateMailbox subscribes nothing (RFC 3501 6.3.6): the snapshot says.
      if (st && mb.subscribed) {
        auto sub = store::Wait<void>([&](store::Done<void> done) {
          store.SetSubscribed(account_id, mb.name, true, std::move(done));
        });
        if (!sub)
          return Err(sub.error().kind,
                     "account " + addr + " folder " + mb.name + ": " + sub.error().message);
      }
    }
    // Its aliases, unless the live store has them already (or gave them to
    // another account, which is reported).
    auto aliases = (*snap)->Aliases(acct.id);
    if (!aliases) return aliases.error();
    for (const auto& alias : *aliases) {
      std::string alias_domain = alias.substr(alias.rfind('@') + 1);
      auto local = store.IsLocalDomain(alias_domain);
      if (!local) return local.error();
      if (!*local) {
        if (auto st = store.AddDomain(alias_domain); !st) return st.error();
      }
      auto added = store.AddAlias(alias, addr);
      if (added || added.error().kind != ErrorKind::kExists) {
        if (!added)
          problems.push_back("account " + addr + " alias " + alias + ": " + added.error().message);
        continue;
      }
      auto owner = store.ResolveRecipient(alias);
      if (!owner || owner->id != account_id) {
        problems.push_back("account " + addr + " alias " + alias + ": " + added.error().message);
      }
    }
    // Its Sieve scripts (the filters), merged like its folders.
    if (auto st = MergeSieveScripts(**snap, store, acct.id, account_id); !st) {
      problems.push_back("account " + addr + ": " + st.error().message);
    }
    if (options.accounts_only) continue;
    if (auto st = merge_messages(acct.id, account_id, "account " + addr); !st) return st.error();
  }
  // Mailing lists (all in a whole merge, else those named): created when
  // missing, with their settings; members the live list lacks are added
  // (existing ones keep their live state); their archives' posts merged.
  {
    for (const auto& l : *lists) {
      const std::string& addr = l.info.address;
      if (!options.accounts.empty() && !named(addr)) {
        out.lists_left_out.push_back(addr);
        continue;
      }
      auto live = store.FindList(addr);
      if (!live && live.error().kind == ErrorKind::kNotFound) {
        std::string domain = addr.substr(addr.rfind('@') + 1);
        auto local = store.IsLocalDomain(domain);
        if (!local) return local.error();
        if (!*local) {
          if (auto st = store.AddDomain(domain); !st) return st.error();
        }
        if (auto st = store.CreateList(addr, l.info.mode); !st) {
          problems.push_back("list " + addr + ": " + st.error().message);
          continue;
        }
        store::ListSettings settings;
        settings.name = l.info.name;
        settings.confirm_text = l.info.confirm_text;
        settings.welcome_text = l.info.welcome_text;
        settings.dmarc_rewrite = l.info.dmarc_rewrite;
        settings.max_message_size = l.info.max_message_size;
        settings.max_posts_per_hour = l.info.max_posts_per_hour;
        settings.bounce_threshold = l.info.bounce_threshold;
        if (auto st = store.UpdateList(addr, settings); !st) return st.error();
        live = store.FindList(addr);
      }
      if (!live) return Err(live.error().kind, "list " + addr + ": " + live.error().message);
      auto change = store.AddListMembers(live->id, l.members, false);
      if (!change) return Err(change.error().kind, "list " + addr + ": " + change.error().message);
      ++out.lists;
      out.list_members += change->added;
      // The archive's posts, into the live list's archive (one a list made
      // here got with it); those it holds already are skipped.
      if (!options.accounts_only && l.info.archive_account_id != 0 &&
          live->archive_account_id != 0) {
        if (auto st = merge_messages(l.info.archive_account_id, live->archive_account_id,
                                     "list " + addr + " archive");
            !st) {
          return st.error();
        }
      }
    }
  }
  progress.Finish();
  out.seconds = progress.Seconds();
  for (auto& p : problems) out.problems.push_back(std::move(p));
  return out;
}

Result<FsckResult> Fsck(store::Store& store, bool repair, const std::string& repair_from,
                        io::FileSystem* fs_in) {
  io::FileSystem* fs = Fs(fs_in);
  auto report = store.Verify();
  if (!report) return report.error();
  FsckResult out;
  out.bodies = report->blobs_checked;
  out.problems = report->problems;
  if (!repair) return out;
  // Counters first: a recount needs no backup (RFC 8621 section 2 counts,
  // IMAP STATUS). Verify lists at most 10 such mailboxes; the recount fixes all.
  if (std::any_of(out.problems.begin(), out.problems.end(), [](const std::string& p) {
        return p.find(store::kCounterProblem) != std::string::npos;
      })) {
    auto fixed = store.RecountMailboxes();
    if (!fixed) {
      out.unrepaired.push_back("mailbox counters: " + fixed.error().message);
    } else {
      out.repaired += *fixed;
    }
  }
  if (report->damaged.empty()) return out;
  if (repair_from.empty()) {
    for (const auto& ref : report->damaged)
      out.unrepaired.push_back(HexEncode(ref.sha256) + ": no --backup DEST to repair from");
    return out;
  }
  if (!fs->Exists(repair_from + "/" + kMarker)) {
    return Err(ErrorKind::kNotFound, repair_from + " is not a hato backup (no " + kMarker + ")");
  }
  for (const auto& ref : report->damaged) {
    auto body = ReadBackupBody(fs, repair_from, ref);
    if (!body) {
      out.unrepaired.push_back(HexEncode(ref.sha256) + ": " + body.error().message);
      continue;
    }
    if (auto st = store.RepairBlob(*body); !st) {
      out.unrepaired.push_back(HexEncode(ref.sha256) + ": " + st.error().message);
      continue;
    }
    ++out.repaired;
  }
  return out;
}

}  // namespace hato::backup
