// Throw-away PostgreSQL 15 clusters for the store tests (issue 15): initdb and
// pg_ctl from Debian's postgresql-15 in a temporary folder, listening on a
// free loopback port. PostgreSQL refuses to run as root, so as root the
// cluster runs as the system user hato-pgtest (scripts/install-deps.sh).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "store/postgres/conn.h"

namespace hato::testing {

inline constexpr const char* kPgBin = "/usr/lib/postgresql/15/bin";
inline constexpr const char* kPgUser = "hato-pgtest";

inline bool PostgresInstalled() {
  return std::filesystem::exists(std::string(kPgBin) + "/initdb") &&
         (geteuid() != 0 || getpwnam(kPgUser) != nullptr);
}

inline int FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

class PgCluster {
 public:
  PgCluster() = default;
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;
  ~PgCluster() {
    Stop();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Creates and starts the cluster; false (with the reason on stderr) on failure.
  bool Start() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "hato-pg-XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
    data_ = dir_ + "/data";
    port_ = FreeLoopbackPort();
    if (geteuid() == 0) {
      passwd* pw = getpwnam(kPgUser);
      if (pw == nullptr || ::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) return false;
    }
    // initdb once per machine (a template, made under a lock), then a copy per cluster.
    std::string tmpl_dir = (std::filesystem::temp_directory_path() /
                            ("hato-pgtest-template-" + std::to_string(geteuid())))
                               .string();
    std::string lock = tmpl_dir + ".lock";
    if (!Run("flock " + lock + " sh -c 'test -f " + tmpl_dir + "/PG_VERSION || (rm -rf " +
             tmpl_dir + ".tmp && " + kPgBin + "/initdb -D " + tmpl_dir +
             ".tmp -U postgres -A trust -N -E UTF8 --locale=C > /dev/null && mv " + tmpl_dir +
             ".tmp " + tmpl_dir + ")'") ||
        !Run("cp -a " + tmpl_dir + " " + data_)) {
      std::cerr << "initdb failed (template " << tmpl_dir << ")\n";
      return false;
    }
    return StartServer();
  }

  bool StartServer() {
    // fsync off: a test cluster only has to survive process kills, not power loss.
    std::string opts = "-p " + std::to_string(port_) + " -k " + dir_ +
                       " -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300";
    bool ok = Run(std::string(kPgBin) + "/pg_ctl -D " + data_ + " -l " + dir_ +
                  "/server.log -w -t 60 -o '" + opts + "' start > /dev/null 2>&1");
    if (!ok) std::cerr << "pg_ctl start failed; see " << dir_ << "/server.log\n";
    running_ = ok;
    return ok;
  }

  // Stops the server at once (connections are cut, as in a crash of the database).
  void Stop() {
    if (!running_) return;
    Run(std::string(kPgBin) + "/pg_ctl -D " + data_ + " -m immediate -w stop > /dev/null 2>&1");
    running_ = false;
  }

  // A new empty database; returns its connection string.
  std::string CreateDatabase() {
    // (appended, not "t" + to_string(...): GCC 12's -Wrestrict misfires on that when inlined)
    std::string name = "t";
    name += std::to_string(++databases_);
    store::pg::Conn admin(store::pg::ConnOptions{Conninfo("postgres")});
    if (auto st = admin.Connect(); !st) {
      std::cerr << "cannot connect to the test cluster: " << st.error().message << "\n";
      return "";
    }
    if (auto r = admin.Exec("CREATE DATABASE " + name); !r) {
      std::cerr << "CREATE DATABASE failed: " << r.error().message << "\n";
      return "";
    }
    return Conninfo(name);
  }

  std::string Conninfo(const std::string& db) const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=" + db;
  }
  int port() const { return port_; }
  // The server's process id (first line of postmaster.pid), 0 when not running.
  int PostmasterPid() const {
    std::ifstream f(data_ + "/postmaster.pid");
    int pid = 0;
    f >> pid;
    return pid;
  }

 private:
  // Runs a shell command line as the cluster's user.
  static bool Run(const std::string& cmd) {
    std::string full = geteuid() == 0
                           ? std::string("runuser -u ") + kPgUser + " -- sh -c " + ShellQuote(cmd)
                           : cmd;
    return std::system(full.c_str()) == 0;
  }

  static std::string ShellQuote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
      if (c == '\'') {
        out += "'\\''";
      } else {
        out += c;
      }
    }
    return out + "'";
  }

  std::string dir_, data_;
  int port_ = 0;
  bool running_ = false;
  int databases_ = 0;
};

// One cluster shared by the tests of a binary, started on first use; null
// when PostgreSQL is not installed or does not start.
inline PgCluster* SharedPgCluster() {
  static std::unique_ptr<PgCluster> cluster = [] {
    if (!PostgresInstalled()) return std::unique_ptr<PgCluster>();
    auto c = std::make_unique<PgCluster>();
    if (!c->Start()) return std::unique_ptr<PgCluster>();
    return c;
  }();
  return cluster.get();
}

inline const char* kNoPostgres =
    "PostgreSQL 15 IS NOT INSTALLED (or hato-pgtest is missing): the PostgreSQL store tests "
    "did NOT run. Install it with scripts/install-deps.sh";

}  // namespace hato::testing
