// The shard commands of the `hato` CLI (issue 15, store/postgres/sharded.h):
//   hato account shards              each shard and how many accounts it holds
//   hato account where ADDR          the shard of an account (and a move in progress)
//   hato account move ADDR --to S    move an account's mail to shard S, online
//   hato account cleanup             delete source copies of moves past
//                                    store.move_retention_hours now
#pragma once

#include <memory>
#include <string>

namespace CLI {
class App;
}

namespace hato::app {

class ShardCli {
 public:
  ShardCli(CLI::App& app, std::string& data);
  ~ShardCli();
  // After parsing: the exit status of the parsed command, or -1 when none of these.
  int Run();

 private:
  struct Opts;
  std::unique_ptr<Opts> o_;
  std::string& data_;
};

}  // namespace hato::app
