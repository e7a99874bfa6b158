#include "app/status_cli.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <ctime>
#include <iostream>

#include "app/serve.h"
#include "base/strings.h"
#include "io/fs.h"
#include "web/health.h"

namespace hato::app {

struct StatusCli::Opts {
  CLI::App* note_add = nullptr;
  CLI::App* note_list = nullptr;
  CLI::App* note_clear = nullptr;
  CLI::App* publish = nullptr;
  std::vector<std::string> words;
  std::string dir, from;
};

namespace {

constexpr int kExitError = 1;
constexpr int kFetchTimeoutSeconds = 3;
constexpr size_t kMaxPageBytes = 1 << 20;

int Fail(const std::string& msg) {
  std::cerr << "hato: " << msg << "\n";
  return kExitError;
}

std::string NotesPath(const std::string& data) { return data + "/" + kStatusNotesFile; }

std::vector<web::Note> LoadNotes(const std::string& data) {
  auto text = io::FileSystem::Default()->ReadFile(NotesPath(data));
  return text ? web::ParseNotes(*text) : std::vector<web::Note>{};
}

// GET http://HOST:PORT/path (loopback or a literal address) with a deadline;
// the body of a 200 answer, or an error. Content-Length, chunked and
// close-delimited bodies.
Result<std::string> HttpGet(const std::string& hostport, const std::string& path,
                            const std::string& accept_language) {
  size_t colon = hostport.rfind(':');
  if (colon == std::string::npos) return Err(ErrorKind::kInvalid, "expected host:port");
  std::string host = hostport.substr(0, colon);
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  if (host == "[::]" || host == "::") host = "::1";
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  int port = std::atoi(hostport.c_str() + colon + 1);
  sockaddr_storage addr{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof *v4;
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof *v6;
  } else {
    return Err(ErrorKind::kInvalid, "not an IP address: " + host);
  }
  int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Err(ErrorKind::kTemporary, "socket failed");
  timeval tv{kFetchTimeoutSeconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    ::close(fd);
    return Err(ErrorKind::kTemporary, "cannot connect to " + hostport);
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + hostport +
                    "\r\nAccept-Language: " + accept_language + "\r\nConnection: close\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return Err(ErrorKind::kTemporary, "send failed");
  }
  std::string resp;
  char buf[16384];
  while (resp.size() < kMaxPageBytes) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    resp.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  size_t head_end = resp.find("\r\n\r\n");
  if (head_end == std::string::npos || resp.compare(0, 9, "HTTP/1.1 ") != 0)
    return Err(ErrorKind::kTemporary, "no HTTP answer from " + hostport);
  if (resp.compare(9, 3, "200") != 0)
    return Err(ErrorKind::kTemporary, "HTTP " + resp.substr(9, 3) + " from " + hostport + path);
  std::string head = AsciiLower(resp.substr(0, head_end));
  std::string body = resp.substr(head_end + 4);
  if (head.find("\r\ntransfer-encoding: chunked") != std::string::npos) {
    std::string out;
    size_t pos = 0;
    while (pos < body.size()) {
      size_t eol = body.find("\r\n", pos);
      if (eol == std::string::npos) break;
      size_t n = std::strtoul(body.substr(pos, eol - pos).c_str(), nullptr, 16);
      if (n == 0 || eol + 2 + n > body.size()) break;
      out += body.substr(eol + 2, n);
      pos = eol + 2 + n + 2;
    }
    body = std::move(out);
  } else if (size_t cl = head.find("\r\ncontent-length:"); cl != std::string::npos) {
    size_t n = std::strtoul(head.c_str() + cl + 17, nullptr, 10);
    if (body.size() < n) return Err(ErrorKind::kTemporary, "short answer from " + hostport);
    body.resize(n);
  }
  return body;
}

}  // namespace

StatusCli::StatusCli(CLI::App& app, std::string& data) : o_(std::make_unique<Opts>()), data_(data) {
  auto* status = app.add_subcommand("status", "the status page: admin notes, static copies");
  status->require_subcommand(1);
  auto* note = status->add_subcommand("note", "notes shown on the status page");
  note->require_subcommand(1);
  o_->note_add = note->add_subcommand("add", "post a note (shown newest first)");
  o_->note_add->add_option("text", o_->words, "the note")->required();
  o_->note_list = note->add_subcommand("list", "list the notes");
  o_->note_clear = note->add_subcommand("clear", "remove every note");
  o_->publish = status->add_subcommand(
      "publish", "write the status page as static files (index.html, status.json) into DIR");
  o_->publish->add_option("dir", o_->dir, "output folder")->required();
  o_->publish->add_option(
      "--from", o_->from,
      "host:port of the running server's HTTP listener (default [listen] http)");
  for (auto* c : {o_->note_add, o_->note_list, o_->note_clear, o_->publish})
    c->add_option("--data", data, "data directory")->capture_default_str();
}

StatusCli::~StatusCli() = default;

int StatusCli::Run() {
  auto* fs = io::FileSystem::Default();
  if (o_->note_add->parsed() || o_->note_clear->parsed()) {
    if (!fs->Exists(data_)) return Fail("no data directory at " + data_);
    std::vector<web::Note> notes;
    if (o_->note_add->parsed()) {
      notes = LoadNotes(data_);
      std::string text;
      for (const auto& w : o_->words) text += (text.empty() ? "" : " ") + w;
      if (text.size() > web::kMaxNoteBytes)
        return Fail("a note has at most " + std::to_string(web::kMaxNoteBytes) + " bytes");
      if (!IsValidUtf8(text)) return Fail("the note is not UTF-8");
      notes.push_back(web::Note{static_cast<int64_t>(std::time(nullptr)), text});
      while (notes.size() > web::kMaxNotes) notes.erase(notes.begin());
    }
    auto st = fs->WriteFileAtomic(NotesPath(data_), web::FormatNotes(notes));
    if (!st) return Fail(st.error().message);
    std::cout << (o_->note_add->parsed() ? "note posted" : "notes cleared")
              << "; the status page shows it within a few seconds\n";
    return 0;
  }
  if (o_->note_list->parsed()) {
    for (const auto& n : LoadNotes(data_)) std::cout << n.at << "\t" << n.text << "\n";
    return 0;
  }
  if (o_->publish->parsed()) {
    std::string from = o_->from;
    std::vector<std::string> protocols;
    if (auto cfg = LoadConfig(data_); cfg) {
      if (from.empty()) from = cfg->listen.http;
      for (auto [name, listen] : {std::pair{"smtp", cfg->listen.smtp},
                                  {"submission", cfg->listen.submission},
                                  {"submissions", cfg->listen.submissions},
                                  {"imap", cfg->listen.imap},
                                  {"imaps", cfg->listen.imaps},
                                  {"pop3", cfg->listen.pop3},
                                  {"http", cfg->listen.http}}) {
        if (!listen.empty()) protocols.push_back(name);
      }
    }
    if (auto st = fs->CreateDirs(o_->dir); !st) return Fail(st.error().message);
    Result<std::string> en = Err(ErrorKind::kNotFound, "no [listen] http and no --from");
    Result<std::string> ja = en, json = en;
    if (!from.empty()) {
      en = HttpGet(from, "/status", "en");
      if (en) ja = HttpGet(from, "/status", "ja");
      if (ja) json = HttpGet(from, "/status.json", "en");
    }
    bool live = en && ja && json;
    if (!live) {
      const Error& e = !en ? en.error() : !ja ? ja.error() : json.error();
      std::cerr << "hato: the server does not answer (" << e.message
                << "); publishing a page that says so\n";
      auto snap = web::UnreachableSnapshot(std::time(nullptr), LoadNotes(data_), protocols);
      en = web::RenderStatusHtml(snap, web::Lang::kEn);
      ja = web::RenderStatusHtml(snap, web::Lang::kJa);
      json = web::RenderStatusJson(snap);
    }
    for (auto [name, body] :
         {std::pair{"index.html", &*en}, {"index.ja.html", &*ja}, {"status.json", &*json}}) {
      auto st = fs->WriteFileAtomic(o_->dir + "/" + name, *body);
      if (!st) return Fail(st.error().message);
    }
    std::cout << "status page written to " << o_->dir << " (" << (live ? "live" : "server down")
              << ")\n";
    return 0;
  }
  return -1;
}

}  // namespace hato::app
