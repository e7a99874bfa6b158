#include "store/sqlite/schema.h"

#include "base/strings.h"
#include "store/store.h"

namespace hato::store::sqlite {

const std::vector<std::string>& Migrations() {
  static const std::vector<std::string> kMigrations = {
      // 0 -> 1: domains, accounts, mailboxes, content-addressed blobs, messages.
      R"sql(
CREATE TABLE domains(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL);
CREATE TABLE accounts(
  id INTEGER PRIMARY KEY,
  address TEXT NOT NULL,
  domain_id INTEGER NOT NULL REFERENCES domains(id),
  password_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  removed_at INTEGER);
CREATE UNIQUE INDEX accounts_live ON accounts(address) WHERE removed_at IS NULL;
CREATE TABLE mailboxes(
  id INTEGER PRIMARY KEY,
  account_id INTEGER NOT NULL REFERENCES accounts(id),
  name TEXT NOT NULL,
  uidvalidity INTEGER NOT NULL,
  uidnext INTEGER NOT NULL,
  UNIQUE(account_id, name));
CREATE TABLE blobs(
  id INTEGER PRIMARY KEY,
  sha256 BLOB NOT NULL UNIQUE,
  segment INTEGER NOT NULL,
  offset INTEGER NOT NULL,
  stored_length INTEGER NOT NULL,
  size INTEGER NOT NULL,
  codec INTEGER NOT NULL,
  refs INTEGER NOT NULL);
CREATE TABLE messages(
  id INTEGER PRIMARY KEY,
  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id),
  uid INTEGER NOT NULL,
  blob_id INTEGER NOT NULL REFERENCES blobs(id),
  size INTEGER NOT NULL,
  internal_date INTEGER NOT NULL,
  flags INTEGER NOT NULL DEFAULT 0,
  return_path TEXT NOT NULL,
  expunged_at INTEGER,
  UNIQUE(mailbox_id, uid));
CREATE INDEX messages_expunged ON messages(expunged_at) WHERE expunged_at IS NOT NULL;
)sql",
      // 1 -> 2: modification sequences (RFC 7162) so IMAP CONDSTORE can build on them.
      R"sql(
ALTER TABLE mailboxes ADD COLUMN highest_modseq INTEGER NOT NULL DEFAULT 1;
ALTER TABLE messages ADD COLUMN modseq INTEGER NOT NULL DEFAULT 1;
)sql",
      // 2 -> 3: what IMAP needs: special-use folders (RFC 6154) created for every
      // account, subscriptions, keywords, the parsed MIME tree of each body
      // (so FETCH never re-parses), per-account quota (RFC 9208), and an index
      // for changes since a modseq (RFC 7162).
      R"sql(
ALTER TABLE mailboxes ADD COLUMN special_use TEXT NOT NULL DEFAULT '';
ALTER TABLE mailboxes ADD COLUMN subscribed INTEGER NOT NULL DEFAULT 1;
ALTER TABLE messages ADD COLUMN keywords TEXT NOT NULL DEFAULT '';
ALTER TABLE blobs ADD COLUMN mime BLOB;
ALTER TABLE accounts ADD COLUMN quota_bytes INTEGER;
ALTER TABLE mailboxes ADD COLUMN deleted_at INTEGER;
CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);
CREATE TEMP TABLE default_mailboxes(name TEXT, special_use TEXT);
INSERT INTO default_mailboxes VALUES
  ('Sent', '\Sent'), ('Drafts', '\Drafts'), ('Trash', '\Trash'), ('Junk', '\Junk'),
  ('Archive', '\Archive');
INSERT INTO mailboxes(account_id, name, uidvalidity, uidnext, special_use)
  SELECT a.id, d.name, CAST(strftime('%s', 'now') AS INTEGER) & 2147483647, 1, d.special_use
  FROM accounts a, default_mailboxes d
  WHERE NOT EXISTS (SELECT 1 FROM mailboxes x WHERE x.account_id = a.id AND x.name = d.name);
DROP TABLE default_mailboxes;
)sql",
      // 3 -> 4: IMAP SEARCH BODY/TEXT full-text index (FTS5, trigram tokenizer:
      // case-insensitive substrings, CJK included). One row per blob, rowid =
      // blobs.id, holding the decoded header and text parts; filled when a
      // blob is stored, deleted when the blob is purged. Blobs stored before
      // this migration have no row and are searched by a scan.
      R"sql(
CREATE VIRTUAL TABLE blob_text USING fts5(header, body, tokenize = 'trigram');
)sql",
      // 4 -> 5: IMAP \Recent (RFC 3501 section 2.3.2): the highest UID of each
      // mailbox that a session has already seen. Existing mail is not recent.
      R"sql(
ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 0;
UPDATE mailboxes SET recent_uid = uidnext - 1;
)sql",
      // Submission and the outbound queue (issue 5): queued messages (the body
      // is a blob reference), one row per recipient with its retry state and
      // any DSN owed to the sender, and a log of submissions for the
      // per-account sending limits. Ids are never reused (AUTOINCREMENT): an
      // admin's `queue delete ID` or a late outcome can never hit a newer row.
      R"sql(
CREATE TABLE outbound_messages(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  blob_id INTEGER NOT NULL REFERENCES blobs(id),
  sender TEXT NOT NULL,
  envid TEXT NOT NULL DEFAULT '',
  ret_hdrs INTEGER NOT NULL DEFAULT 0,
  smtputf8 INTEGER NOT NULL DEFAULT 0,
  eight_bit INTEGER NOT NULL DEFAULT 0,
  size INTEGER NOT NULL,
  created_at INTEGER NOT NULL);
CREATE TABLE outbound_recipients(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id INTEGER NOT NULL REFERENCES outbound_messages(id),
  address TEXT NOT NULL,
  domain TEXT NOT NULL,
  notify INTEGER NOT NULL DEFAULT 0,
  orcpt TEXT NOT NULL DEFAULT '',
  state INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_error TEXT NOT NULL DEFAULT '',
  dsn_pending INTEGER NOT NULL DEFAULT 0,
  delay_warned INTEGER NOT NULL DEFAULT 0);
CREATE INDEX outbound_recipients_due ON outbound_recipients(next_attempt_at) WHERE state = 0;
CREATE INDEX outbound_recipients_message ON outbound_recipients(message_id);
CREATE INDEX outbound_recipients_dsn ON outbound_recipients(message_id) WHERE dsn_pending != 0;
CREATE TABLE submission_log(
  account_id INTEGER NOT NULL,
  at INTEGER NOT NULL);
CREATE INDEX submission_log_account ON submission_log(account_id, at);
)sql",
      // 6 -> 7 (backup/restore, issue 6): find the messages of a body, for
      // restore --merge deduplication, fsck reference checks and the purge.
      R"sql(
CREATE INDEX IF NOT EXISTS messages_blob ON messages(blob_id);
)sql",
      // 7 -> 8 (sending mail, issue 5): address aliases. An alias (canonical,
      // lower-cased like accounts.address) receives into its account's INBOX
      // and may be used as the MAIL FROM of that account's submissions (RFC
      // 6409 section 8.1). Its domain is a local domain; no live account has
      // its address (the store checks that in the writer's transaction). The
      // aliases of a removed account stay, dormant, until it is purged or
      // restored. And the held recipients, counted for the queue metrics.
      R"sql(
CREATE TABLE aliases(
  id INTEGER PRIMARY KEY,
  address TEXT NOT NULL UNIQUE,
  domain_id INTEGER NOT NULL REFERENCES domains(id),
  account_id INTEGER NOT NULL REFERENCES accounts(id),
  created_at INTEGER NOT NULL);
CREATE INDEX aliases_account ON aliases(account_id);
CREATE INDEX outbound_recipients_held ON outbound_recipients(message_id) WHERE state = 1;
)sql",
      // 8 -> 9 (SCRAM-SHA-256, RFC 5802 / RFC 7677): the salted verifier of
      // the account's password in RFC 5803 form
      // "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>", set with the
      // password hash. NULL for accounts whose password was set before: they
      // cannot use SCRAM until the password is set again.
      R"sql(
ALTER TABLE accounts ADD COLUMN scram_sha256 TEXT;
)sql",
      // The FTS5 trigram table goes: the full-text index is a Xapian database
      // of its own (DATA/index, search/text_index.h), off the writer's path.
      R"sql(
DROP TABLE IF EXISTS blob_text;
)sql",
      // (HTTP, issue 12): access tokens for API clients (bearer, RFC 6750)
      // and web sessions (cookie). Only the SHA-256 of a token is kept. The
      // address is kept with the account id so that a token never passes to
      // a later account that reuses a purged one's id.
      R"sql(
CREATE TABLE access_tokens(
  id INTEGER PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  account_id INTEGER NOT NULL,
  address TEXT NOT NULL,
  kind TEXT NOT NULL,
  label TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL);
CREATE INDEX access_tokens_account ON access_tokens(account_id);
)sql",
      // Mailing lists (issue 14, src/lists): lists, their members (roles are
      // bits: 1 receives posts, 2 owner, 4 moderator; `disabled` is set by
      // the bounce score past the list's threshold), single-use expiring
      // tokens (join/leave confirmations, moderation), posts held for
      // moderation (a blob reference each) and the posts themselves. A post
      // is one outbound_messages row (its body one blob) whose recipients are
      // the queue state of the fan-out; `verp` makes the runner send each
      // recipient with its own envelope sender, `bulk` puts the post behind
      // person-to-person mail, `list_post_id` keeps the rows once finished
      // (finished_at) as the post's delivery report, and `inflight` marks
      // recipients handed to a connection, so that after a crash they are
      // reported as failed (outcome unknown) instead of sent twice.
      R"sql(
CREATE TABLE lists(
  id INTEGER PRIMARY KEY,
  address TEXT NOT NULL UNIQUE,
  domain_id INTEGER NOT NULL REFERENCES domains(id),
  mode INTEGER NOT NULL DEFAULT 0,
  name TEXT NOT NULL DEFAULT '',
  confirm_text TEXT NOT NULL DEFAULT '',
  welcome_text TEXT NOT NULL DEFAULT '',
  max_message_size INTEGER NOT NULL DEFAULT 0,
  max_posts_per_hour INTEGER NOT NULL DEFAULT 0,
  bounce_threshold INTEGER NOT NULL DEFAULT 0,
  dmarc_rewrite TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  removed_at INTEGER);
CREATE TABLE list_members(
  id INTEGER PRIMARY KEY,
  list_id INTEGER NOT NULL REFERENCES lists(id),
  address TEXT NOT NULL,
  domain TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  roles INTEGER NOT NULL DEFAULT 1,
  delivery INTEGER NOT NULL DEFAULT 1,
  disabled INTEGER NOT NULL DEFAULT 0,
  bounce_score INTEGER NOT NULL DEFAULT 0,
  last_bounce TEXT NOT NULL DEFAULT '',
  joined_at INTEGER NOT NULL,
  UNIQUE(list_id, address));
CREATE TABLE list_tokens(
  token TEXT PRIMARY KEY,
  list_id INTEGER NOT NULL REFERENCES lists(id),
  kind INTEGER NOT NULL,
  address TEXT NOT NULL,
  source TEXT NOT NULL DEFAULT '',
  held_id INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER);
CREATE INDEX list_tokens_address ON list_tokens(list_id, address, created_at);
CREATE TABLE list_held(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  list_id INTEGER NOT NULL REFERENCES lists(id),
  blob_id INTEGER NOT NULL REFERENCES blobs(id),
  sender TEXT NOT NULL,
  reason TEXT NOT NULL,
  created_at INTEGER NOT NULL);
CREATE TABLE list_posts(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  list_id INTEGER NOT NULL REFERENCES lists(id),
  queue_id INTEGER NOT NULL,
  sender TEXT NOT NULL,
  subject TEXT NOT NULL DEFAULT '',
  recipients INTEGER NOT NULL,
  created_at INTEGER NOT NULL);
CREATE INDEX list_posts_list ON list_posts(list_id, id);
ALTER TABLE outbound_messages ADD COLUMN verp INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbound_messages ADD COLUMN list_post_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbound_messages ADD COLUMN finished_at INTEGER;
ALTER TABLE outbound_recipients ADD COLUMN bulk INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbound_recipients ADD COLUMN inflight INTEGER NOT NULL DEFAULT 0;
DROP INDEX outbound_recipients_due;
CREATE INDEX outbound_recipients_due ON outbound_recipients(bulk, next_attempt_at) WHERE state = 0;
CREATE INDEX outbound_recipients_inflight ON outbound_recipients(message_id) WHERE inflight != 0;
)sql",
      // (issue 11, sec-b) Session ends: one row per password change, account
      // removal or purge, or "sign out everywhere". The epoch orders them;
      // `hato serve` reads the rows above the last it saw and ends the
      // account's sessions that logged in under an older epoch
      // (server/account_sessions.h). A row outlives a purged account.
      R"sql(
CREATE TABLE IF NOT EXISTS session_ends(
  epoch INTEGER PRIMARY KEY AUTOINCREMENT,
  account_id INTEGER NOT NULL,
  at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS session_ends_account ON session_ends(account_id, epoch);
)sql",
      // -> +1 (the health watchdog, src/web/health.h): one row that the
      // watchdog's write probe updates when no other write has committed for
      // a while, so a stalled fsync is seen even when the service is idle.
      R"sql(
CREATE TABLE health_probe(
  id INTEGER PRIMARY KEY CHECK (id = 1),
  probed_at INTEGER NOT NULL);
)sql",
      // -> +1 (issue 19, src/sieve): each account's Sieve scripts (at most one
      // active), the last run's error shown to the user, and the
      // once-per-period memories of vacation replies and duplicate tracking.
      R"sql(
CREATE TABLE sieve_scripts(
  account_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  content TEXT NOT NULL,
  active INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY(account_id, name));
CREATE TABLE sieve_status(
  account_id INTEGER PRIMARY KEY,
  error TEXT NOT NULL,
  at INTEGER NOT NULL);
CREATE TABLE sieve_memos(
  account_id INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  key TEXT NOT NULL,
  until INTEGER NOT NULL,
  PRIMARY KEY(account_id, kind, key));
)sql",
      // The web site (issue 13): the admin role (the admin console, `hato
      // admin grant`), and the last use of an access token (app passwords
      // for mail clients are tokens of kind "app"; the member's page shows
      // when each was last used).
      R"sql(
ALTER TABLE accounts ADD COLUMN is_admin INTEGER NOT NULL DEFAULT 0;
ALTER TABLE access_tokens ADD COLUMN last_used_at INTEGER NOT NULL DEFAULT 0;
)sql",
      // -> +1 (issue 16, RFC 3501 section 6.3.6): subscriptions are names. A
      // live mailbox keeps its own in mailboxes.subscribed; a subscribed name
      // whose mailbox was deleted or renamed away stays here, listed by
      // LIST (SUBSCRIBED) as \NonExistent and by LSUB, until UNSUBSCRIBE or
      // until a mailbox of that name is created again.
      R"sql(
CREATE TABLE orphan_subscriptions(
  account_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  PRIMARY KEY(account_id, name)) WITHOUT ROWID;
)sql",
      // -> +1 (issue 13): the account's language for the web pages and the
      // mails the server writes to it ("" = the browser's; "en", "ja").
      R"sql(
ALTER TABLE accounts ADD COLUMN language TEXT NOT NULL DEFAULT '';
)sql",
      // -> +1 (issue 12, JMAP speed): Email/query pages a mailbox's live
      // messages by receivedAt (internal date, then id: the rowid ends every
      // index) without reading the rest, and counts its distinct bodies
      // from a covering index (store.h QueryMailboxEmails).
      R"sql(
CREATE INDEX messages_jmap_date ON messages(mailbox_id, internal_date)
  WHERE expunged_at IS NULL;
CREATE INDEX messages_jmap_blob ON messages(mailbox_id, blob_id) WHERE expunged_at IS NULL;
)sql",
      // -> +1 (issue 12): JMAP's per-account records that are not mail
      // (Identity choices, EmailSubmission records), one JSON document per
      // account and kind, so backups and every node see them
      // (store.h GetJmapDocument; before, files under data/jmap-*).
      R"sql(
CREATE TABLE jmap_documents(
  account_id INTEGER NOT NULL,
  kind TEXT NOT NULL,
  body TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY(account_id, kind));
)sql",
      // -> +1 (issue 16, RFC 5256): each body's SORT/THREAD keys record
      // (imap/proto/sort_record.h), written at delivery, so that SORT and
      // THREAD on a cold server read one row per message. NULL for bodies
      // stored before: their keys are derived from the MIME tree on use.
      R"sql(
ALTER TABLE blobs ADD COLUMN sort_keys BLOB;
)sql",
      // -> +1 (issue 14, fan-out speed): whether a queue entry still has open
      // recipients (RemoveIfFinished after each outcome) is one index probe,
      // not a count over its rows (a list post has one row per member).
      R"sql(
CREATE INDEX outbound_recipients_open ON outbound_recipients(message_id)
  WHERE state IN (0, 1) OR dsn_pending != 0;
)sql",
      // -> +1 (issue 12, RFC 8621 section 2: Mailbox counts without a scan):
      // each mailbox keeps the counts of its live messages (STATUS, LIST,
      // JMAP Mailbox/get), maintained by triggers in the transaction of every
      // change of a message row (insert, expunge, flags, delete), so no write
      // path can forget them: messages, unseen, octets, \Deleted ones and
      // their octets, recent ones (uid above recent_uid; recounted when the
      // mark moves, which reads only the rows above it) and distinct bodies
      // (JMAP Emails: a row counts unless another live row of the mailbox has
      // its body, probed through messages_jmap_blob). SQLite runs row
      // triggers as each row changes, so a statement changing several rows
      // of one body counts right. CheckReferences compares them with a
      // recount (hato fsck). And messages_jmap_date covers Email/query's
      // page (expunged_at, always NULL in it, is a column: an equality the
      // planner sees), so a position skips index entries, not rows.
      R"sql(
ALTER TABLE mailboxes ADD COLUMN n_messages INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN n_unseen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN n_size INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN n_deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN n_deleted_size INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN n_recent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN n_emails INTEGER NOT NULL DEFAULT 0;
UPDATE mailboxes SET (n_messages, n_unseen, n_size, n_deleted, n_deleted_size, n_recent,
                      n_emails) =
  (SELECT count(*), coalesce(sum(m.flags & 1 = 0), 0), coalesce(sum(m.size), 0),
          coalesce(sum(m.flags & 8 != 0), 0),
          coalesce(sum(CASE WHEN m.flags & 8 != 0 THEN m.size ELSE 0 END), 0),
          coalesce(sum(m.uid > mailboxes.recent_uid), 0), count(DISTINCT m.blob_id)
   FROM messages m WHERE m.mailbox_id = mailboxes.id AND m.expunged_at IS NULL);
CREATE TRIGGER messages_counts_insert AFTER INSERT ON messages WHEN NEW.expunged_at IS NULL
BEGIN
  UPDATE mailboxes SET n_messages = n_messages + 1, n_unseen = n_unseen + (NEW.flags & 1 = 0),
    n_size = n_size + NEW.size, n_deleted = n_deleted + (NEW.flags & 8 != 0),
    n_deleted_size = n_deleted_size + (CASE WHEN NEW.flags & 8 != 0 THEN NEW.size ELSE 0 END),
    n_recent = n_recent + (NEW.uid > recent_uid),
    n_emails = n_emails + NOT EXISTS (SELECT 1 FROM messages d
      WHERE d.mailbox_id = NEW.mailbox_id AND d.blob_id = NEW.blob_id
      AND d.expunged_at IS NULL AND d.id != NEW.id)
  WHERE id = NEW.mailbox_id;
END;
CREATE TRIGGER messages_counts_delete AFTER DELETE ON messages WHEN OLD.expunged_at IS NULL
BEGIN
  UPDATE mailboxes SET n_messages = n_messages - 1, n_unseen = n_unseen - (OLD.flags & 1 = 0),
    n_size = n_size - OLD.size, n_deleted = n_deleted - (OLD.flags & 8 != 0),
    n_deleted_size = n_deleted_size - (CASE WHEN OLD.flags & 8 != 0 THEN OLD.size ELSE 0 END),
    n_recent = n_recent - (OLD.uid > recent_uid),
    n_emails = n_emails - NOT EXISTS (SELECT 1 FROM messages d
      WHERE d.mailbox_id = OLD.mailbox_id AND d.blob_id = OLD.blob_id
      AND d.expunged_at IS NULL AND d.id != OLD.id)
  WHERE id = OLD.mailbox_id;
END;
CREATE TRIGGER messages_counts_update
  AFTER UPDATE OF mailbox_id, uid, flags, size, expunged_at, blob_id ON messages
  WHEN OLD.mailbox_id != NEW.mailbox_id OR OLD.uid != NEW.uid
    OR (OLD.flags & 9) != (NEW.flags & 9) OR OLD.size != NEW.size OR OLD.blob_id != NEW.blob_id
    OR (OLD.expunged_at IS NULL) != (NEW.expunged_at IS NULL)
BEGIN
  UPDATE mailboxes SET n_messages = n_messages - 1, n_unseen = n_unseen - (OLD.flags & 1 = 0),
    n_size = n_size - OLD.size, n_deleted = n_deleted - (OLD.flags & 8 != 0),
    n_deleted_size = n_deleted_size - (CASE WHEN OLD.flags & 8 != 0 THEN OLD.size ELSE 0 END),
    n_recent = n_recent - (OLD.uid > recent_uid),
    n_emails = n_emails - NOT EXISTS (SELECT 1 FROM messages d
      WHERE d.mailbox_id = OLD.mailbox_id AND d.blob_id = OLD.blob_id
      AND d.expunged_at IS NULL AND d.id != OLD.id)
  WHERE id = OLD.mailbox_id AND OLD.expunged_at IS NULL;
  UPDATE mailboxes SET n_messages = n_messages + 1, n_unseen = n_unseen + (NEW.flags & 1 = 0),
    n_size = n_size + NEW.size, n_deleted = n_deleted + (NEW.flags & 8 != 0),
    n_deleted_size = n_deleted_size + (CASE WHEN NEW.flags & 8 != 0 THEN NEW.size ELSE 0 END),
    n_recent = n_recent + (NEW.uid > recent_uid),
    n_emails = n_emails + NOT EXISTS (SELECT 1 FROM messages d
      WHERE d.mailbox_id = NEW.mailbox_id AND d.blob_id = NEW.blob_id
      AND d.expunged_at IS NULL AND d.id != NEW.id)
  WHERE id = NEW.mailbox_id AND NEW.expunged_at IS NULL;
END;
CREATE TRIGGER mailboxes_recent_mark AFTER UPDATE OF recent_uid ON mailboxes
  WHEN OLD.recent_uid != NEW.recent_uid
BEGIN
  UPDATE mailboxes SET n_recent = (SELECT count(*) FROM messages m
    WHERE m.mailbox_id = NEW.id AND m.uid > NEW.recent_uid AND m.expunged_at IS NULL)
  WHERE id = NEW.id;
END;
DROP INDEX messages_jmap_date;
CREATE INDEX messages_jmap_date ON messages(mailbox_id, expunged_at, internal_date)
  WHERE expunged_at IS NULL;
)sql",
      // -> +1 (issue 12, RFC 8621 section 7: EmailSubmission deliveryStatus):
      // the outcome of each recipient of a message that left the queue with
      // every recipient final (delivered, or failed with the last reply),
      // written in the transaction that removes it; read by
      // ListFinishedRecipients, purged with the expired mail (PurgeExpired).
      R"sql(
CREATE TABLE outbound_finished(
  message_id INTEGER NOT NULL,
  address TEXT NOT NULL,
  state INTEGER NOT NULL,
  last_error TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  finished_at INTEGER NOT NULL);
CREATE INDEX outbound_finished_message ON outbound_finished(message_id);
CREATE INDEX outbound_finished_at ON outbound_finished(finished_at);
)sql",
      // -> +1 (issue 16, RFC 8514 SAVEDATE): when each message was saved in its
      // mailbox (delivery, APPEND, COPY, MOVE). NULL for messages stored
      // before: their internal date stands in.
      R"sql(
ALTER TABLE messages ADD COLUMN saved_at INTEGER;
)sql",
      // -> +1 (issue 19, RFC 9661 SieveScript/changes and rename): each
      // script gets an id that survives renames, and the account's script
      // change counter stamps when it was created and last changed; deleted
      // scripts leave a tombstone (at most kMaxSieveTombstones per account,
      // `forgotten` = the newest one dropped). Existing scripts: ids 1..n by
      // name, counter 1.
      R"sql(
ALTER TABLE sieve_scripts ADD COLUMN id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sieve_scripts ADD COLUMN created_seq INTEGER NOT NULL DEFAULT 1;
ALTER TABLE sieve_scripts ADD COLUMN changed_seq INTEGER NOT NULL DEFAULT 1;
UPDATE sieve_scripts SET id = (SELECT count(*) FROM sieve_scripts s WHERE
  s.account_id = sieve_scripts.account_id AND s.name <= sieve_scripts.name);
CREATE TABLE sieve_state(
  account_id INTEGER PRIMARY KEY,
  seq INTEGER NOT NULL,
  next_id INTEGER NOT NULL,
  forgotten INTEGER NOT NULL DEFAULT 0);
INSERT INTO sieve_state(account_id, seq, next_id)
  SELECT account_id, 1, max(id) + 1 FROM sieve_scripts GROUP BY account_id;
CREATE TABLE sieve_scripts_gone(
  account_id INTEGER NOT NULL,
  id INTEGER NOT NULL,
  name TEXT NOT NULL,
  created_seq INTEGER NOT NULL,
  gone_seq INTEGER NOT NULL,
  PRIMARY KEY(account_id, id));
)sql",
      // -> +1 (issue 14 item 7, RFC 2342 shared namespace): each list's archive
      // is the INBOX of a system account of the list (address
      // LIST@DOMAIN#archive-ID, no password, never listed by hato user list),
      // made with the list or at its first post; 0 = not made yet. The index
      // finds a user's lists (Store::ListsOfMember, IMAP LIST).
      R"sql(
ALTER TABLE lists ADD COLUMN archive_account_id INTEGER NOT NULL DEFAULT 0;
CREATE INDEX list_members_address ON list_members(address);
)sql",
      // -> +1 (issue 12, RFC 8621 section 2: Mailbox totalThreads and
      // unreadThreads without a scan): each body keeps its JMAP threadId
      // (StoreOptions::thread_id, jmap/mail.cc ThreadOf: the root of its
      // reply chain), NULL for bodies stored before, which count as a
      // Thread of their own ("#" + blob id) until BackfillSortKeys fills
      // them. mailbox_threads counts each mailbox's live messages per
      // Thread (n, and unseen: without \Seen); a row goes when n reaches 0.
      // The triggers on messages keep it in the transaction of every change
      // of a message row, as the mailbox counters above; those on
      // mailbox_threads keep mailboxes.n_threads (rows) and
      // n_unread_threads (rows with unseen > 0); blobs_thread moves a body's
      // messages when its threadId is filled. CheckReferences compares them
      // with a recount, RecountMailboxes rewrites them (hato fsck --repair).
      R"sql(
ALTER TABLE blobs ADD COLUMN thread_id TEXT;
ALTER TABLE mailboxes ADD COLUMN n_threads INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN n_unread_threads INTEGER NOT NULL DEFAULT 0;
CREATE TABLE mailbox_threads(
  mailbox_id INTEGER NOT NULL,
  thread TEXT NOT NULL,
  n INTEGER NOT NULL,
  unseen INTEGER NOT NULL,
  PRIMARY KEY(mailbox_id, thread)) WITHOUT ROWID;
CREATE TRIGGER mailbox_threads_insert AFTER INSERT ON mailbox_threads
BEGIN
  UPDATE mailboxes SET n_threads = n_threads + (NEW.n > 0),
    n_unread_threads = n_unread_threads + (NEW.unseen > 0)
  WHERE id = NEW.mailbox_id;
END;
CREATE TRIGGER mailbox_threads_update AFTER UPDATE ON mailbox_threads
BEGIN
  UPDATE mailboxes SET n_threads = n_threads + (NEW.n > 0) - (OLD.n > 0),
    n_unread_threads = n_unread_threads + (NEW.unseen > 0) - (OLD.unseen > 0)
  WHERE id = NEW.mailbox_id;
  DELETE FROM mailbox_threads WHERE mailbox_id = NEW.mailbox_id AND thread = NEW.thread
    AND n <= 0;
END;
CREATE TRIGGER mailbox_threads_delete AFTER DELETE ON mailbox_threads
BEGIN
  UPDATE mailboxes SET n_threads = n_threads - (OLD.n > 0),
    n_unread_threads = n_unread_threads - (OLD.unseen > 0)
  WHERE id = OLD.mailbox_id;
END;
INSERT INTO mailbox_threads(mailbox_id, thread, n, unseen)
  SELECT m.mailbox_id, '#' || m.blob_id, count(*), sum(m.flags & 1 = 0) FROM messages m
  WHERE m.expunged_at IS NULL GROUP BY m.mailbox_id, m.blob_id;
CREATE TRIGGER messages_threads_insert AFTER INSERT ON messages WHEN NEW.expunged_at IS NULL
BEGIN
  INSERT INTO mailbox_threads(mailbox_id, thread, n, unseen)
    SELECT NEW.mailbox_id, coalesce(b.thread_id, '#' || b.id), 1, NEW.flags & 1 = 0
    FROM blobs b WHERE b.id = NEW.blob_id
    ON CONFLICT(mailbox_id, thread) DO UPDATE SET n = n + 1, unseen = unseen + excluded.unseen;
END;
CREATE TRIGGER messages_threads_delete AFTER DELETE ON messages WHEN OLD.expunged_at IS NULL
BEGIN
  UPDATE mailbox_threads SET n = n - 1, unseen = unseen - (OLD.flags & 1 = 0)
  WHERE mailbox_id = OLD.mailbox_id AND thread =
    (SELECT coalesce(b.thread_id, '#' || b.id) FROM blobs b WHERE b.id = OLD.blob_id);
END;
CREATE TRIGGER messages_threads_update
  AFTER UPDATE OF mailbox_id, flags, expunged_at, blob_id ON messages
  WHEN OLD.mailbox_id != NEW.mailbox_id OR (OLD.flags & 1) != (NEW.flags & 1)
    OR OLD.blob_id != NEW.blob_id OR (OLD.expunged_at IS NULL) != (NEW.expunged_at IS NULL)
BEGIN
  UPDATE mailbox_threads SET n = n - 1, unseen = unseen - (OLD.flags & 1 = 0)
  WHERE OLD.expunged_at IS NULL AND mailbox_id = OLD.mailbox_id AND thread =
    (SELECT coalesce(b.thread_id, '#' || b.id) FROM blobs b WHERE b.id = OLD.blob_id);
  INSERT INTO mailbox_threads(mailbox_id, thread, n, unseen)
    SELECT NEW.mailbox_id, coalesce(b.thread_id, '#' || b.id), 1, NEW.flags & 1 = 0
    FROM blobs b WHERE b.id = NEW.blob_id AND NEW.expunged_at IS NULL
    ON CONFLICT(mailbox_id, thread) DO UPDATE SET n = n + 1, unseen = unseen + excluded.unseen;
END;
CREATE TRIGGER blobs_thread AFTER UPDATE OF thread_id ON blobs
  WHEN OLD.thread_id IS NOT NEW.thread_id
BEGIN
  UPDATE mailbox_threads SET
    n = n - (SELECT count(*) FROM messages m WHERE m.blob_id = OLD.id
      AND m.mailbox_id = mailbox_threads.mailbox_id AND m.expunged_at IS NULL),
    unseen = unseen - (SELECT count(*) FROM messages m WHERE m.blob_id = OLD.id
      AND m.mailbox_id = mailbox_threads.mailbox_id AND m.expunged_at IS NULL
      AND m.flags & 1 = 0)
  WHERE thread = coalesce(OLD.thread_id, '#' || OLD.id) AND mailbox_id IN
    (SELECT m.mailbox_id FROM messages m WHERE m.blob_id = OLD.id AND m.expunged_at IS NULL);
  INSERT INTO mailbox_threads(mailbox_id, thread, n, unseen)
    SELECT m.mailbox_id, coalesce(NEW.thread_id, '#' || NEW.id), count(*), sum(m.flags & 1 = 0)
    FROM messages m WHERE m.blob_id = NEW.id AND m.expunged_at IS NULL GROUP BY m.mailbox_id
    ON CONFLICT(mailbox_id, thread) DO UPDATE SET n = n + excluded.n,
      unseen = unseen + excluded.unseen;
END;
)sql",
      // Per-member \Seen in list archives (issue 14): the archive mailbox's
      // UIDs each member account has seen, the member's own rows (the
      // archive's flags stay shared and untouched; Store::SetArchiveSeen).
      R"sql(
CREATE TABLE archive_seen(
  account_id INTEGER NOT NULL,
  mailbox_id INTEGER NOT NULL,
  uid INTEGER NOT NULL,
  PRIMARY KEY(account_id, mailbox_id, uid)) WITHOUT ROWID;
)sql",
      // Admin retries and releases asked per queued recipient (issue 14): a
      // deferral recorded for an attempt that began before one keeps the
      // attempt it asked for (ApplyOutcomes) instead of pushing it back.
      R"sql(
ALTER TABLE outbound_recipients ADD COLUMN retry_requests INTEGER NOT NULL DEFAULT 0;
)sql",
  };
  return kMigrations;
}

Result<int> SchemaVersion(Db& db) {
  auto st = db.Prepare("PRAGMA user_version");
  if (!st) return st.error();
  auto row = st->Step();
  if (!row) return row.error();
  return static_cast<int>(st->Int(0));
}

Status Migrate(Db& db, int target) {
  const auto& steps = Migrations();
  if (target < 0) target = static_cast<int>(steps.size());
  auto current = SchemaVersion(db);
  if (!current) return current.error();
  if (*current > static_cast<int>(steps.size())) {
    return Err(ErrorKind::kInvalid, "database schema version " + std::to_string(*current) +
                                        " is newer than this hato (" +
                                        std::to_string(steps.size()) + ")");
  }
  for (int v = *current; v < target; ++v) {
    if (auto s = db.Exec("BEGIN IMMEDIATE"); !s) return s;
    Status s = db.Exec(steps[static_cast<size_t>(v)]);
    if (s) s = db.Exec("PRAGMA user_version = " + std::to_string(v + 1));
    if (s) s = db.Exec("COMMIT");
    if (!s) {
      (void)db.Exec("ROLLBACK");
      return Err(s.error().kind,
                 "migration to schema " + std::to_string(v + 1) + " failed: " + s.error().message);
    }
  }
  return Ok();
}

namespace {

// Runs `sql` and adds format(row) for each row to `out`.
template <typename Format>
Status CollectRows(Db& db, const std::string& sql, std::vector<std::string>& out, Format format) {
  auto s = db.Prepare(sql);
  if (!s) return s.error();
  return s->ForEachRow([&](Stmt& row) { out.push_back(format(row)); });
}

}  // namespace

namespace {

// Each mailbox's counts recounted from its live messages, in the columns'
// order (mailboxes n_*); recent ones need the mailbox's recent_uid (x).
constexpr const char* kRecount =
    "SELECT count(*), coalesce(sum(m.flags & 1 = 0), 0), coalesce(sum(m.size), 0), "
    "coalesce(sum(m.flags & 8 != 0), 0), "
    "coalesce(sum(CASE WHEN m.flags & 8 != 0 THEN m.size ELSE 0 END), 0), "
    "coalesce(sum(m.uid > x.recent_uid), 0), count(DISTINCT m.blob_id) FROM messages m "
    "WHERE m.mailbox_id = x.id AND m.expunged_at IS NULL";
// The (mailbox, Thread) rows mailbox_threads should hold.
constexpr const char* kThreadRecount =
    "SELECT m.mailbox_id, coalesce(b.thread_id, '#' || b.id), count(*), "
    "sum(m.flags & 1 = 0) FROM messages m JOIN blobs b ON b.id = m.blob_id "
    "WHERE m.expunged_at IS NULL GROUP BY 1, 2";

Result<bool> HasThreadCounts(Db& db) {
  auto s = db.Prepare("SELECT 1 FROM pragma_table_info('mailboxes') WHERE name = 'n_threads'");
  if (!s) return s.error();
  return s->Step();
}

}  // namespace

Result<std::vector<std::string>> CounterDisagreements(Db& db, size_t limit) {
  auto threads = HasThreadCounts(db);
  if (!threads) return threads.error();
  std::string sql =
      std::string(
          "SELECT x.id, x.name FROM mailboxes x WHERE (x.n_messages, x.n_unseen, "
          "x.n_size, x.n_deleted, x.n_deleted_size, x.n_recent, x.n_emails) IS NOT (") +
      kRecount + ")";
  if (*threads) {
    // The Thread counters, and the rows they are kept from.
    sql += std::string(
               " OR (x.n_threads, x.n_unread_threads) IS NOT (SELECT count(*), "
               "coalesce(sum(t.unseen > 0), 0) FROM mailbox_threads t WHERE t.mailbox_id = x.id) "
               "OR x.id IN (SELECT mailbox_id FROM (SELECT mailbox_id, thread, n, unseen FROM "
               "mailbox_threads EXCEPT ") +
           kThreadRecount + ") UNION SELECT mailbox_id FROM (" + kThreadRecount +
           " EXCEPT SELECT mailbox_id, thread, n, unseen FROM mailbox_threads))";
  }
  sql += " ORDER BY x.id LIMIT " + std::to_string(limit);
  std::vector<std::string> out;
  auto st = CollectRows(db, sql, out, [](Stmt& s) {
    return "mailbox " + std::to_string(s.Int(0)) + " (" + s.Text(1) + ") " +
           std::string(kCounterProblem);
  });
  if (!st) return st.error();
  return out;
}

Status RecountMailboxCounters(Db& db) {
  std::string sql = std::string(
                        "UPDATE mailboxes AS x SET (n_messages, n_unseen, n_size, n_deleted, "
                        "n_deleted_size, n_recent, n_emails) = (") +
                    kRecount + ")";
  if (auto st = db.Exec(sql); !st) return st;
  auto threads = HasThreadCounts(db);
  if (!threads) return threads.error();
  if (!*threads) return Ok();
  // The rows' triggers move the counters as the rows go and come back; the
  // last statement sets them from the rows whatever they did.
  if (auto st = db.Exec("DELETE FROM mailbox_threads"); !st) return st;
  if (auto st = db.Exec(std::string("INSERT INTO mailbox_threads(mailbox_id, thread, n, unseen) ") +
                        kThreadRecount);
      !st) {
    return st;
  }
  return db.Exec(
      "UPDATE mailboxes AS x SET (n_threads, n_unread_threads) = (SELECT count(*), "
      "coalesce(sum(t.unseen > 0), 0) FROM mailbox_threads t WHERE t.mailbox_id = x.id)");
}

Result<std::vector<std::string>> CheckReferences(Db& db, PageCheck pages) {
  std::vector<std::string> out;
  std::string pragma = pages == PageCheck::kFull ? "PRAGMA integrity_check" : "PRAGMA quick_check";
  auto st = CollectRows(db, pragma, out, [](Stmt& s) { return "metadata: " + s.Text(0); });
  if (!st) return st.error();
  if (out.size() == 1 && out[0] == "metadata: ok") out.clear();
  st = CollectRows(
      db,
      "SELECT a.address, x.name, m.uid FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id "
      "JOIN accounts a ON a.id = x.account_id LEFT JOIN blobs b ON b.id = m.blob_id "
      "WHERE b.id IS NULL",
      out, [](Stmt& s) {
        return "message " + s.Text(0) + "/" + s.Text(1) + " uid " + std::to_string(s.Int(2)) +
               " points at a missing body";
      });
  if (!st) return st.error();
  st = CollectRows(
      db,
      "SELECT m.id FROM messages m LEFT JOIN mailboxes x ON x.id = m.mailbox_id "
      "WHERE x.id IS NULL LIMIT 10",
      out, [](Stmt& s) { return "message id " + std::to_string(s.Int(0)) + " has no mailbox"; });
  if (!st) return st.error();
  // Queued outbound messages hold a reference too (schema version 6 on).
  auto has_queue =
      db.Prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbound_messages'");
  if (!has_queue) return has_queue.error();
  auto queue_row = has_queue->Step();
  if (!queue_row) return queue_row.error();
  std::string queued =
      *queue_row ? " + (SELECT count(*) FROM outbound_messages o WHERE o.blob_id = b.id)" : "";
  // Posts held for moderation too (mailing lists).
  auto has_held =
      db.Prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'list_held'");
  if (!has_held) return has_held.error();
  auto held_row = has_held->Step();
  if (!held_row) return held_row.error();
  if (*held_row) queued += " + (SELECT count(*) FROM list_held h WHERE h.blob_id = b.id)";
  st = CollectRows(
      db,
      "SELECT hex(b.sha256), b.refs, (SELECT count(*) FROM messages m WHERE m.blob_id = b.id)" +
          queued + " AS n FROM blobs b WHERE b.refs != n",
      out, [](Stmt& s) {
        return "body " + AsciiLower(s.Text(0)) + " has refs=" + std::to_string(s.Int(1)) + " but " +
               std::to_string(s.Int(2)) + " users";
      });
  if (!st) return st.error();
  // The mailbox counters the triggers keep (the Mailbox counts migration on).
  auto has_counts =
      db.Prepare("SELECT 1 FROM pragma_table_info('mailboxes') WHERE name = 'n_emails'");
  if (!has_counts) return has_counts.error();
  auto counts_row = has_counts->Step();
  if (!counts_row) return counts_row.error();
  if (*counts_row) {
    auto bad = CounterDisagreements(db, 10);
    if (!bad) return bad.error();
    for (auto& p : *bad) out.push_back(std::move(p));
  }
  return out;
}

}  // namespace hato::store::sqlite
