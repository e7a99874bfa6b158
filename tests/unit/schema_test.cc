// Migrations are tested from every earlier schema version to the latest.
#include "store/sqlite/schema.h"

#include <gtest/gtest.h>

#include "store/store.h"
#include "test_util.h"

namespace hato::store::sqlite {
namespace {

TEST(Schema, MigratesFromEveryEarlierVersion) {
  for (int from = 0; from <= LatestSchemaVersion(); ++from) {
    testing::TempDir dir;
    {
      Db db;
      ASSERT_TRUE(db.Open(dir.path() + "/meta.db", false).ok());
      ASSERT_TRUE(Migrate(db, from).ok());
      EXPECT_EQ(*SchemaVersion(db), from);
      if (from >= 1) {
        // Data written under the old schema must survive the migration.
        ASSERT_TRUE(db.Exec("INSERT INTO domains(name, created_at) VALUES('old.test', 1)").ok());
      }
    }
    auto store = OpenEmbeddedStore(dir.path(), StoreOptions{});
    ASSERT_TRUE(store.ok()) << "from version " << from << ": " << store.error().message;
    if (from >= 1) {
      EXPECT_TRUE(*(*store)->IsLocalDomain("old.test"));
    }
    ASSERT_TRUE((*store)->AddDomain("new.test").ok());
    ASSERT_TRUE((*store)->AddAccount("u@new.test", "h").ok());
    ASSERT_TRUE((*store)->AddAlias("alias@new.test", "u@new.test").ok());
    EXPECT_EQ((*store)->ResolveRecipient("alias@new.test")->address, "u@new.test");
    store->reset();
    Db db;
    ASSERT_TRUE(db.Open(dir.path() + "/meta.db", false).ok());
    EXPECT_EQ(*SchemaVersion(db), LatestSchemaVersion());
  }
}

TEST(Schema, RefusesNewerDatabase) {
  testing::TempDir dir;
  Db db;
  ASSERT_TRUE(db.Open(dir.path() + "/meta.db", false).ok());
  ASSERT_TRUE(db.Exec("PRAGMA user_version = 999").ok());
  auto st = Migrate(db);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("newer"), std::string::npos);
}

}  // namespace
}  // namespace hato::store::sqlite
