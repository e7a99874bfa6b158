// `hato serve`: wires the store, the protocol servers and their listeners,
// and handles signals (SIGTERM/SIGINT: graceful stop; SIGHUP: reload config).
#pragma once

#include <string>

#include "config/config.h"

namespace hato::app {

struct ServeOptions {
  std::string data_dir;
  config::Listen overrides;  // non-empty fields replace the config's listeners
  int shutdown_grace_seconds = 10;
  int event_loops = -1;  // --event-loops; -1 = [server] event_loops
};

// Runs until stopped; returns the process exit code.
int Serve(const ServeOptions& options);

// Loads DATA/hato.toml. Errors name the file and the problem.
Result<config::Config> LoadConfig(const std::string& data_dir);

}  // namespace hato::app
