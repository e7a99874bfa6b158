#include "app/open_store.h"

#include <openssl/rand.h>

#include "imap/proto/object_ids.h"
#include "imap/proto/sort_record.h"
#include "io/fs.h"
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
                                                          const store::StoreOptions& given,
                                                          const std::string& node_id) {
  store::StoreOptions options = given;
  // Every body stored by the server or the CLI (import, restore) keeps its
  // SORT/THREAD keys record (issue 16).
  if (!options.sort_keys) options.sort_keys = imap::SortRecordOf;
  // And its JMAP threadId (RFC 8621 section 3), counted per mailbox.
  if (!options.thread_id) options.thread_id = imap::ThreadObjectId;
  if (cfg.store_backend == "postgres") {
    store::PostgresOptions pg = PostgresFromConfig(cfg);
    pg.node_id = node_id;
    if (!cfg.store_shards.empty()) {
      return store::OpenShardedStore(pg, ShardingFromConfig(cfg), options);
    }
    return store::OpenPostgresStore(pg, options);
  }
  return store::OpenEmbeddedStore(data_dir, options);
}

Result<std::string> NodeIdOf(const std::string& data_dir) {
  // 16 random bytes in hex: unique among nodes without any coordination.
  constexpr size_t kNodeIdBytes = 16;
  const std::string path = data_dir + "/node.id";
  io::FileSystem* fs = io::FileSystem::Default();
  auto is_id = [](std::string_view s) {
    return s.size() == 2 * kNodeIdBytes &&
           s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
  };
  if (fs->Exists(path)) {
    auto text = fs->ReadRegularFile(path);
    if (!text) return text.error();
    std::string id = *text;
    while (!id.empty() && (id.back() == '\n' || id.back() == '\r')) id.pop_back();
    if (!is_id(id)) return Err(ErrorKind::kInvalid, path + ": not a node id (32 hex digits)");
    return id;
  }
  unsigned char raw[kNodeIdBytes];
  if (RAND_bytes(raw, sizeof raw) != 1) return Err(ErrorKind::kInternal, "no random bytes");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char b : raw) {
    id += kHex[b >> 4];
    id += kHex[b & 15];
  }
  if (auto st = fs->WriteFileAtomic(path, id + "\n"); !st) return st.error();
  return id;
}

}  // namespace hato::app
