// Documentation generated from the command line's own definitions (CLI11),
// so it cannot drift from `hato --help`: the man page hato(1) (`hato man`)
// and the bash completion script (`hato completion bash`). Hidden commands
// (test drivers, group "") are left out.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace hato::app {

// roff source of hato(1): every command with its description, arguments and options.
std::string ManPage(const CLI::App& app, const std::string& version);

// A bash completion script: commands, subcommands and options per command.
std::string BashCompletion(const CLI::App& app);

}  // namespace hato::app
