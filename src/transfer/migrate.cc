#include "transfer/migrate.h"

#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <map>

#include "base/progress.h"
#include "base/strings.h"
#include "imap/proto/response.h"
#include "imap/proto/utf7.h"
#include "mime/message.h"
#include "store/mailbox_name.h"
#include "store/restore_window.h"
#include "transfer/imap_response.h"

namespace hato::transfer {
namespace {

constexpr int kIoTimeoutSeconds = 120;
constexpr size_t kWindow = 256;

// A blocking connection to the source server, plain or TLS.
class Connection {
 public:
  ~Connection() {
    if (ssl_) SSL_free(ssl_);
    if (ctx_) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
  }

  Status Open(const MigrateSource& src) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    std::string port = std::to_string(src.port);
    if (int rc = getaddrinfo(src.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
      return Err(ErrorKind::kTemporary, "resolve " + src.host + ": " + gai_strerror(rc));
    }
    for (addrinfo* a = res; a && fd_ < 0; a = a->ai_next) {
      int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) continue;
      timeval tv{kIoTimeoutSeconds, 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
      if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
        fd_ = fd;
      } else {
        ::close(fd);
      }
    }
    freeaddrinfo(res);
    if (fd_ < 0) return Err(ErrorKind::kTemporary, "cannot connect to " + src.host + ":" + port);
    if (!src.tls) return Ok();
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
    if (src.verify_tls) {
      SSL_CTX_set_default_verify_paths(ctx_);
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    }
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    SSL_set_tlsext_host_name(ssl_, src.host.c_str());
    if (src.verify_tls) SSL_set1_host(ssl_, src.host.c_str());
    if (SSL_connect(ssl_) != 1) {
      char err[256];
      ERR_error_string_n(ERR_get_error(), err, sizeof(err));
      return Err(ErrorKind::kTemporary, "TLS with " + src.host + " failed: " + err);
    }
    return Ok();
  }

  Status Write(std::string_view data) {
    while (!data.empty()) {
      long n = ssl_ ? SSL_write(ssl_, data.data(), static_cast<int>(data.size()))
                    : ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return Err(ErrorKind::kTemporary, "write to source server failed");
      data.remove_prefix(static_cast<size_t>(n));
    }
    return Ok();
  }

  // The next response (untagged or tagged).
  Result<ImapResponse> Read() {
    while (true) {
      auto r = reader_.Next();
      if (!r) return r.error();
      if (*r) return std::move(**r);
      char buf[65536];
      long n = ssl_ ? SSL_read(ssl_, buf, sizeof(buf)) : ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return Err(ErrorKind::kTemporary, "source server closed the connection");
      reader_.Feed(std::string_view(buf, static_cast<size_t>(n)));
    }
  }

  // Sends a tagged command; calls on_untagged for each untagged response;
  // kTemporary unless the tagged response is OK.
  template <typename F>
  Status Command(const std::string& cmd, F&& on_untagged, const std::string& shown = "") {
    std::string tag = "h";
    tag.append(std::to_string(++tags_));
    std::string line;
    line.reserve(tag.size() + cmd.size() + 3);
    line.append(tag).append(1, ' ').append(cmd).append("\r\n");
    if (auto st = Write(line); !st) return st;
    while (true) {
      auto r = Read();
      if (!r) return r.error();
      std::string_view text = r->text;
      if (text.size() > tag.size() && text.substr(0, tag.size()) == tag &&
          text[tag.size()] == ' ') {
        std::string_view rest = text.substr(tag.size() + 1);
        if (StartsWithIgnoreCase(rest, "OK")) return Ok();
        std::string what = shown.empty() ? cmd : shown;
        what += ": source server said: ";
        what.append(rest);
        return Err(ErrorKind::kTemporary, std::move(what));
      }
      if (auto st = on_untagged(*r); !st) return st;
    }
  }

 private:
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  ImapResponseReader reader_;
  int tags_ = 0;
};

uint32_t SystemFlags(const std::vector<std::string>& flags, std::string& keywords) {
  uint32_t out = 0;
  for (const auto& f : flags) {
    if (EqualsIgnoreCase(f, "\\Seen")) {
      out |= store::kSeen;
    } else if (EqualsIgnoreCase(f, "\\Answered")) {
      out |= store::kAnswered;
    } else if (EqualsIgnoreCase(f, "\\Flagged")) {
      out |= store::kFlagged;
    } else if (EqualsIgnoreCase(f, "\\Deleted")) {
      out |= store::kDeleted;
    } else if (EqualsIgnoreCase(f, "\\Draft")) {
      out |= store::kDraft;
    } else if (!f.empty() && f[0] != '\\') {
      if (!keywords.empty()) keywords += ' ';
      keywords += f;
    }
  }
  return out;
}

// The state file: "<uidvalidity> <last uid> <folder>" per line.
using State = std::map<std::string, std::pair<uint32_t, uint32_t>>;

State LoadState(io::FileSystem* fs, const std::string& path) {
  State st;
  auto text = fs->ReadFile(path);
  if (!text) return st;
  std::string_view rest = *text;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    size_t a = line.find(' ');
    size_t b = a == std::string_view::npos ? a : line.find(' ', a + 1);
    if (b == std::string_view::npos) continue;
    auto v = ParseUint(line.substr(0, a));
    auto u = ParseUint(line.substr(a + 1, b - a - 1));
    if (v && u) {
      st[std::string(line.substr(b + 1))] = {static_cast<uint32_t>(*v), static_cast<uint32_t>(*u)};
    }
  }
  return st;
}

Status SaveState(io::FileSystem* fs, const std::string& path, const State& st) {
  std::string out;
  for (const auto& [folder, vu] : st) {
    out += std::to_string(vu.first) + " " + std::to_string(vu.second) + " " + folder + "\n";
  }
  return fs->WriteFileAtomic(path, out);
}

}  // namespace

Result<MigrateSource> ParseMigrateUrl(const std::string& url) {
  MigrateSource src;
  std::string rest;
  if (url.rfind("imaps://", 0) == 0) {
    rest = url.substr(8);
  } else if (url.rfind("imap://", 0) == 0) {
    src.tls = false;
    src.port = 143;
    rest = url.substr(7);
  } else {
    return Err(ErrorKind::kInvalid, "--from wants imaps://user@host[:port] (or imap://)");
  }
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  size_t at = rest.rfind('@');
  if (at == std::string::npos || at == 0) {
    return Err(ErrorKind::kInvalid, "--from needs a user: imaps://user@host[:port]");
  }
  std::string user = rest.substr(0, at);
  for (size_t i = 0; i < user.size(); ++i) {
    if (user[i] == '%' && i + 2 < user.size()) {
      src.user += static_cast<char>(std::stoi(user.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      src.user += user[i];
    }
  }
  std::string hostport = rest.substr(at + 1);
  size_t colon = hostport.rfind(':');
  if (colon != std::string::npos && hostport.find(']') == std::string::npos) {
    auto p = ParseUint(hostport.substr(colon + 1));
    if (!p || *p == 0 || *p > 65535) return Err(ErrorKind::kInvalid, "bad port in " + url);
    src.port = static_cast<int>(*p);
    hostport = hostport.substr(0, colon);
  }
  if (hostport.empty()) return Err(ErrorKind::kInvalid, "no host in " + url);
  src.host = hostport;
  return src;
}

Result<MigrateResult> Migrate(store::Store& store, int64_t account_id, const std::string& address,
                              const MigrateSource& source, const std::string& state_dir,
                              io::FileSystem* fs_in) {
  io::FileSystem* fs = fs_in ? fs_in : io::FileSystem::Default();
  if (auto st = fs->CreateDirs(state_dir); !st) return st.error();
  std::string name = address + "_" + source.user + "@" + source.host + "_" +
                     std::to_string(source.port) + ".state";
  for (char& c : name) {
    if (c == '/' || static_cast<unsigned char>(c) < 0x20) c = '_';
  }
  std::string state_path = state_dir + "/" + name;
  State state = LoadState(fs, state_path);

  Connection conn;
  if (auto st = conn.Open(source); !st) return st.error();
  auto greeting = conn.Read();
  if (!greeting) return greeting.error();
  if (!StartsWithIgnoreCase(greeting->text, "* OK")) {
    return Err(ErrorKind::kTemporary, "source server greeting: " + greeting->text);
  }
  auto none = [](const ImapResponse&) { return Ok(); };
  auto qu = Quote(source.user);
  auto qp = Quote(source.password);
  if (!qu || !qp) return Err(ErrorKind::kInvalid, "user or password holds CR/LF");
  if (auto st = conn.Command("LOGIN " + *qu + " " + *qp, none, "LOGIN " + *qu); !st) {
    return st.error();
  }

  std::vector<ListEntry> folders;
  auto st = conn.Command("LIST \"\" \"*\"", [&](const ImapResponse& r) {
    if (auto e = ParseListResponse(r); e && !e->noselect) folders.push_back(std::move(*e));
    return Ok();
  });
  if (!st) return st.error();

  MigrateResult out;
  Progress progress("migrate " + address, 0);
  store::RestoreWindow window(store, kWindow, out);
  for (const auto& f : folders) {
    // The local name: UTF-8, "/" as the hierarchy separator.
    std::string local;
    size_t start = 0;
    while (start <= f.name.size()) {
      size_t end = f.separator ? f.name.find(f.separator, start) : std::string::npos;
      if (end == std::string::npos) end = f.name.size();
      std::string part = f.name.substr(start, end - start);
      auto dec = imap::DecodeMailboxUtf7(part);
      if (!local.empty()) local += store::kHierarchySeparator;
      local += dec ? *dec : part;
      start = end + 1;
    }
    auto canonical = store::CanonicalMailboxName(local);
    if (canonical) {
      // The same rule as IMAP CREATE (issue 11): reported once per folder.
      if (auto st = store::CheckNewMailboxName(*canonical); !st) canonical = st.error();
    }
    if (!canonical) {
      out.problems.push_back("folder " + LogSafe(f.name) + ": " + canonical.error().message);
      continue;
    }
    auto quoted = Quote(f.name);
    if (!quoted) continue;
    uint32_t uidvalidity = 0;
    uint64_t exists = 0;
    st = conn.Command("EXAMINE " + *quoted, [&](const ImapResponse& r) {
      size_t p = r.text.find("[UIDVALIDITY ");
      if (p != std::string::npos) {
        uidvalidity = static_cast<uint32_t>(std::strtoul(r.text.c_str() + p + 13, nullptr, 10));
      }
      if (r.text.size() > 9 && r.text.substr(r.text.size() - 7) == " EXISTS") {
        exists = std::strtoull(r.text.c_str() + 2, nullptr, 10);
      }
      return Ok();
    });
    if (!st) {
      out.problems.push_back("folder " + *canonical + ": " + st.error().message);
      continue;
    }
    ++out.folders;
    auto ensure = store::Wait<void>([&](store::Done<void> done) {
      store.CreateMailbox(account_id, *canonical, "", std::move(done));
    });
    if (!ensure && ensure.error().kind != ErrorKind::kExists) {
      out.problems.push_back("folder " + *canonical + ": " + ensure.error().message);
      continue;
    }
    if (ensure) {  // a folder the migration made is subscribed, as it was to the client
      (void)store::Wait<void>([&](store::Done<void> done) {
        store.SetSubscribed(account_id, *canonical, true, std::move(done));
      });
    }
    // Named references, not a structured binding: the lambda below uses last_uid.
    auto& entry = state[*canonical];
    auto& known_validity = entry.first;
    auto& last_uid = entry.second;
    if (known_validity != uidvalidity) last_uid = 0;  // a new mailbox there: look at all of it
    known_validity = uidvalidity;
    if (exists == 0) continue;
    uint32_t highest = last_uid;
    std::string cmd =
        "UID FETCH " + std::to_string(last_uid + 1) + ":* (UID FLAGS INTERNALDATE BODY.PEEK[])";
    st = conn.Command(cmd, [&](const ImapResponse& r) -> Status {
      auto item = ParseFetchResponse(r);
      if (!item || !item->body) return Ok();
      if (item->uid <= last_uid) return Ok();  // "n:*" always returns the last message
      ++out.fetched;
      highest = std::max(highest, item->uid);
      store::RestoreRequest req;
      req.account_id = account_id;
      req.mailbox = *canonical;
      req.flags = SystemFlags(item->flags, req.keywords);
      auto dt = imap::ParseDateTime(item->internal_date);
      req.internal_date = dt ? imap::ToUnixTime(*dt) : static_cast<int64_t>(std::time(nullptr));
      auto tree = mime::Parse(*item->body);
      req.mime = tree ? mime::Serialize(*tree) : std::string();
      req.content = std::move(*item->body);
      std::string where = "folder " + *canonical + " uid " + std::to_string(item->uid);
      window.Add(std::move(req), std::move(where));
      window.Locked([&](MigrateResult& o) { progress.Update(o.fetched, o.bytes); });
      return Ok();
    });
    window.Drain();
    if (!st) {
      out.problems.push_back("folder " + *canonical + ": " + st.error().message);
      continue;
    }
    // Resume point: only once everything up to it is stored.
    bool all_stored = true;
    {
      // Every write has its result (Drain above): the tally is final.
      for (const auto& p : out.problems) {
        if (p.rfind("folder " + *canonical + " ", 0) == 0) all_stored = false;
      }
    }
    if (all_stored) last_uid = highest;
    if (auto s = SaveState(fs, state_path, state); !s) return s.error();
  }
  (void)conn.Command("LOGOUT", none);
  progress.Finish();
  out.seconds = progress.Seconds();
  return out;
}

}  // namespace hato::transfer
