#include "app/open_store.h"

#include "imap/proto/sort_record.h"
#include "store/postgres/pg_store.h"

namespace hato::app {

Result<std::unique_ptr<store::Store>> OpenConfiguredStore(const config::Config& cfg,
                                                          const std::string& data_dir,
                                                          const store::StoreOptions& given) {
  store::StoreOptions options = given;
  // Every body stored by the server or the CLI (import, restore) keeps its
  // SORT/THREAD keys record (issue 16).
  if (!options.sort_keys) options.sort_keys = imap::SortRecordOf;
  if (cfg.store_backend == "postgres") {
    store::PostgresOptions pg;
    pg.conninfo = cfg.store_postgres;
    pg.pool_size = cfg.store_postgres_pool;
    pg.statement_timeout_ms = cfg.store_statement_timeout_ms;
    pg.connect_timeout_seconds = cfg.store_connect_timeout_seconds;
    return store::OpenPostgresStore(pg, options);
  }
  return store::OpenEmbeddedStore(data_dir, options);
}

}  // namespace hato::app
