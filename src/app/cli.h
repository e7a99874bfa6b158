// The `hato` command line: init, domain, user, serve, verify.
// Every command takes --data DIR (default ./var). Errors are one line on
// stderr naming the problem, with a non-zero exit status.
#pragma once

namespace hato::app {
int RunCli(int argc, char** argv);
}
