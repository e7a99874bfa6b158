// hato: one binary for the whole mail service. See src/app/cli.cc.
#include <csignal>

#include "app/cli.h"

int main(int argc, char** argv) {
  // A peer that closes early must cost an EPIPE on that connection, not the process.
  std::signal(SIGPIPE, SIG_IGN);
  return hato::app::RunCli(argc, argv);
}
