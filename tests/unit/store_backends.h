// One conformance suite, two backends (issue 15): fixtures parameterised by
// the store backend open the embedded store in a temporary data dir or a
// fresh database on a throw-away PostgreSQL cluster (pg_cluster.h). The
// PostgreSQL variants skip, loudly, only when PostgreSQL is not installed.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "pg_cluster.h"
#include "store/postgres/pg_store.h"
#include "store/postgres/sharded.h"
#include "store/store.h"
#include "test_util.h"

namespace hato::testing {

// kSharded: the sharded PostgreSQL store (store/postgres/sharded.h) over two
// databases, accounts placed by hash: every account operation is routed.
enum class Backend { kEmbedded, kPostgres, kSharded };

inline std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  switch (info.param) {
    case Backend::kEmbedded:
      return "Embedded";
    case Backend::kPostgres:
      return "Postgres";
    case Backend::kSharded:
      return "Sharded";
  }
  return "?";
}

// Where a test's store lives: a data dir, or a database of the shared cluster.
class TestStoreLocation {
 public:
  explicit TestStoreLocation(Backend backend) : backend_(backend) {}

  // Prepares the location; false when the backend is not available (skip).
  bool Prepare() {
    if (backend_ == Backend::kEmbedded) return true;
    PgCluster* cluster = SharedPgCluster();
    if (cluster == nullptr) return false;
    conninfo_ = cluster->CreateDatabase();
    if (backend_ == Backend::kSharded) shard_conninfo_ = cluster->CreateDatabase();
    return !conninfo_.empty();
  }

  Result<std::unique_ptr<store::Store>> Open(const store::StoreOptions& options) {
    if (backend_ == Backend::kEmbedded) return store::OpenEmbeddedStore(dir_.path(), options);
    store::PostgresOptions pg;
    pg.conninfo = conninfo_;
    pg.pool_size = 4;
    if (backend_ == Backend::kSharded) {
      store::ShardingOptions sharding;
      sharding.shards.push_back({"b", shard_conninfo_});
      sharding.placement = "hash";
      return store::OpenShardedStore(pg, sharding, options);
    }
    return store::OpenPostgresStore(pg, options);
  }

  bool postgres() const { return backend_ != Backend::kEmbedded; }
  bool sharded() const { return backend_ == Backend::kSharded; }
  const std::string& dir() const { return dir_.path(); }
  const std::string& conninfo() const { return conninfo_; }

 private:
  Backend backend_;
  TempDir dir_;
  std::string conninfo_;
  std::string shard_conninfo_;
};

#define HATO_STORE_BACKENDS(Fixture)                                                               \
  INSTANTIATE_TEST_SUITE_P(                                                                        \
      Backends, Fixture,                                                                           \
      ::testing::Values(::hato::testing::Backend::kEmbedded, ::hato::testing::Backend::kPostgres), \
      ::hato::testing::BackendName)

}  // namespace hato::testing
