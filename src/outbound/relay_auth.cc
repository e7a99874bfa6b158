#include "outbound/relay_auth.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hato::outbound {

Result<RelayCredentials> ParseRelayCredentials(std::string_view text) {
  std::string_view line = text.substr(0, text.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    return Err(ErrorKind::kInvalid, "relay credentials: expected one line \"username:password\"");
  }
  RelayCredentials c{std::string(line.substr(0, colon)), std::string(line.substr(colon + 1))};
  if (c.username.empty() || c.password.empty()) {
    return Err(ErrorKind::kInvalid, "relay credentials: the user name or the password is empty");
  }
  for (char ch : line) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) {
      return Err(ErrorKind::kInvalid, "relay credentials: control character in the file");
    }
  }
  return c;
}

Result<RelayCredentials> LoadRelayCredentials(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    return Err(ErrorKind::kNotFound, "relay credentials " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Err(ErrorKind::kInvalid, "relay credentials " + path + ": not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Err(ErrorKind::kInvalid, "relay credentials " + path + ": mode " + mode +
                                        " lets others read it; chmod 600 it");
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxRelayAuthFileBytes) {
    ::close(fd);
    return Err(ErrorKind::kInvalid, "relay credentials " + path + ": larger than 4 KiB");
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  ssize_t n = ::read(fd, text.data(), text.size());
  ::close(fd);
  if (n < 0)
    return Err(ErrorKind::kNotFound, "relay credentials " + path + ": " + std::strerror(errno));
  text.resize(static_cast<size_t>(n));
  auto c = ParseRelayCredentials(text);
  if (!c) return Err(c.error().kind, c.error().message + " (" + path + ")");
  return c;
}

}  // namespace hato::outbound
