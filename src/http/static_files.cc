#include "http/static_files.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <memory>

#include "base/digest.h"
#include "base/strings.h"
#include "io/await.h"
#include "io/fs.h"

namespace hato::http {
namespace {

namespace fs = std::filesystem;

struct FileReply {
  int status = 404;
  std::string body;
  std::string etag;
  std::string encoding;  // "" | "br" | "gzip"
  std::string type;
};

// Resolves `rel` below `root` (canonical) and reads the best variant.
FileReply ReadBest(const std::string& root, const std::string& rel, bool br, bool gz) {
  FileReply r;
  std::error_code ec;
  fs::path p = fs::path(root) / rel;
  if (rel.empty() || fs::is_directory(p, ec)) p /= "index.html";
  fs::path real = fs::canonical(p, ec);
  if (ec) return r;
  std::string rs = real.string();
  if (rs.size() <= root.size() || rs.compare(0, root.size(), root) != 0 || rs[root.size()] != '/')
    return r;  // outside the served directory (a symlink out)
  if (!fs::is_regular_file(real, ec)) return r;
  r.type = std::string(ContentTypeFor(rs));
  auto try_variant = [&](const std::string& suffix, const char* encoding) -> bool {
    std::error_code e;
    fs::path v = fs::path(rs + suffix);
    fs::path vreal = fs::canonical(v, e);
    if (e || !fs::is_regular_file(vreal, e)) return false;
    std::string vs = vreal.string();
    if (vs.compare(0, root.size(), root) != 0) return false;
    auto size = fs::file_size(vreal, e);
    if (e || size > kMaxStaticFileBytes) return false;
    auto data = io::FileSystem::Default()->ReadFile(vs);
    if (!data) return false;
    r.body = std::move(*data);
    r.encoding = encoding;
    return true;
  };
  bool found = (br && try_variant(".br", "br")) || (gz && try_variant(".gz", "gzip"));
  if (!found) {
    auto size = fs::file_size(real, ec);
    if (ec) return r;
    if (size > kMaxStaticFileBytes) {
      spdlog::warn("http: {} is larger than {} bytes; not served", rs, kMaxStaticFileBytes);
      return r;
    }
    auto data = io::FileSystem::Default()->ReadFile(rs);
    if (!data) return r;
    r.body = std::move(*data);
  }
  r.etag = "\"" + HexEncode(Sha256(r.body)).substr(0, 32) +
           (r.encoding.empty() ? "" : "-" + r.encoding) + "\"";
  r.status = 200;
  return r;
}

}  // namespace

Handler StaticFiles(std::string root, asio::thread_pool* blocking, std::string cache_control) {
  std::error_code ec;
  fs::path canon = fs::weakly_canonical(fs::path(root), ec);
  auto base = std::make_shared<const std::string>(ec ? root : canon.string());
  return [base, blocking, cache_control](Request& req) -> awaitable<Response> {
    std::optional<std::string> rel = SafeRelativePath(req.rest);
    if (!rel) co_return Response::Text(404, "not found\n");
    std::string ae(req.Get("accept-encoding").value_or(""));
    bool br = AcceptsEncoding(ae, "br"), gz = AcceptsEncoding(ae, "gzip");
    std::string root = *base, path = *rel;
    auto read = [root, path, br, gz]() { return ReadBest(root, path, br, gz); };
    FileReply f;
    if (blocking) {
      f = co_await io::Offload(*blocking, std::move(read));
    } else {
      f = read();
    }
    if (f.status != 200) co_return Response::Text(404, "not found\n");
    Response r;
    r.Set("ETag", f.etag);
    r.Set("Vary", "Accept-Encoding");
    if (!cache_control.empty()) r.Set("Cache-Control", cache_control);
    if (auto inm = req.Get("if-none-match"); inm && EtagMatches(*inm, f.etag)) {
      r.status = 304;  // RFC 9110 section 13.1.2
      co_return r;
    }
    r.Set("Content-Type", f.type);
    if (!f.encoding.empty()) r.Set("Content-Encoding", f.encoding);
    r.body = std::move(f.body);
    co_return r;
  };
}

}  // namespace hato::http
