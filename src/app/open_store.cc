#include "app/open_store.h"

#include "store/postgres/pg_store.h"

namespace hato::app {

store::PostgresOptions PostgresFromConfig(const config::Config& cfg) {
  store::PostgresOptions pg;
  pg.conninfo = cfg.store_postgres;
  pg.pool_size = cfg.store_postgres_pool;
  pg.statement_timeout_ms = cfg.store_statement_timeout_ms;
  pg.connect_timeout_seconds = cfg.store_connect_timeout_seconds;
  return pg;
}

store::ShardingOptions ShardingFromConfig(const config::Config& cfg) {
  store::ShardingOptions s;
  for (const auto& [name, url] : cfg.store_shards) s.shards.push_back({name, url});
  s.placement = cfg.store_placement;
  s.closed = cfg.store_closed_shards;
  s.move_retention_seconds = int64_t{cfg.store_move_retention_hours} * 3600;
  return s;
}

Result<std::unique_ptr<store::Store>> OpenConfiguredStore(const config::Config& cfg,
                                                          const std::string& data_dir,
                                                          const store::StoreOptions& options) {
  if (cfg.store_backend == "postgres") {
    if (!cfg.store_shards.empty()) {
      return store::OpenShardedStore(PostgresFromConfig(cfg), ShardingFromConfig(cfg), options);
    }
    return store::OpenPostgresStore(PostgresFromConfig(cfg), options);
  }
  return store::OpenEmbeddedStore(data_dir, options);
}

}  // namespace hato::app
