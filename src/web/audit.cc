#include "web/audit.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>

#include "base/strings.h"

namespace hato::web {

std::string AuditLine(const AuditEntry& e) {
  boost::json::object o;
  o["at"] = e.at;
  o["admin"] = e.admin;
  o["ip"] = e.ip;
  o["action"] = e.action;
  o["target"] = e.target;
  o["ok"] = e.ok;
  o["detail"] = e.detail;
  return boost::json::serialize(o) + "\n";
}

bool ParseAuditLine(std::string_view line, AuditEntry& out) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(line, ec);
  if (ec || !v.is_object()) return false;
  const auto& o = v.as_object();
  auto str = [&o](const char* k) {
    const auto* p = o.if_contains(k);
    return p && p->is_string() ? std::string(p->as_string()) : std::string();
  };
  const auto* at = o.if_contains("at");
  out.at = at && at->is_int64() ? at->as_int64() : 0;
  out.admin = str("admin");
  out.ip = str("ip");
  out.action = str("action");
  out.target = str("target");
  out.detail = str("detail");
  const auto* ok = o.if_contains("ok");
  out.ok = ok && ok->is_bool() && ok->as_bool();
  return !out.action.empty();
}

void AuditLog::Record(const AuditEntry& e) {
  std::string line = AuditLine(e);
  spdlog::info("audit: {} {} {} by {} from {}{}", e.action, LogSafe(e.target),
               e.ok ? "done" : "refused", e.admin, e.ip,
               e.detail.empty() ? "" : " (" + LogSafe(e.detail) + ")");
  std::lock_guard lock(mu_);
  int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    spdlog::error("audit: cannot open {}: {}", path_, std::strerror(errno));
    return;
  }
  ssize_t n = ::write(fd, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size()) || ::fdatasync(fd) != 0) {
    spdlog::error("audit: cannot write {}: {}", path_, std::strerror(errno));
  }
  ::close(fd);
}

std::vector<AuditEntry> AuditLog::Tail(size_t limit) const {
  std::vector<AuditEntry> out;
  std::string data;
  {
    std::lock_guard lock(mu_);
    int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return out;
    off_t size = ::lseek(fd, 0, SEEK_END);
    if (size < 0) {
      ::close(fd);
      return out;
    }
    off_t start =
        size > static_cast<off_t>(kAuditTailBytes) ? size - static_cast<off_t>(kAuditTailBytes) : 0;
    data.resize(static_cast<size_t>(size - start));
    ssize_t n = ::pread(fd, data.data(), data.size(), start);
    ::close(fd);
    data.resize(n > 0 ? static_cast<size_t>(n) : 0);
    if (start > 0) {  // the first line is cut
      size_t nl = data.find('\n');
      data.erase(0, nl == std::string::npos ? data.size() : nl + 1);
    }
  }
  size_t end = data.size();
  while (end > 0 && out.size() < limit) {
    size_t nl = data.rfind('\n', end - 1);
    size_t begin = nl == std::string::npos ? 0 : nl + 1;
    AuditEntry e;
    if (begin < end && ParseAuditLine(std::string_view(data).substr(begin, end - begin), e))
      out.push_back(std::move(e));
    if (nl == std::string::npos) break;
    end = nl;
  }
  return out;
}

}  // namespace hato::web
