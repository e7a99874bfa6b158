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
        ASSERT_TRUE(db.Exec("INSERT INTO accounts(address, domain_id, password_hash, created_at) "
                            "SELECT 'old@old.test', id, 'h', 1 FROM domains")
                        .ok());
      }
    }
    auto store = OpenEmbeddedStore(dir.path(), StoreOptions{});
    ASSERT_TRUE(store.ok()) << "from version " << from << ": " << store.error().message;
    if (from >= 1) {
      EXPECT_TRUE(*(*store)->IsLocalDomain("old.test"));
      // Schema 9: an account from before has no SCRAM verifier until its
      // password is set again, which stores both.
      auto old = (*store)->FindAccount("old@old.test");
      ASSERT_TRUE(old.ok()) << old.error().message;
      EXPECT_EQ(old->scram_sha256, "");
      ASSERT_TRUE((*store)->SetPassword("old@old.test", "h2", "SCRAM-SHA-256$v").ok());
      EXPECT_EQ((*store)->FindAccount("old@old.test")->scram_sha256, "SCRAM-SHA-256$v");
      ASSERT_TRUE((*store)->SetPassword("old@old.test", "h3").ok());
      EXPECT_EQ((*store)->FindAccount("old@old.test")->scram_sha256, "");
    }
    ASSERT_TRUE((*store)->AddDomain("new.test").ok());
    ASSERT_TRUE((*store)->AddAccount("u@new.test", "h", "SCRAM-SHA-256$x").ok());
    EXPECT_EQ((*store)->FindAccount("u@new.test")->scram_sha256, "SCRAM-SHA-256$x");
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
