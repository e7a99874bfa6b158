// The PostgreSQL backend beyond the shared conformance suite (store_test.cc):
// a lost or stalled database fails promptly and temporarily and the store
// reconnects by itself; several nodes share one database (UIDs and modseqs
// strictly increasing, changes heard across nodes within 1 s); opening an
// existing database attaches to it.
#include "store/postgres/pg_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "pg_cluster.h"
#include "store/postgres/conn.h"
#include "store/postgres/pg_ops.h"
#include "store/postgres/schema.h"
#include "store/store.h"

namespace hato::store {
namespace {

using Clock = std::chrono::steady_clock;

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

class PgStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::PostgresInstalled()) GTEST_SKIP() << testing::kNoPostgres;
    // Its own cluster: these tests stop and freeze it.
    cluster_ = std::make_unique<testing::PgCluster>();
    ASSERT_TRUE(cluster_->Start());
    conninfo_ = cluster_->CreateDatabase();
    ASSERT_FALSE(conninfo_.empty());
  }

  std::unique_ptr<Store> Open(int statement_timeout_ms = 10000, std::string node_id = {}) {
    PostgresOptions pg;
    pg.node_id = std::move(node_id);
    pg.conninfo = conninfo_;
    pg.pool_size = 4;
    pg.statement_timeout_ms = statement_timeout_ms;
    pg.connect_timeout_seconds = 2;
    auto s = OpenPostgresStore(pg, StoreOptions{});
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s ? std::move(*s) : nullptr;
  }

  static int64_t MakeAccount(Store& s, const std::string& addr) {
    (void)s.AddDomain("example.test");
    (void)s.AddAccount(addr, "hash");
    auto a = s.FindAccount(addr);
    EXPECT_TRUE(a.ok());
    return a ? a->id : 0;
  }

  static Result<DeliveryReceipt> Deliver(Store& s, int64_t account, const std::string& content) {
    DeliveryRequest req;
    req.return_path = "sender@remote.test";
    req.account_ids = {account};
    req.content = content;
    req.received_at = 1700000000;
    return Wait<DeliveryReceipt>(
        [&](Done<DeliveryReceipt> done) { s.Deliver(std::move(req), std::move(done)); });
  }

  std::unique_ptr<testing::PgCluster> cluster_;
  std::string conninfo_;
};

TEST_F(PgStoreTest, LostDatabaseFailsPromptlyThenReconnects) {
  auto store = Open();
  ASSERT_TRUE(store);
  int64_t a = MakeAccount(*store, "a@example.test");
  ASSERT_TRUE(Deliver(*store, a, "Subject: 1\r\n\r\nbefore\r\n").ok());
  cluster_->Stop();  // immediate: every connection is cut
  auto t0 = Clock::now();
  auto r = Deliver(*store, a, "Subject: 2\r\n\r\nduring\r\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kTemporary) << r.error().message;
  auto list = store->ListMessages(a, kInbox);
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.error().kind, ErrorKind::kTemporary);
  // Prompt: the connection attempt is refused on a dead port, the backoff answers at once.
  EXPECT_LT(MsSince(t0), 5000);
  ASSERT_TRUE(cluster_->StartServer());
  // The store reconnects by itself (after its short backoff).
  Result<DeliveryReceipt> again = Err(ErrorKind::kTemporary, "not tried");
  for (int i = 0; i < 50 && !again.ok(); ++i) {
    again = Deliver(*store, a, "Subject: 3\r\n\r\nafter\r\n");
    if (!again.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(again.ok()) << again.error().message;
  auto snap = store->ListMessages(a, kInbox);
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  // The refused delivery is not there; the two acknowledged ones are.
  ASSERT_EQ(snap->messages.size(), 2u);
  EXPECT_EQ(*store->ReadMessage(a, snap->messages[1].id), "Subject: 3\r\n\r\nafter\r\n");
}

// Freezes every process of the cluster (a stalled database: it accepts
// nothing and answers nothing) and thaws it on destruction.
class Freeze {
 public:
  explicit Freeze(int postmaster) : postmaster_(postmaster) {
    if (postmaster_ == 0) return;
    pids_.push_back(postmaster_);
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
      std::string name = e.path().filename();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream stat(e.path() / "stat");
      std::string st((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
      size_t close = st.rfind(')');
      if (close == std::string::npos) continue;
      int ppid = 0;
      char state = 0;
      if (std::sscanf(st.c_str() + close + 1, " %c %d", &state, &ppid) == 2 &&
          ppid == postmaster_) {
        pids_.push_back(std::stoi(name));
      }
    }
    for (int pid : pids_) ::kill(pid, SIGSTOP);
  }
  ~Freeze() {
    for (int pid : pids_) ::kill(pid, SIGCONT);
  }
  bool frozen() const { return postmaster_ != 0; }

 private:
  int postmaster_ = 0;
  std::vector<int> pids_;
};

TEST_F(PgStoreTest, StalledDatabaseFailsWithinTheTimeout) {
  constexpr int kStatementTimeoutMs = 1000;  // the client gives up 2 s after it
  auto store = Open(kStatementTimeoutMs);
  ASSERT_TRUE(store);
  int64_t a = MakeAccount(*store, "a@example.test");
  ASSERT_TRUE(Deliver(*store, a, "Subject: 1\r\n\r\nbefore\r\n").ok());
  {
    Freeze freeze(cluster_->PostmasterPid());
    ASSERT_TRUE(freeze.frozen());
    auto t0 = Clock::now();
    auto r = Deliver(*store, a, "Subject: 2\r\n\r\nstalled\r\n");
    int64_t took = MsSince(t0);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, ErrorKind::kTemporary) << r.error().message;
    EXPECT_GE(took, kStatementTimeoutMs);
    EXPECT_LT(took, kStatementTimeoutMs + 2000 + 3000);  // deadline plus a loaded machine
    // Meanwhile the write path reports itself busy for admission control.
  }
  Result<DeliveryReceipt> again = Err(ErrorKind::kTemporary, "not tried");
  for (int i = 0; i < 50 && !again.ok(); ++i) {
    again = Deliver(*store, a, "Subject: 3\r\n\r\nafter\r\n");
    if (!again.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(again.ok()) << again.error().message;
}

TEST_F(PgStoreTest, SecondNodeAttachesWithoutWiping) {
  auto one = Open();
  ASSERT_TRUE(one);
  int64_t a = MakeAccount(*one, "a@example.test");
  ASSERT_TRUE(Deliver(*one, a, "Subject: kept\r\n\r\nx\r\n").ok());
  auto two = Open();  // migrates nothing, creates nothing
  ASSERT_TRUE(two);
  EXPECT_EQ(two->AddDomain("example.test").error().kind, ErrorKind::kExists);
  auto snap = two->ListMessages(a, kInbox);
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->messages.size(), 1u);
  pg::Conn c(pg::ConnOptions{conninfo_});
  ASSERT_TRUE(c.Connect().ok());
  EXPECT_EQ(*pg::SchemaVersion(c), pg::LatestSchemaVersion());
}

// The big values of a delivery (issue 15): a body's chunk is not compressed
// again and stays in its row up to a page; the SEARCH text is compressed in
// its row. Both on a fresh database and on one migrated from the version
// before, whose rows (TOASTed out of line then) stay readable.
TEST_F(PgStoreTest, BodiesAndSearchTextStayInTheirRows) {
  auto settings = [](pg::Conn& c) -> std::string {
    auto r = c.Exec(
        "SELECT string_agg(a.attrelid::regclass || '.' || a.attname || '=' || a.attstorage::text, "
        "' ' ORDER BY a.attrelid::regclass::text, a.attname) || ' ' || (SELECT "
        "coalesce(array_to_string(reloptions, ','), '') FROM "
        "pg_class WHERE relname = 'blob_chunks') FROM pg_attribute a WHERE a.attrelid IN "
        "('blob_chunks'::regclass, 'blob_text'::regclass) AND a.attname IN ('data', 'header', "
        "'body')");
    return r ? r->Text(0, 0) : r.error().message;
  };
  const std::string want =
      "blob_chunks.data=e blob_text.body=m blob_text.header=m toast_tuple_target=8160";
  auto toast_bytes = [](pg::Conn& c) -> std::string {
    auto r = c.Exec(
        "SELECT string_agg(relname || '=' || pg_relation_size(reltoastrelid), ' ' ORDER BY "
        "relname) FROM pg_class WHERE relname IN ('blob_chunks', 'blob_text')");
    return r ? r->Text(0, 0) : r.error().message;
  };
  std::string text;
  std::mt19937 random(15);
  while (text.size() < 6000) {
    text += "word" + std::to_string(random() % 1000) + (random() % 12 == 0 ? "\r\n" : " ");
  }
  std::string noise;  // compresses little
  while (noise.size() < 6000) noise += static_cast<char>('!' + random() % 90);
  // Upgrade: the version before, with a search text row TOASTed out of line.
  const std::string old_db = cluster_->CreateDatabase();
  {
    pg::Conn c(pg::ConnOptions{old_db});
    ASSERT_TRUE(c.Connect().ok());
    ASSERT_TRUE(pg::Migrate(c, pg::LatestSchemaVersion() - 1).ok());
    EXPECT_NE(settings(c), want);
    ASSERT_TRUE(c.Exec("INSERT INTO blobs(sha256, stored_length, size, codec, refs) VALUES "
                       "('\\x00', 1, 1, 0, 0)")
                    .ok());
    ASSERT_TRUE(c.Exec("INSERT INTO blob_text(blob_id, header, body) SELECT id, 'old', $1 FROM "
                       "blobs",
                       {pg::P(noise)})
                    .ok());
    EXPECT_NE(toast_bytes(c), "blob_chunks=0 blob_text=0");
  }
  for (const std::string& db : {old_db, conninfo_}) {
    PostgresOptions pg;
    pg.conninfo = db;
    pg.pool_size = 2;
    StoreOptions so;
    so.index_text = [](std::string_view content, std::string_view) {
      return IndexText{"subject", std::string(content)};
    };
    auto opened = OpenPostgresStore(pg, so);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    auto store = std::move(*opened);
    pg::Conn c(pg::ConnOptions{db});
    ASSERT_TRUE(c.Connect().ok());
    EXPECT_EQ(*pg::SchemaVersion(c), pg::LatestSchemaVersion());
    EXPECT_EQ(settings(c), want) << db;
    const std::string toast_before = toast_bytes(c);
    int64_t a = MakeAccount(*store, "a@example.test");
    const std::string body = "Subject: s\r\n\r\n" + text;
    const std::string raw = "Subject: n\r\n\r\n" + noise;  // a chunk of ~5 KB
    ASSERT_TRUE(Deliver(*store, a, body).ok());
    ASSERT_TRUE(Deliver(*store, a, raw).ok());
    auto snap = store->ListMessages(a, kInbox);
    ASSERT_TRUE(snap.ok() && snap->messages.size() == 2);
    EXPECT_EQ(*store->ReadMessage(a, snap->messages[0].id), body);
    EXPECT_EQ(*store->ReadMessage(a, snap->messages[1].id), raw);
    // Nothing went out of line; the text that compresses is compressed.
    EXPECT_EQ(toast_bytes(c), toast_before) << db;
    auto r = c.Exec(
        "SELECT bool_and(pg_column_size(body) < octet_length(body)), (SELECT "
        "max(octet_length(data)) FROM blob_chunks) FROM blob_text WHERE body LIKE 'Subject: s%'");
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->Text(0, 0), "t");
    EXPECT_GT(r->Int(0, 1), 2100);  // past the 2 KB at which a row is TOASTed
    auto found = store->SearchText(snap->mailbox_id, "word", false);
    ASSERT_TRUE(found.ok()) << found.error().message;
    EXPECT_EQ(found->uids, std::vector<uint32_t>{1});
    if (db == old_db) {
      auto old = c.Exec("SELECT body = $1 FROM blob_text WHERE header = 'old'", {pg::P(noise)});
      ASSERT_TRUE(old.ok() && old->size() == 1);
      EXPECT_EQ(old->Text(0, 0), "t");
    }
  }
}

TEST_F(PgStoreTest, TwoNodesKeepUidsAndModseqsIncreasingAndHearEachOther) {
  auto one = Open();
  auto two = Open();
  ASSERT_TRUE(one && two);
  int64_t a = MakeAccount(*one, "a@example.test");
  auto mailbox = one->ListMessages(a, kInbox)->mailbox_id;
  // Node two hears node one's commits through LISTEN/NOTIFY.
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Clock::time_point> heard;
  two->SetChangeListener([&](const std::vector<int64_t>& ids) {
    std::lock_guard lock(mu);
    for (int64_t id : ids) {
      if (id == mailbox) heard.push_back(Clock::now());
    }
    cv.notify_all();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the listener is connected
  auto sent = Clock::now();
  ASSERT_TRUE(Deliver(*one, a, "Subject: ping\r\n\r\nx\r\n").ok());
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(1), [&] { return !heard.empty(); }))
        << "node two did not hear node one's delivery within 1 s";
    EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(heard[0] - sent).count(), 1000);
  }
  // Concurrent writers on both nodes: every UID once, modseqs follow UIDs.
  constexpr int kThreads = 4, kEach = 20;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Store& s = t % 2 ? *two : *one;
      for (int i = 0; i < kEach; ++i) {
        if (Deliver(s, a, "Subject: " + std::to_string(t * 1000 + i) + "\r\n\r\nx\r\n").ok()) ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kThreads * kEach);
  auto snap = two->ListMessages(a, kInbox);
  ASSERT_TRUE(snap.ok());
  ASSERT_EQ(snap->messages.size(), size_t{kThreads * kEach + 1});
  for (size_t i = 0; i < snap->messages.size(); ++i) {
    EXPECT_EQ(snap->messages[i].uid, i + 1);
    if (i > 0) {
      EXPECT_GT(snap->messages[i].modseq, snap->messages[i - 1].modseq);
    }
  }
  EXPECT_EQ(snap->uidnext, kThreads * kEach + 2u);
}

// The delivery look-ups (domains, recipients with their quota limit, Sieve
// scripts) are cached on each node (store/directory_cache.h). A change made
// on one node is seen on the other at once (LISTEN/NOTIFY from the
// database's triggers), and on the node that made it when the write returns;
// a node whose listening connection was lost, and so may have missed a
// notification, drops its whole cache.
TEST_F(PgStoreTest, TwoNodesSeeDirectoryChangesAtOnce) {
  auto one = Open();
  auto two = Open();
  ASSERT_TRUE(one && two);
  int64_t a = MakeAccount(*one, "a@example.test");
  ASSERT_TRUE(one->AddDomain("other.test").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // both nodes listen
  auto local = [](Store& s, const char* domain) {
    auto r = s.IsLocalDomain(domain);
    return r.ok() && *r;
  };
  // Warm both caches.
  auto warm = [&](Store& s) {
    EXPECT_TRUE(local(s, "other.test"));
    auto r = s.ResolveRecipient("a@example.test");
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->quota_bytes);
    auto scripts = s.DeliverySieveScripts(a, "jmap.");
    ASSERT_TRUE(scripts.ok());
    EXPECT_TRUE(scripts->empty());
  };
  warm(*one);
  warm(*two);
  warm(*two);  // served from the cache now
  // `until` holds on node two within 1 s (polled).
  auto within_a_second = [](const std::function<bool()>& until) {
    auto t0 = Clock::now();
    while (MsSince(t0) < 1000) {
      if (until()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return until();
  };
  auto quota_of = [](Store& s) -> std::optional<uint64_t> {
    auto r = s.ResolveRecipient("a@example.test");
    return r ? r->quota_bytes : std::nullopt;
  };
  // A quota set on node one.
  ASSERT_TRUE(one->SetQuota("a@example.test", 1000).ok());
  EXPECT_EQ(quota_of(*one), 1000u);  // at once on the node that wrote it
  EXPECT_TRUE(within_a_second([&] { return quota_of(*two) == 1000u; }));
  // A Sieve script activated on node one.
  ASSERT_TRUE(one->PutSieveScript(a, "mine", "keep;").ok());
  ASSERT_TRUE(one->SetActiveSieveScript(a, "mine").ok());
  auto active = [a](Store& s) {
    auto r = s.DeliverySieveScripts(a, "jmap.");
    return r && r->size() == 1 && (*r)[0].active && (*r)[0].name == "mine";
  };
  EXPECT_TRUE(active(*one));
  EXPECT_TRUE(within_a_second([&] { return active(*two); }));
  // A password changed on node one: what the cached recipient carries.
  ASSERT_TRUE(one->SetPassword("a@example.test", "hash2").ok());
  auto hash_of = [](Store& s) {
    auto r = s.ResolveRecipient("a@example.test");
    return r ? r->password_hash : std::string();
  };
  EXPECT_EQ(hash_of(*one), "hash2");
  EXPECT_TRUE(within_a_second([&] { return hash_of(*two) == "hash2"; }));
  // A domain removed on node one.
  ASSERT_TRUE(one->RemoveDomain("other.test").ok());
  EXPECT_FALSE(local(*one, "other.test"));
  EXPECT_TRUE(within_a_second([&] { return !local(*two, "other.test"); }));
  // An account removed on node one.
  ASSERT_TRUE(one->RemoveAccount("a@example.test").ok());
  auto gone = [](Store& s) {
    auto r = s.ResolveRecipient("a@example.test");
    return !r && r.error().kind == ErrorKind::kNotFound;
  };
  EXPECT_TRUE(gone(*one));
  EXPECT_TRUE(within_a_second([&] { return gone(*two); }));

  // A change no node is told of (triggers off for that session), then node
  // two's listening connection is cut: node two must not keep what it had.
  int64_t b = MakeAccount(*one, "b@example.test");
  ASSERT_GT(b, 0);
  auto b_quota = [](Store& s) -> std::optional<uint64_t> {
    auto r = s.ResolveRecipient("b@example.test");
    return r ? r->quota_bytes : std::nullopt;
  };
  EXPECT_TRUE(within_a_second([&] { return two->ResolveRecipient("b@example.test").ok(); }));
  // Every notification of b's creation heard; then b is read once more (cached).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(b_quota(*two));
  pg::Conn admin(pg::ConnOptions{conninfo_});
  ASSERT_TRUE(admin.Connect().ok());
  ASSERT_TRUE(admin.Exec("SET session_replication_role = replica").ok());
  ASSERT_TRUE(
      admin.Exec("UPDATE accounts SET quota_bytes = 5 WHERE address = 'b@example.test'").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(b_quota(*two));  // not notified: the cache still answers (what this test cuts)
  ASSERT_TRUE(admin
                  .Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                        "pid <> pg_backend_pid() AND query LIKE 'LISTEN%'")
                  .ok());
  auto t0 = Clock::now();
  while (MsSince(t0) < 3000 && b_quota(*two) != 5u) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(b_quota(*two), 5u) << "node two kept its cache after losing its LISTEN connection";
}

// Mailbox counters (issue 15, ingest speed): new message rows are counted by
// one statement-level trigger per INSERT (schema.cc), not per row. Two nodes
// deliver concurrently into one mailbox, with bodies delivered more than once
// (from both nodes at once) and several copies per Thread, some to two
// accounts; an APPEND (the one-row insert path) and a COPY join them. After
// that and after marking a Thread read, every counter equals a recount:
// messages, unseen, distinct bodies (JMAP totalEmails), Threads and unread
// Threads (JMAP totalThreads / unreadThreads), and Verify finds no mailbox
// whose counters disagree with its rows.
TEST_F(PgStoreTest, CountersStayExactUnderConcurrentDeliveriesOnTwoNodes) {
  auto one = Open();
  auto two = Open();
  ASSERT_TRUE(one && two);
  int64_t a = MakeAccount(*one, "a@example.test");
  int64_t b = MakeAccount(*one, "b@example.test");
  constexpr int kThreads = 4, kEach = 15, kBodies = 12, kThreadIds = 4;
  auto body = [](int k) {
    return "Subject: body " + std::to_string(k) + "\r\n\r\n" + std::string(500, 'x') + "\r\n";
  };
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Store& s = t % 2 ? *two : *one;
      for (int i = 0; i < kEach; ++i) {
        int k = (t * kEach + i) % kBodies;
        DeliveryRequest req;
        req.return_path = "sender@remote.test";
        req.account_ids = i % 3 == 0 ? std::vector<int64_t>{a, b} : std::vector<int64_t>{a};
        req.content = body(k);
        req.thread_id = "thread-" + std::to_string(k % kThreadIds);
        req.received_at = 1700000000 + i;
        auto r = Wait<DeliveryReceipt>(
            [&](Done<DeliveryReceipt> done) { s.Deliver(std::move(req), std::move(done)); });
        if (r.ok())
          ++ok;
        else
          ADD_FAILURE() << r.error().message;
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(ok.load(), kThreads * kEach);
  // One message on the one-row path: a new body in a Thread of its own, seen.
  AppendRequest append;
  append.account_id = a;
  append.mailbox = kInbox;
  append.content = "Subject: appended\r\n\r\ny\r\n";
  append.flags = kSeen;
  append.internal_date = 1700000100;
  ASSERT_TRUE(Wait<AppendResult>([&](Done<AppendResult> done) {
                one->Append(std::move(append), std::move(done));
              }).ok());
  auto inbox = [&](int64_t account) {
    auto list = two->ListMailboxes(account);
    EXPECT_TRUE(list.ok());
    MailboxInfo found;
    if (list.ok())
      for (const auto& m : *list) {
        if (m.name == kInbox) found = m;
      }
    return found;
  };
  MailboxInfo m = inbox(a);
  EXPECT_EQ(m.messages, uint64_t{kThreads * kEach + 1});
  EXPECT_EQ(m.unseen, uint64_t{kThreads * kEach});
  EXPECT_EQ(m.emails, uint64_t{kBodies + 1});
  EXPECT_EQ(m.threads, uint64_t{kThreadIds + 1});
  EXPECT_EQ(m.unread_threads, uint64_t{kThreadIds});
  MailboxInfo mb = inbox(b);
  EXPECT_EQ(mb.messages, uint64_t{kThreads * ((kEach + 2) / 3)});
  EXPECT_EQ(mb.threads, mb.unread_threads);
  EXPECT_GT(mb.threads, 0u);
  // Thread 0 read: one unread Thread fewer; a COPY of it adds nothing.
  auto snap = one->ListMessages(a, kInbox);
  ASSERT_TRUE(snap.ok());
  std::vector<int64_t> thread0;
  for (const auto& x : snap->messages) {
    auto c = one->ReadMessage(a, x.id);
    ASSERT_TRUE(c.ok());
    for (int k = 0; k < kBodies; k += kThreadIds) {
      if (*c == body(k)) thread0.push_back(x.id);
    }
  }
  ASSERT_FALSE(thread0.empty());
  ASSERT_TRUE(
      Wait<FlagResult>([&](Done<FlagResult> done) {
        two->SetFlags(a, thread0, FlagChange{FlagOp::kAdd, kSeen, {}, 0, {}}, std::move(done));
      }).ok());
  ASSERT_TRUE(Wait<CopyResult>([&](Done<CopyResult> done) {
                one->CopyMessages(a, {thread0[0]}, kInbox, false, std::move(done));
              }).ok());
  m = inbox(a);
  EXPECT_EQ(m.messages, uint64_t{kThreads * kEach + 2});
  EXPECT_EQ(m.emails, uint64_t{kBodies + 1});
  EXPECT_EQ(m.threads, uint64_t{kThreadIds + 1});
  EXPECT_EQ(m.unread_threads, uint64_t{kThreadIds - 1});
  EXPECT_EQ(m.unseen, uint64_t{kThreads * kEach} - thread0.size());
  auto report = one->Verify();
  ASSERT_TRUE(report.ok()) << report.error().message;
  for (const auto& p : report->problems) {
    EXPECT_EQ(p.find(kCounterProblem), std::string::npos) << p;
  }
}

// Prepared statements (issue 15, ingest speed): a statement with parameters
// run again on a connection is prepared there and later runs use it; a new
// connection (after the old one was lost) starts with none, so nothing names
// a statement the server no longer has; a statement that cannot be prepared
// (in an aborted transaction) fails as it would have, and is prepared later.
TEST_F(PgStoreTest, ConnectionsPrepareRepeatedStatementsAndForgetThemWhenLost) {
  pg::ConnOptions o;
  o.conninfo = conninfo_;
  pg::Conn c(o);
  pg::Conn admin(o);
  ASSERT_TRUE(c.Connect().ok() && admin.Connect().ok());
  const std::string sql = "SELECT $1::bigint + 1";
  auto run = [&](int64_t v) -> Result<int64_t> {
    auto r = c.Exec(sql, {pg::P(v)});
    if (!r) return r.error();
    return r->Int(0, 0);
  };
  auto prepared = [&]() {
    auto r = c.Exec("SELECT count(*) FROM pg_prepared_statements WHERE statement = '" + sql + "'");
    return r.ok() ? r->Int(0, 0) : -1;
  };
  ASSERT_EQ(*run(1), 2);
  EXPECT_EQ(prepared(), 0);  // seen once: not prepared
  ASSERT_EQ(*run(2), 3);
  EXPECT_EQ(prepared(), 1);
  ASSERT_EQ(*run(3), 4);
  EXPECT_EQ(prepared(), 1);
  // The connection is lost: the new one has no prepared statements.
  ASSERT_TRUE(
      admin.Exec("SELECT pg_terminate_backend($1)", {pg::P(int64_t{c.backend_pid()})}).ok());
  EXPECT_FALSE(run(4).ok());
  ASSERT_TRUE(c.Connect().ok());
  auto again = run(5);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(*again, 6);
  // In an aborted transaction nothing can be prepared: the statement fails
  // with the transaction's error, and runs prepared after the rollback.
  ASSERT_TRUE(c.Exec("BEGIN").ok());
  EXPECT_FALSE(c.Exec("SELECT 1/0").ok());
  auto aborted = run(6);
  ASSERT_FALSE(aborted.ok());
  EXPECT_NE(aborted.error().message.find("25P02"), std::string::npos) << aborted.error().message;
  ASSERT_TRUE(c.Exec("ROLLBACK").ok());
  EXPECT_EQ(prepared(), 0);
  ASSERT_EQ(*run(7), 8);
  ASSERT_EQ(*run(8), 9);
  EXPECT_EQ(prepared(), 1);
}

// Group commit (issue 15): deliveries queued together reach the database in
// a few round trips per batch (pipeline mode), not ~7 per message; a
// delivery that fails in the batch (an unknown account) fails alone, the
// others keep their UIDs in order, \Junk deliveries and shared bodies come
// out as from the one-by-one path, and every body's reference count matches.
TEST_F(PgStoreTest, GroupCommitPipelinesQueuedDeliveriesAndFailsOnlyTheBadOne) {
  auto store = Open();
  ASSERT_TRUE(store);
  int64_t a = MakeAccount(*store, "a@example.test");
  int64_t b = MakeAccount(*store, "b@example.test");
  constexpr int kMessages = 300;
  constexpr int64_t kNoAccount = 987654321;
  std::mutex mu;
  std::condition_variable cv;
  int finished = 0;
  std::vector<Result<DeliveryReceipt>> receipts(kMessages, Err(ErrorKind::kInternal, "pending"));
  uint64_t before = pg::RoundTrips();
  for (int i = 0; i < kMessages; ++i) {
    DeliveryRequest req;
    req.return_path = "sender@remote.test";
    // Every 50th to an account that does not exist; every 10th to both
    // accounts; every 7th to a's \Junk; every 5th the same body as the last.
    if (i % 50 == 25) {
      req.account_ids = {a, kNoAccount};
    } else if (i % 10 == 0) {
      req.account_ids = {a, b};
    } else {
      req.account_ids = {i % 2 ? b : a};
    }
    req.junk = i % 7 == 3;
    int body = i % 5 == 4 ? i - 1 : i;
    req.content =
        "Subject: m" + std::to_string(body) + "\r\n\r\n" + std::string(3000, 'x') + "\r\n";
    req.received_at = 1700000000 + i;
    store->Deliver(std::move(req), [&, i](Result<DeliveryReceipt> r) {
      std::lock_guard lock(mu);
      receipts[i] = std::move(r);
      ++finished;
      cv.notify_all();
    });
  }
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return finished == kMessages; }));
  }
  uint64_t trips = pg::RoundTrips() - before;
  RecordProperty("round_trips", std::to_string(trips));
  std::map<std::pair<int64_t, std::string>, size_t> want;  // (account, mailbox) -> messages
  for (int i = 0; i < kMessages; ++i) {
    if (i % 50 == 25) {
      ASSERT_FALSE(receipts[i].ok()) << i;
      EXPECT_EQ(receipts[i].error().kind, ErrorKind::kNotFound) << i;
      continue;
    }
    ASSERT_TRUE(receipts[i].ok()) << i << ": " << receipts[i].error().message;
    bool both = i % 10 == 0, junk = i % 7 == 3;
    EXPECT_EQ(receipts[i]->message_ids.size(), both ? 2u : 1u) << i;
    for (int64_t account : {a, b}) {
      if (both || (account == b) == (i % 2 == 1)) ++want[{account, junk ? "Junk" : kInbox}];
    }
  }
  // The one-by-one path took ~7 round trips per delivery (measured: >2,000 here).
  EXPECT_LT(trips, uint64_t{kMessages}) << trips << " round trips for " << kMessages;
  size_t total = 0;
  for (const auto& [where, count] : want) {
    auto snap = store->ListMessages(where.first, where.second);
    ASSERT_TRUE(snap.ok());
    ASSERT_EQ(snap->messages.size(), count) << where.second;
    total += count;
    for (size_t i = 0; i < count; ++i) {
      EXPECT_EQ(snap->messages[i].uid, i + 1) << where.second;
      if (i > 0) {
        EXPECT_GT(snap->messages[i].modseq, snap->messages[i - 1].modseq);
        EXPECT_GT(snap->messages[i].internal_date, snap->messages[i - 1].internal_date);
      }
    }
    EXPECT_EQ(snap->uidnext, count + 1);
  }
  EXPECT_EQ(want.size(), 4u);  // both accounts' INBOX and Junk
  // References: one per message row; one chunk per body; no body left over
  // by the failed deliveries.
  pg::ConnOptions o;
  o.conninfo = conninfo_;
  pg::Conn c(o);
  ASSERT_TRUE(c.Connect().ok());
  auto refs = c.Exec(
      "SELECT count(*) FROM blobs b WHERE refs <> (SELECT count(*) FROM messages m WHERE "
      "m.blob_id = b.id) OR (SELECT count(*) FROM blob_chunks k WHERE k.blob_id = b.id) <> 1");
  ASSERT_TRUE(refs.ok()) << refs.error().message;
  EXPECT_EQ(refs->Int(0, 0), 0);
  auto messages = c.Exec("SELECT count(*), count(DISTINCT blob_id) FROM messages");
  ASSERT_TRUE(messages.ok());
  EXPECT_EQ(static_cast<size_t>(messages->Int(0, 0)), total);
  // Bodies shared by every 5th message: 300 - 60 distinct, less the 6 failed.
  EXPECT_EQ(messages->Int(0, 1), kMessages - kMessages / 5 - kMessages / 50);
}

// A delivery's SEARCH text is extracted on the delivering thread and stored
// by the delivery's own statement: the row is there when the delivery
// returns, and the text indexer reads no body back (it used to read every
// new body from the database after each commit, a second full read). A
// body shared with an earlier delivery keeps one row; a big body is still
// left to the indexer.
TEST_F(PgStoreTest, DeliveriesStoreTheirSearchTextWithTheBody) {
  std::mutex mu;
  std::vector<std::thread::id> extracted_on;
  StoreOptions so;
  so.index_text = [&](std::string_view content, std::string_view) {
    std::lock_guard lock(mu);
    extracted_on.push_back(std::this_thread::get_id());
    return IndexText{"subject", std::string(content.substr(content.find("\r\n\r\n") + 4))};
  };
  PostgresOptions pg;
  pg.conninfo = conninfo_;
  pg.pool_size = 2;
  auto opened = OpenPostgresStore(pg, so);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto store = std::move(*opened);
  int64_t a = MakeAccount(*store, "a@example.test");
  int64_t b = MakeAccount(*store, "b@example.test");
  pg::ConnOptions o;
  o.conninfo = conninfo_;
  pg::Conn c(o);
  ASSERT_TRUE(c.Connect().ok());
  auto texts = [&]() -> int64_t {
    auto r = c.Exec("SELECT count(*) FROM blob_text");
    return r ? r->Int(0, 0) : -1;
  };
  // Stored as valid UTF-8 without NULs (an invalid byte or a NUL becomes '?').
  std::string body = "Subject: s\r\n\r\nneedle one, caf\xc3\xa9 \xff ok";
  body += '\0';
  body += "end of a long enough ASCII line\r\n";
  for (int64_t to : {a, b}) {  // the same body twice
    ASSERT_TRUE(Deliver(*store, to, body).ok());
    EXPECT_EQ(texts(), 1);
  }
  auto t = c.Exec("SELECT header, body FROM blob_text");
  ASSERT_TRUE(t.ok() && t->size() == 1);
  EXPECT_EQ(t->Text(0, 0), "subject");
  EXPECT_EQ(t->Text(0, 1), "needle one, caf\xc3\xa9 ? ok?end of a long enough ASCII line\r\n");
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(extracted_on.size(), 2u);
    for (auto id : extracted_on) EXPECT_EQ(id, std::this_thread::get_id());
  }
  auto found = store->SearchText(store->ListMessages(a, kInbox)->mailbox_id, "needle", false);
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_EQ(found->uids, std::vector<uint32_t>{1});
  EXPECT_TRUE(found->unindexed.empty());
  // A big body (past 64 KiB, kEncodeOnCallerBytes): stored without its text,
  // then indexed in the background.
  std::string big = "Subject: big\r\n\r\n";
  std::mt19937 random(15);
  while (big.size() < 200 * 1024) big += static_cast<char>('!' + random() % 90);
  ASSERT_TRUE(Deliver(*store, a, big).ok());
  auto start = Clock::now();
  while (texts() < 2 && MsSince(start) < 10000) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(texts(), 2);
  std::lock_guard lock(mu);
  ASSERT_EQ(extracted_on.size(), 3u);
  EXPECT_NE(extracted_on[2], std::this_thread::get_id());
}

// The text indexer's background passes start above a mark (pg::IndexMark):
// a body below it is not read again by the passes after commits and every
// second (they looked from id 0, so their cost grew with the store), only by
// the pass over every body (every index_full_pass_ms) and by `hato reindex`.
// A body whose text row is removed stands for one that got below the mark
// without its text.
TEST_F(PgStoreTest, TextIndexerLooksOnlyAboveItsMark) {
  std::atomic<int> extracted{0};
  StoreOptions so;
  so.index_text = [&](std::string_view, std::string_view) {
    ++extracted;
    return IndexText{"header", "body"};
  };
  PostgresOptions pg;
  pg.conninfo = conninfo_;
  pg.pool_size = 2;
  pg.index_settle_ms = 0;
  pg.index_full_pass_ms = 3'600'000;
  auto opened = OpenPostgresStore(pg, so);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto store = std::move(*opened);
  int64_t a = MakeAccount(*store, "a@example.test");
  pg::ConnOptions o;
  o.conninfo = conninfo_;
  pg::Conn c(o);
  ASSERT_TRUE(c.Connect().ok());
  auto texts = [&]() -> int64_t {
    auto r = c.Exec("SELECT count(*) FROM blob_text");
    return r ? r->Int(0, 0) : -1;
  };
  auto wait_texts = [&](int64_t n) {
    auto start = Clock::now();
    while (texts() < n && MsSince(start) < 10000) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return texts();
  };
  std::mt19937 random(15);
  auto big = [&](int i) {  // past kEncodeOnCallerBytes: left to the indexer
    std::string b = "Subject: big " + std::to_string(i) + "\r\n\r\n";
    while (b.size() < 100 * 1024) b += static_cast<char>('!' + random() % 90);
    return b;
  };
  ASSERT_TRUE(Deliver(*store, a, big(1)).ok());
  ASSERT_EQ(wait_texts(1), 1);
  EXPECT_EQ(extracted.load(), 1);
  ASSERT_TRUE(c.Exec("DELETE FROM blob_text").ok());
  ASSERT_TRUE(Deliver(*store, a, big(2)).ok());  // a pass after its commit
  ASSERT_EQ(wait_texts(1), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // two timed passes
  EXPECT_EQ(texts(), 1);
  EXPECT_EQ(extracted.load(), 2);
  // `hato reindex` looks at every body.
  auto n = store->IndexMissingText(so.index_text);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(texts(), 2);
  // So does the pass over every body, every index_full_pass_ms (and the
  // first pass of a store).
  store.reset();
  pg.index_full_pass_ms = 1000;
  ASSERT_TRUE(c.Exec("DELETE FROM blob_text WHERE blob_id = (SELECT min(id) FROM blobs)").ok());
  opened = OpenPostgresStore(pg, so);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  store = std::move(*opened);
  ASSERT_EQ(wait_texts(2), 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // past the first pass
  ASSERT_TRUE(c.Exec("DELETE FROM blob_text WHERE blob_id = (SELECT min(id) FROM blobs)").ok());
  EXPECT_EQ(wait_texts(2), 2);
}

TEST(PgIndexMarkTest, StartsAtTheHighestIdOfAPassThatBeganLongEnoughAgo) {
  pg::IndexMark mark(/*settle_ms=*/10'000, /*full_pass_ms=*/600'000);
  EXPECT_EQ(mark.From(1'000, 50), 0);  // the first pass looks at every body
  EXPECT_EQ(mark.From(2'000, 80), 0);  // 50 is not settled yet
  EXPECT_EQ(mark.From(11'000, 90), 50);
  EXPECT_EQ(mark.From(11'500, 95), 50);
  EXPECT_EQ(mark.From(30'000, 99), 95);  // every pass up to 20,000 settled
  mark.Failed(30'000);                   // a failed pass: the next looks at every body
  EXPECT_EQ(mark.From(31'000, 99), 0);
  EXPECT_EQ(mark.From(32'000, 99), 95);
  EXPECT_EQ(mark.From(631'000, 120), 0);  // the pass over every body is due again
  EXPECT_EQ(mark.From(632'000, 120), 99);
}

// Big bodies queued together: a batch's pipelined run is cut at 8 MiB of
// parameters, the next run goes in the same transaction (after the first's
// RELEASE), and every body comes back whole.
TEST_F(PgStoreTest, GroupCommitCutsBigBatchesIntoSeveralPipelines) {
  auto store = Open();
  ASSERT_TRUE(store);
  int64_t a = MakeAccount(*store, "a@example.test");
  constexpr int kMessages = 24;
  std::mt19937 random(15);
  std::vector<std::string> bodies;
  std::mutex mu;
  std::condition_variable cv;
  int ok = 0, finished = 0;
  for (int i = 0; i < kMessages; ++i) {  // made first, so that they are queued together
    std::string body = "Subject: big " + std::to_string(i) + "\r\n\r\n";
    while (body.size() < 900 * 1024) body += static_cast<char>('!' + random() % 90);
    bodies.push_back(body);
  }
  for (int i = 0; i < kMessages; ++i) {
    DeliveryRequest req;
    req.account_ids = {a};
    req.content = bodies[i];
    store->Deliver(std::move(req), [&](Result<DeliveryReceipt> r) {
      std::lock_guard lock(mu);
      ok += r.ok();
      ++finished;
      cv.notify_all();
    });
  }
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return finished == kMessages; }));
  }
  EXPECT_EQ(ok, kMessages);
  auto snap = store->ListMessages(a, kInbox);
  ASSERT_TRUE(snap.ok());
  ASSERT_EQ(snap->messages.size(), size_t{kMessages});
  for (int i = 0; i < kMessages; ++i) {
    auto content = store->ReadMessage(a, snap->messages[i].id);
    ASSERT_TRUE(content.ok()) << content.error().message;
    EXPECT_TRUE(*content == bodies[i]) << "message " << i << " differs";
  }
}

TEST_F(PgStoreTest, OutboundRecipientsAreLeasedToOneNodeUntilTheLeaseExpires) {
  auto one = Open();
  auto two = Open();
  ASSERT_TRUE(one && two);
  int64_t a = MakeAccount(*one, "a@example.test");
  DeliveryRequest req;
  req.return_path = "a@example.test";
  req.content = "Subject: out\r\n\r\nx\r\n";
  req.received_at = 1700000000;
  req.submitted_by = a;
  OutboundRequest out;
  out.content = req.content;
  out.sender = "a@example.test";
  out.recipients = {{"x@remote.test", 0, ""}, {"y@remote.test", 0, ""}};
  req.outbound = out;
  auto receipt = Wait<DeliveryReceipt>(
      [&](Done<DeliveryReceipt> done) { one->Deliver(std::move(req), std::move(done)); });
  ASSERT_TRUE(receipt.ok()) << receipt.error().message;
  int64_t now = pg::NowSeconds() + 1;
  auto first = one->ListDueOutbound(now, 10);
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ((*first)[0].recipients.size(), 2u);
  // Node two sees nothing while node one holds the lease; node one still does.
  EXPECT_TRUE(two->ListDueOutbound(now, 10)->empty());
  EXPECT_EQ(one->ListDueOutbound(now, 10)->size(), 1u);
  // Node one records one outcome (the lease ends with it) and dies; after the
  // lease the other recipient is node two's.
  RecipientOutcome done_one;
  done_one.recipient_id = (*first)[0].recipients[0].id;
  done_one.state = RecipientState::kDelivered;
  ASSERT_TRUE(
      Wait<void>([&](Done<void> d) { one->RecordOutcomes({done_one}, std::move(d)); }).ok());
  one.reset();
  EXPECT_TRUE(two->ListDueOutbound(now, 10)->empty());
  auto later = two->ListDueOutbound(now + pg::kOutboundLeaseSeconds + 1, 10);
  ASSERT_TRUE(later.ok());
  ASSERT_EQ(later->size(), 1u);
  ASSERT_EQ((*later)[0].recipients.size(), 1u);
  EXPECT_EQ((*later)[0].recipients[0].address, "y@remote.test");
}

// A node restarted with its id (DATA/node.id for `hato serve`) takes its own
// leases back at once; at its start only its own in-flight recipients are
// failed ("outcome unknown"), never another live node's.
TEST_F(PgStoreTest, NodeIdKeepsLeasesAcrossARestartAndInFlightIsPerNode) {
  auto one = Open(10000, "node-a");
  auto two = Open(10000, "node-b");
  ASSERT_TRUE(one && two);
  int64_t a = MakeAccount(*one, "a@example.test");
  DeliveryRequest req;
  req.return_path = "a@example.test";
  req.content = "Subject: out\r\n\r\nx\r\n";
  req.received_at = 1700000000;
  req.submitted_by = a;
  OutboundRequest out;
  out.content = req.content;
  out.sender = "a@example.test";
  out.recipients = {{"x@remote.test", 0, ""}, {"y@remote.test", 0, ""}};
  req.outbound = out;
  ASSERT_TRUE(Wait<DeliveryReceipt>([&](Done<DeliveryReceipt> done) {
                one->Deliver(std::move(req), std::move(done));
              }).ok());
  int64_t now = pg::NowSeconds() + 1;
  auto first = one->ListDueOutbound(now, 10);
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_EQ(first->size(), 1u);
  ASSERT_EQ((*first)[0].recipients.size(), 2u);
  int64_t x = (*first)[0].recipients[0].id;
  auto marked = Wait<std::vector<int64_t>>(
      [&](Done<std::vector<int64_t>> d) { one->MarkInFlight({x}, std::move(d)); });
  ASSERT_TRUE(marked.ok());
  EXPECT_EQ(*marked, std::vector<int64_t>{x});
  // Node two starting meanwhile leaves node one's delivery in flight alone.
  EXPECT_EQ(*two->ResolveInFlight(), 0u);
  // Node one dies and comes back as itself: its in-flight recipient is
  // failed, the other one is due for it at once (not after the lease).
  one.reset();
  one = Open(10000, "node-a");
  ASSERT_TRUE(one);
  EXPECT_EQ(*one->ResolveInFlight(), 1u);
  auto again = one->ListDueOutbound(now, 10);
  ASSERT_TRUE(again.ok()) << again.error().message;
  ASSERT_EQ(again->size(), 1u);
  ASSERT_EQ((*again)[0].recipients.size(), 1u);
  EXPECT_EQ((*again)[0].recipients[0].address, "y@remote.test");
  EXPECT_TRUE(two->ListDueOutbound(now, 10)->empty());
}

TEST_F(PgStoreTest, BodiesAreChunkedCompressedAndVerified) {
  auto store = Open();
  ASSERT_TRUE(store);
  int64_t a = MakeAccount(*store, "a@example.test");
  std::string big = "Subject: big\r\n\r\n";
  for (int i = 0; big.size() < 3 * pg::kChunkBytes; ++i) {
    big += "line " + std::to_string(i * 7919 % 100003) + " of a long message\r\n";
  }
  ASSERT_TRUE(Deliver(*store, a, big).ok());
  std::string noise;
  uint32_t x = 12345;
  while (noise.size() < 2 * pg::kChunkBytes + 10) {
    x = x * 1103515245 + 12345;
    noise += static_cast<char>(x >> 24);
  }
  ASSERT_TRUE(Deliver(*store, a, "Subject: noise\r\n\r\n" + noise).ok());
  pg::Conn c(pg::ConnOptions{conninfo_});
  ASSERT_TRUE(c.Connect().ok());
  auto r = c.Exec(
      "SELECT b.codec, count(k.seq), max(length(k.data)) FROM blobs b JOIN blob_chunks k ON "
      "k.blob_id = b.id GROUP BY b.id, b.codec ORDER BY b.id");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 2);
  EXPECT_EQ(r->Int(0, 0), static_cast<int64_t>(Codec::kZstd));  // repetitive: compressed
  EXPECT_EQ(r->Int(1, 0), static_cast<int64_t>(Codec::kRaw));   // noise: stored as is
  EXPECT_EQ(r->Int(1, 1), 3);                                   // in 1 MiB chunks
  EXPECT_LE(r->Int(1, 2), static_cast<int64_t>(pg::kChunkBytes));
  auto snap = store->ListMessages(a, kInbox);
  ASSERT_EQ(*store->ReadMessage(a, snap->messages[0].id), big);
  // A damaged chunk is detected, never served.
  ASSERT_TRUE(c.Exec("UPDATE blob_chunks SET data = overlay(data placing '\\x00'::bytea from 100) "
                     "WHERE blob_id = (SELECT max(id) FROM blobs) AND seq = 1")
                  .ok());
  auto bad = store->ReadMessage(a, snap->messages[1].id);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, ErrorKind::kCorrupt);
  auto report = store->Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->damaged.size(), 1u);
}

// A backup reads each body inside the metadata snapshot's transaction: a
// body purged after the snapshot was taken (its message expunged and purged,
// a queue entry sent) is still read, so `hato backup create` does not fail
// and the set holds what its metadata names.
TEST_F(PgStoreTest, BackupReadsBodiesInsideTheSnapshot) {
  auto store = Open();
  ASSERT_TRUE(store);
  int64_t a = MakeAccount(*store, "a@example.test");
  const std::string body = "Subject: soon purged\r\n\r\nkept by the backup\r\n";
  ASSERT_TRUE(Deliver(*store, a, body).ok());
  pg::Conn c(pg::ConnOptions{conninfo_});
  ASSERT_TRUE(c.Connect().ok());
  const std::string path = ::testing::TempDir() + "/pg-backup-" + std::to_string(getpid()) + ".db";
  std::remove(path.c_str());
  int handed = 0;
  auto st = store->SnapshotForBackup(
      path, [&](const BlobRef& ref, const std::function<Result<std::string>()>& read) -> Status {
        ++handed;
        // Purged by another connection after the snapshot.
        EXPECT_TRUE(c.Exec("DELETE FROM messages").ok());
        EXPECT_TRUE(c.Exec("DELETE FROM blobs").ok());
        EXPECT_FALSE(store->ReadBlob(ref).ok());  // gone outside the snapshot
        auto content = read();
        if (!content) return content.error();
        EXPECT_EQ(*content, body);
        return Ok();
      });
  std::remove(path.c_str());
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(handed, 1);
}

}  // namespace
}  // namespace hato::store
