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

Result<std::unique_ptr<store::Store>> OpenConfiguredStore(const config::Config& cfg,
                                                          const std::string& data_dir,
                                                          const store::StoreOptions& options);

// The [store] PostgreSQL settings and shards of a configuration.
store::PostgresOptions PostgresFromConfig(const config::Config& cfg);
store::ShardingOptions ShardingFromConfig(const config::Config& cfg);

}  // namespace hato::app
