// Opens the store a data dir's configuration names: the embedded one in the
// data dir, or PostgreSQL ([store] backend = "postgres", issue 15), sharded
// over several databases when [store.shards] lists more.
#pragma once

#include <memory>
#include <string>

#include "config/config.h"
#include "store/postgres/sharded.h"
#include "store/store.h"

namespace hato::app {

// `node_id` names the queue leases on PostgreSQL (PostgresOptions::node_id):
// `hato serve` passes NodeIdOf(data_dir); "" = a random one for this process.
Result<std::unique_ptr<store::Store>> OpenConfiguredStore(const config::Config& cfg,
                                                          const std::string& data_dir,
                                                          const store::StoreOptions& options,
                                                          const std::string& node_id = {});

// The node's stable id, kept in DATA/node.id (0600, created at the first
// call): a node restarted after a crash is the same node to the database, so
// it takes its own outbound leases back at once. A data dir copied to make
// another node must not keep the file (docs/operations.md).
Result<std::string> NodeIdOf(const std::string& data_dir);

// The [store] PostgreSQL settings and shards of a configuration.
store::PostgresOptions PostgresFromConfig(const config::Config& cfg);
store::ShardingOptions ShardingFromConfig(const config::Config& cfg);

}  // namespace hato::app
