// `hato serve`: wires the store, the protocol servers and their listeners,
// and handles signals (SIGTERM/SIGINT: graceful stop; SIGHUP: reload config).
#pragma once

#include <optional>
#include <string>

#include "config/config.h"

namespace hato::app {

// The listeners given on the command line: a given value replaces the
// config's, and an empty one turns that listener off (as "" does in hato.toml).
struct ListenOverrides {
  std::optional<std::string> smtp, submission, submissions, imap, imaps, managesieve, pop3, pop3s,
      http, https;
};

struct ServeOptions {
  std::string data_dir;
  ListenOverrides overrides;
  int shutdown_grace_seconds = 10;
  int event_loops = -1;  // --event-loops; -1 = [server] event_loops
};

// Runs until stopped; returns the process exit code.
int Serve(const ServeOptions& options);

// Loads DATA/hato.toml. Errors name the file and the problem.
Result<config::Config> LoadConfig(const std::string& data_dir);

}  // namespace hato::app
