// Address aliases (issue 5): the store's alias operations, how they resolve
// for delivery, and what happens to them when accounts and domains go.
#include <gtest/gtest.h>

#include "store/sqlite/db.h"
#include "store/sqlite/schema.h"
#include "store/store.h"
#include "store_backends.h"
#include "test_util.h"

namespace hato::store {
namespace {

class AliasTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    if (!where_.Prepare()) GTEST_SKIP() << testing::kNoPostgres;
    auto s = where_.Open(StoreOptions{});
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(*s);
    ASSERT_TRUE(store_->AddDomain("example.test").ok());
    ASSERT_TRUE(store_->AddDomain("other.test").ok());
    ASSERT_TRUE(store_->AddAccount("alice@example.test", "h").ok());
    ASSERT_TRUE(store_->AddAccount("bob@example.test", "h").ok());
    alice_ = store_->FindAccount("alice@example.test")->id;
    bob_ = store_->FindAccount("bob@example.test")->id;
  }

  testing::TestStoreLocation where_{GetParam()};
  std::unique_ptr<Store> store_;
  int64_t alice_ = 0, bob_ = 0;
};
HATO_STORE_BACKENDS(AliasTest);

TEST_P(AliasTest, AddResolveListRemove) {
  ASSERT_TRUE(store_->AddAlias("Sales@Example.TEST", "ALICE@example.test").ok());
  ASSERT_TRUE(store_->AddAlias("al@other.test", "alice@example.test").ok());
  ASSERT_TRUE(store_->AddAlias("help@example.test", "bob@example.test").ok());
  // RCPT resolution: an account's own address and its aliases, any case.
  EXPECT_EQ(store_->ResolveRecipient("alice@example.test")->id, alice_);
  EXPECT_EQ(store_->ResolveRecipient("SALES@example.test")->id, alice_);
  EXPECT_EQ(store_->ResolveRecipient("sales@example.test")->address, "alice@example.test");
  EXPECT_EQ(store_->ResolveRecipient("al@other.test")->id, alice_);
  EXPECT_EQ(store_->ResolveRecipient("help@example.test")->id, bob_);
  EXPECT_EQ(store_->ResolveRecipient("nobody@example.test").error().kind, ErrorKind::kNotFound);
  // Aliases are not accounts: they do not log in.
  EXPECT_EQ(store_->FindAccount("sales@example.test").error().kind, ErrorKind::kNotFound);

  auto all = store_->ListAliases("");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].alias, "al@other.test");
  EXPECT_EQ((*all)[1].alias, "help@example.test");
  EXPECT_EQ((*all)[1].account, "bob@example.test");
  EXPECT_EQ((*all)[2].alias, "sales@example.test");
  EXPECT_FALSE((*all)[2].account_removed);
  auto alices = store_->ListAliases("Alice@example.test");
  ASSERT_TRUE(alices.ok());
  ASSERT_EQ(alices->size(), 2u);
  EXPECT_EQ(store_->ListAliases("carol@example.test").error().kind, ErrorKind::kNotFound);

  ASSERT_TRUE(store_->RemoveAlias("SALES@example.test").ok());
  EXPECT_EQ(store_->ResolveRecipient("sales@example.test").error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(store_->RemoveAlias("sales@example.test").error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(store_->ListAliases("alice@example.test")->size(), 1u);
}

TEST_P(AliasTest, RefusesConflictsAndForeignDomains) {
  ASSERT_TRUE(store_->AddAlias("sales@example.test", "alice@example.test").ok());
  // Unique, whichever account asks.
  EXPECT_EQ(store_->AddAlias("sales@example.test", "bob@example.test").error().kind,
            ErrorKind::kExists);
  EXPECT_EQ(store_->AddAlias("SALES@example.test", "alice@example.test").error().kind,
            ErrorKind::kExists);
  // An alias may not be an account's address, and an account may not take an alias's.
  auto st = store_->AddAlias("bob@example.test", "alice@example.test");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().kind, ErrorKind::kExists);
  st = store_->AddAccount("sales@example.test", "h");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().kind, ErrorKind::kExists);
  EXPECT_NE(st.error().message.find("alias of alice@example.test"), std::string::npos);
  // The alias's domain must be local; the target must be a live account.
  EXPECT_EQ(store_->AddAlias("x@remote.test", "alice@example.test").error().kind,
            ErrorKind::kNotFound);
  EXPECT_EQ(store_->AddAlias("x@example.test", "carol@example.test").error().kind,
            ErrorKind::kNotFound);
  EXPECT_EQ(store_->AddAlias("no-at-sign", "alice@example.test").error().kind, ErrorKind::kInvalid);
  EXPECT_EQ(store_->AddAlias("@", "alice@example.test").error().kind, ErrorKind::kInvalid);
  EXPECT_EQ(store_->AddAlias("@x@example.test", "alice@example.test").error().kind,
            ErrorKind::kInvalid);
  if (where_.postgres()) {
    // Catch-all aliases are not in the PostgreSQL backend yet: refused.
    EXPECT_EQ(store_->AddAlias("@example.test", "alice@example.test").error().kind,
              ErrorKind::kInvalid);
  } else {
    // "@domain" is the domain's catch-all (issue 18).
    EXPECT_TRUE(store_->AddAlias("@example.test", "alice@example.test").ok());
    ASSERT_TRUE(store_->RemoveAlias("@example.test").ok());
  }
  // A domain with aliases cannot go until they do.
  ASSERT_TRUE(store_->AddAlias("x@other.test", "alice@example.test").ok());
  EXPECT_EQ(store_->RemoveDomain("other.test").error().kind, ErrorKind::kInvalid);
  ASSERT_TRUE(store_->RemoveAlias("x@other.test").ok());
  EXPECT_TRUE(store_->RemoveDomain("other.test").ok());
}

TEST_P(AliasTest, RemovedAccountsAliasesAreDormantThenPurged) {
  ASSERT_TRUE(store_->AddAlias("sales@example.test", "alice@example.test").ok());
  ASSERT_TRUE(store_->RemoveAccount("alice@example.test").ok());
  // Dormant: no longer delivered to, still reserved, listed as inactive.
  EXPECT_EQ(store_->ResolveRecipient("sales@example.test").error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(store_->AddAlias("sales@example.test", "bob@example.test").error().kind,
            ErrorKind::kExists);
  auto list = store_->ListAliases("");
  ASSERT_EQ(list->size(), 1u);
  EXPECT_TRUE((*list)[0].account_removed);
  // Restoring the account brings its aliases back.
  ASSERT_TRUE(store_->RestoreAccount("alice@example.test").ok());
  EXPECT_EQ(store_->ResolveRecipient("sales@example.test")->id, alice_);
  // A removed account's address can become another account's alias; the
  // removed account then cannot be restored over it.
  ASSERT_TRUE(store_->RemoveAccount("bob@example.test").ok());
  ASSERT_TRUE(store_->AddAlias("bob@example.test", "alice@example.test").ok());
  EXPECT_EQ(store_->ResolveRecipient("bob@example.test")->id, alice_);
  EXPECT_EQ(store_->RestoreAccount("bob@example.test").error().kind, ErrorKind::kExists);
  // Purging the account takes its aliases with it.
  ASSERT_TRUE(store_->PurgeAccount("alice@example.test").ok());
  EXPECT_TRUE(store_->ListAliases("")->empty());
  EXPECT_TRUE(store_->AddAccount("sales@example.test", "h").ok());
}

TEST(AliasSchema, MigratesFromSeven) {
  testing::TempDir dir;
  {
    sqlite::Db db;
    ASSERT_TRUE(db.Open(dir.path() + "/meta.db", false).ok());
    ASSERT_TRUE(sqlite::Migrate(db, 7).ok());
    ASSERT_TRUE(db.Exec("INSERT INTO domains(id, name, created_at) VALUES(1, 'example.test', 1);"
                        "INSERT INTO accounts(address, domain_id, password_hash, created_at) "
                        "VALUES('alice@example.test', 1, 'h', 1)")
                    .ok());
  }
  auto store = OpenEmbeddedStore(dir.path(), StoreOptions{});
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_TRUE((*store)->ListAliases("")->empty());
  ASSERT_TRUE((*store)->AddAlias("sales@example.test", "alice@example.test").ok());
  EXPECT_EQ((*store)->ResolveRecipient("sales@example.test")->address, "alice@example.test");
  store->reset();
  sqlite::Db db;
  ASSERT_TRUE(db.Open(dir.path() + "/meta.db", false).ok());
  EXPECT_EQ(*sqlite::SchemaVersion(db), sqlite::LatestSchemaVersion());
}

}  // namespace
}  // namespace hato::store
