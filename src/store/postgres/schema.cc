#include "store/postgres/schema.h"

namespace hato::store::pg {

const std::vector<std::string>& Migrations() {
  static const std::vector<std::string> kMigrations = {
      // 0 -> 1: the schema of the embedded store at its version 9 (docs/storage.md),
      // with the bodies in the database: one row per content-addressed body
      // (blobs) and its payload, zstd-compressed when that saves 1/8, in
      // chunks of at most 1 MiB (blob_chunks). blob_text is the decoded text
      // for SEARCH BODY/TEXT (scanned: no trigram extension is assumed).
      R"sql(
CREATE TABLE domains(
  id bigserial PRIMARY KEY,
  name text NOT NULL UNIQUE,
  created_at bigint NOT NULL);
CREATE TABLE accounts(
  id bigserial PRIMARY KEY,
  address text NOT NULL,
  domain_id bigint NOT NULL REFERENCES domains(id),
  password_hash text NOT NULL,
  created_at bigint NOT NULL,
  removed_at bigint,
  quota_bytes bigint,
  scram_sha256 text);
CREATE UNIQUE INDEX accounts_live ON accounts(address) WHERE removed_at IS NULL;
CREATE TABLE mailboxes(
  id bigserial PRIMARY KEY,
  account_id bigint NOT NULL REFERENCES accounts(id),
  name text NOT NULL,
  uidvalidity bigint NOT NULL,
  uidnext bigint NOT NULL,
  highest_modseq bigint NOT NULL DEFAULT 1,
  special_use text NOT NULL DEFAULT '',
  subscribed integer NOT NULL DEFAULT 1,
  deleted_at bigint,
  recent_uid bigint NOT NULL DEFAULT 0,
  UNIQUE(account_id, name));
CREATE TABLE blobs(
  id bigserial PRIMARY KEY,
  sha256 bytea NOT NULL UNIQUE,
  stored_length bigint NOT NULL,
  size bigint NOT NULL,
  codec integer NOT NULL,
  refs bigint NOT NULL,
  mime bytea);
CREATE TABLE blob_chunks(
  blob_id bigint NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
  seq integer NOT NULL,
  data bytea NOT NULL,
  PRIMARY KEY(blob_id, seq));
CREATE TABLE blob_text(
  blob_id bigint PRIMARY KEY REFERENCES blobs(id) ON DELETE CASCADE,
  header text NOT NULL,
  body text NOT NULL);
CREATE TABLE messages(
  id bigserial PRIMARY KEY,
  mailbox_id bigint NOT NULL REFERENCES mailboxes(id),
  uid bigint NOT NULL,
  blob_id bigint NOT NULL REFERENCES blobs(id),
  size bigint NOT NULL,
  internal_date bigint NOT NULL,
  flags integer NOT NULL DEFAULT 0,
  return_path text NOT NULL,
  expunged_at bigint,
  modseq bigint NOT NULL DEFAULT 1,
  keywords text NOT NULL DEFAULT '',
  UNIQUE(mailbox_id, uid));
CREATE INDEX messages_expunged ON messages(expunged_at) WHERE expunged_at IS NOT NULL;
CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);
CREATE INDEX messages_blob ON messages(blob_id);
CREATE TABLE outbound_messages(
  id bigserial PRIMARY KEY,
  blob_id bigint NOT NULL REFERENCES blobs(id),
  sender text NOT NULL,
  envid text NOT NULL DEFAULT '',
  ret_hdrs integer NOT NULL DEFAULT 0,
  smtputf8 integer NOT NULL DEFAULT 0,
  eight_bit integer NOT NULL DEFAULT 0,
  size bigint NOT NULL,
  created_at bigint NOT NULL);
CREATE TABLE outbound_recipients(
  id bigserial PRIMARY KEY,
  message_id bigint NOT NULL REFERENCES outbound_messages(id),
  address text NOT NULL,
  domain text NOT NULL,
  notify integer NOT NULL DEFAULT 0,
  orcpt text NOT NULL DEFAULT '',
  state integer NOT NULL DEFAULT 0,
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at bigint NOT NULL,
  last_error text NOT NULL DEFAULT '',
  dsn_pending integer NOT NULL DEFAULT 0,
  delay_warned integer NOT NULL DEFAULT 0);
CREATE INDEX outbound_recipients_due ON outbound_recipients(next_attempt_at) WHERE state = 0;
CREATE INDEX outbound_recipients_message ON outbound_recipients(message_id);
CREATE INDEX outbound_recipients_dsn ON outbound_recipients(message_id) WHERE dsn_pending != 0;
CREATE INDEX outbound_recipients_held ON outbound_recipients(message_id) WHERE state = 1;
CREATE TABLE submission_log(
  account_id bigint NOT NULL,
  at bigint NOT NULL);
CREATE INDEX submission_log_account ON submission_log(account_id, at);
CREATE TABLE aliases(
  id bigserial PRIMARY KEY,
  address text NOT NULL UNIQUE,
  domain_id bigint NOT NULL REFERENCES domains(id),
  account_id bigint NOT NULL REFERENCES accounts(id),
  created_at bigint NOT NULL);
CREATE INDEX aliases_account ON aliases(account_id);
)sql",
      // 1 -> 2: outbound leases for several nodes on one database. A node that
      // lists due recipients claims them (leased_by = its id) until
      // leased_until (unix seconds); other nodes skip them until then, so a
      // node killed mid-delivery has its work taken over after the lease.
      R"sql(
ALTER TABLE outbound_recipients ADD COLUMN leased_by text;
ALTER TABLE outbound_recipients ADD COLUMN leased_until bigint NOT NULL DEFAULT 0;
)sql",
      // 2 -> 3: session ends (server/account_sessions.h): one row per
      // password change, removal or "sign out everywhere"; every node ends
      // the account's sessions that logged in under an older epoch.
      R"sql(
CREATE TABLE session_ends(
  epoch bigserial PRIMARY KEY,
  account_id bigint NOT NULL,
  at bigint NOT NULL);
CREATE INDEX session_ends_account ON session_ends(account_id, epoch);
)sql",
      // 3 -> 4 (issue 19, src/sieve): Sieve scripts, the last run's error,
      // and the once-per-period memories (vacation replies, duplicate).
      R"sql(
CREATE TABLE sieve_scripts(
  account_id bigint NOT NULL,
  name text NOT NULL,
  content text NOT NULL,
  active boolean NOT NULL DEFAULT false,
  updated_at bigint NOT NULL,
  PRIMARY KEY(account_id, name));
CREATE TABLE sieve_status(
  account_id bigint PRIMARY KEY,
  error text NOT NULL,
  at bigint NOT NULL);
CREATE TABLE sieve_memos(
  account_id bigint NOT NULL,
  kind integer NOT NULL,
  key text NOT NULL,
  until bigint NOT NULL,
  PRIMARY KEY(account_id, kind, key));
)sql",
      // 4 -> 5: access tokens (http/auth.h: bearer tokens and the web UI's
      // session cookies), only their SHA-256 stored, as in the embedded store.
      R"sql(
CREATE TABLE access_tokens(
  id bigserial PRIMARY KEY,
  hash text NOT NULL UNIQUE,
  account_id bigint NOT NULL,
  address text NOT NULL,
  kind text NOT NULL,
  label text NOT NULL DEFAULT '',
  created_at bigint NOT NULL,
  expires_at bigint NOT NULL DEFAULT 0);
CREATE INDEX access_tokens_account ON access_tokens(account_id);
)sql",
      // 5 -> 6 (issue 16, RFC 3501 section 6.3.6): subscribed names whose
      // mailbox was deleted or renamed away (see the SQLite schema).
      R"sql(
CREATE TABLE orphan_subscriptions(
  account_id bigint NOT NULL,
  name text NOT NULL,
  PRIMARY KEY(account_id, name));
)sql",
      // The web site (issue 13; see the SQLite schema): the admin role
      // (the admin console, `hato admin grant`) and the last login with an
      // access token (app passwords show their last use).
      R"sql(
ALTER TABLE accounts ADD COLUMN is_admin integer NOT NULL DEFAULT 0;
ALTER TABLE access_tokens ADD COLUMN last_used_at bigint NOT NULL DEFAULT 0;
)sql",
      // 7 -> 8 (issue 15, store/postgres/sharded.h): accounts spread over
      // several PostgreSQL clusters. In the directory database (the main
      // one) shard_directory says which shard holds an account's mail (no
      // row: main) and shards numbers each shard (its id range). In every
      // database accounts.moved_to is NULL where the account's mail lives;
      // elsewhere it names the shard that holds it, and writes are refused.
      R"sql(
ALTER TABLE accounts ADD COLUMN moved_to text;
CREATE TABLE shard_directory(
  account_id bigint PRIMARY KEY,
  shard text NOT NULL,
  moving_to text,
  previous text,
  delete_after bigint NOT NULL DEFAULT 0,
  moved_at bigint NOT NULL DEFAULT 0);
CREATE INDEX shard_directory_previous ON shard_directory(delete_after) WHERE previous IS NOT NULL;
CREATE TABLE shards(
  name text PRIMARY KEY,
  number integer NOT NULL UNIQUE);
)sql",
      // 8 -> 9: the account's language (issue 13; see the SQLite schema).
      R"sql(
ALTER TABLE accounts ADD COLUMN language text NOT NULL DEFAULT '';
)sql",
      // -> +1 (issue 12, JMAP speed): Email/query by receivedAt and the
      // distinct bodies of a mailbox from indexes (see the SQLite schema).
      R"sql(
CREATE INDEX messages_jmap_date ON messages(mailbox_id, internal_date, id)
  WHERE expunged_at IS NULL;
CREATE INDEX messages_jmap_blob ON messages(mailbox_id, blob_id) WHERE expunged_at IS NULL;
)sql",
      // -> +1 (issue 12): JMAP's per-account records that are not mail
      // (see the SQLite schema).
      R"sql(
CREATE TABLE jmap_documents(
  account_id bigint NOT NULL,
  kind text NOT NULL,
  body text NOT NULL,
  updated_at bigint NOT NULL,
  PRIMARY KEY(account_id, kind));
)sql",
      // -> +1 (issue 16, RFC 5256): each body's SORT/THREAD keys record
      // (see the SQLite schema).
      R"sql(
ALTER TABLE blobs ADD COLUMN sort_keys bytea;
)sql",
      // Mailing lists (issue 14, src/lists; store/postgres/pg_lists.h): the
      // tables of the embedded store's lists migration, and the queue columns
      // of a fan-out (verp, bulk, list_post_id, finished_at, inflight).
      R"sql(
CREATE TABLE lists(
  id bigserial PRIMARY KEY,
  address text NOT NULL UNIQUE,
  domain_id bigint NOT NULL REFERENCES domains(id),
  mode integer NOT NULL DEFAULT 0,
  name text NOT NULL DEFAULT '',
  confirm_text text NOT NULL DEFAULT '',
  welcome_text text NOT NULL DEFAULT '',
  max_message_size bigint NOT NULL DEFAULT 0,
  max_posts_per_hour bigint NOT NULL DEFAULT 0,
  bounce_threshold bigint NOT NULL DEFAULT 0,
  dmarc_rewrite text NOT NULL DEFAULT '',
  created_at bigint NOT NULL,
  removed_at bigint);
CREATE TABLE list_members(
  id bigserial PRIMARY KEY,
  list_id bigint NOT NULL REFERENCES lists(id),
  address text NOT NULL,
  domain text NOT NULL,
  name text NOT NULL DEFAULT '',
  roles integer NOT NULL DEFAULT 1,
  delivery integer NOT NULL DEFAULT 1,
  disabled integer NOT NULL DEFAULT 0,
  bounce_score integer NOT NULL DEFAULT 0,
  last_bounce text NOT NULL DEFAULT '',
  joined_at bigint NOT NULL,
  UNIQUE(list_id, address));
CREATE TABLE list_tokens(
  token text PRIMARY KEY,
  list_id bigint NOT NULL REFERENCES lists(id),
  kind integer NOT NULL,
  address text NOT NULL,
  source text NOT NULL DEFAULT '',
  held_id bigint NOT NULL DEFAULT 0,
  created_at bigint NOT NULL,
  expires_at bigint NOT NULL,
  used_at bigint);
CREATE INDEX list_tokens_address ON list_tokens(list_id, address, created_at);
CREATE TABLE list_held(
  id bigserial PRIMARY KEY,
  list_id bigint NOT NULL REFERENCES lists(id),
  blob_id bigint NOT NULL REFERENCES blobs(id),
  sender text NOT NULL,
  reason text NOT NULL,
  created_at bigint NOT NULL);
CREATE TABLE list_posts(
  id bigserial PRIMARY KEY,
  list_id bigint NOT NULL REFERENCES lists(id),
  queue_id bigint NOT NULL,
  sender text NOT NULL,
  subject text NOT NULL DEFAULT '',
  recipients bigint NOT NULL,
  created_at bigint NOT NULL);
CREATE INDEX list_posts_list ON list_posts(list_id, id);
ALTER TABLE outbound_messages ADD COLUMN verp integer NOT NULL DEFAULT 0;
ALTER TABLE outbound_messages ADD COLUMN list_post_id bigint NOT NULL DEFAULT 0;
ALTER TABLE outbound_messages ADD COLUMN finished_at bigint;
ALTER TABLE outbound_recipients ADD COLUMN bulk integer NOT NULL DEFAULT 0;
ALTER TABLE outbound_recipients ADD COLUMN inflight integer NOT NULL DEFAULT 0;
DROP INDEX outbound_recipients_due;
CREATE INDEX outbound_recipients_due ON outbound_recipients(bulk, next_attempt_at) WHERE state = 0;
CREATE INDEX outbound_recipients_inflight ON outbound_recipients(message_id) WHERE inflight != 0;
)sql",
      // -> +1 (issue 14, fan-out speed): whether a queue entry still has open
      // recipients is one index probe, not a count over its rows (a list
      // post has one row per member: each outcome counted them all).
      R"sql(
CREATE INDEX outbound_recipients_open ON outbound_recipients(message_id)
  WHERE state IN (0, 1) OR dsn_pending != 0;
)sql",
      // -> +1 (issue 12, RFC 8621 section 2): each mailbox keeps the counts
      // of its live messages, maintained by a trigger in the transaction of
      // every change of a message row (see the SQLite schema). PostgreSQL
      // runs AFTER ROW triggers at the end of the statement, so the distinct
      // bodies (n_emails) are exact for statements that change one row,
      // which every mail write is; the statements that change many rows at
      // once (an account removed, purged or moved away) leave the mailbox
      // unused.
      R"sql(
ALTER TABLE mailboxes ADD COLUMN n_messages bigint NOT NULL DEFAULT 0,
  ADD COLUMN n_unseen bigint NOT NULL DEFAULT 0, ADD COLUMN n_size bigint NOT NULL DEFAULT 0,
  ADD COLUMN n_deleted bigint NOT NULL DEFAULT 0,
  ADD COLUMN n_deleted_size bigint NOT NULL DEFAULT 0,
  ADD COLUMN n_recent bigint NOT NULL DEFAULT 0, ADD COLUMN n_emails bigint NOT NULL DEFAULT 0;
UPDATE mailboxes x SET n_messages = c.n, n_unseen = c.unseen, n_size = c.bytes,
  n_deleted = c.deleted, n_deleted_size = c.deleted_bytes, n_recent = c.recent,
  n_emails = c.emails
FROM (SELECT m.mailbox_id, count(*) AS n, count(*) FILTER (WHERE (m.flags & 1) = 0) AS unseen,
        coalesce(sum(m.size), 0) AS bytes, count(*) FILTER (WHERE (m.flags & 8) != 0) AS deleted,
        coalesce(sum(m.size) FILTER (WHERE (m.flags & 8) != 0), 0) AS deleted_bytes,
        count(*) FILTER (WHERE m.uid > y.recent_uid) AS recent,
        count(DISTINCT m.blob_id) AS emails
      FROM messages m JOIN mailboxes y ON y.id = m.mailbox_id WHERE m.expunged_at IS NULL
      GROUP BY m.mailbox_id) c
WHERE c.mailbox_id = x.id;
CREATE FUNCTION hato_count_message(m messages, sign integer) RETURNS void AS $$
BEGIN
  UPDATE mailboxes SET n_messages = n_messages + sign,
    n_unseen = n_unseen + CASE WHEN (m.flags & 1) = 0 THEN sign ELSE 0 END,
    n_size = n_size + sign * m.size,
    n_deleted = n_deleted + CASE WHEN (m.flags & 8) != 0 THEN sign ELSE 0 END,
    n_deleted_size = n_deleted_size + CASE WHEN (m.flags & 8) != 0 THEN sign * m.size ELSE 0 END,
    n_recent = n_recent + CASE WHEN m.uid > recent_uid THEN sign ELSE 0 END,
    n_emails = n_emails + CASE WHEN EXISTS (SELECT 1 FROM messages d WHERE
      d.mailbox_id = m.mailbox_id AND d.blob_id = m.blob_id AND d.expunged_at IS NULL AND
      d.id != m.id) THEN 0 ELSE sign END
  WHERE id = m.mailbox_id;
END $$ LANGUAGE plpgsql;
CREATE FUNCTION hato_messages_counts() RETURNS trigger AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.expunged_at IS NULL THEN
    PERFORM hato_count_message(OLD, -1);
  END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.expunged_at IS NULL THEN
    PERFORM hato_count_message(NEW, 1);
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER messages_counts AFTER INSERT OR DELETE ON messages
  FOR EACH ROW EXECUTE FUNCTION hato_messages_counts();
CREATE TRIGGER messages_counts_update
  AFTER UPDATE OF mailbox_id, uid, flags, size, expunged_at, blob_id ON messages FOR EACH ROW
  WHEN (OLD.mailbox_id != NEW.mailbox_id OR OLD.uid != NEW.uid OR
        (OLD.flags & 9) != (NEW.flags & 9) OR OLD.size != NEW.size OR
        OLD.blob_id != NEW.blob_id OR (OLD.expunged_at IS NULL) != (NEW.expunged_at IS NULL))
  EXECUTE FUNCTION hato_messages_counts();
CREATE FUNCTION hato_recent_mark() RETURNS trigger AS $$
BEGIN
  UPDATE mailboxes SET n_recent = (SELECT count(*) FROM messages m WHERE m.mailbox_id = NEW.id
    AND m.uid > NEW.recent_uid AND m.expunged_at IS NULL) WHERE id = NEW.id;
  RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER mailboxes_recent_mark AFTER UPDATE OF recent_uid ON mailboxes FOR EACH ROW
  WHEN (OLD.recent_uid != NEW.recent_uid) EXECUTE FUNCTION hato_recent_mark();
)sql",
      // -> +1 (issue 12, RFC 8621 section 7): the outcomes of a message that
      // left the queue finished (see the SQLite schema).
      R"sql(
CREATE TABLE outbound_finished(
  message_id bigint NOT NULL,
  address text NOT NULL,
  state integer NOT NULL,
  last_error text NOT NULL,
  attempts integer NOT NULL,
  finished_at bigint NOT NULL);
CREATE INDEX outbound_finished_message ON outbound_finished(message_id);
CREATE INDEX outbound_finished_at ON outbound_finished(finished_at);
)sql",
      // -> +1 (issue 16, RFC 8514 SAVEDATE): when each message was saved in
      // its mailbox (see the SQLite schema).
      R"sql(
ALTER TABLE messages ADD COLUMN saved_at bigint;
)sql",
      // -> +1 (issue 19, RFC 9661 SieveScript/changes and rename): script
      // ids that survive renames, the account's script change counter and
      // the tombstones of deleted scripts (as in the SQLite schema).
      R"sql(
ALTER TABLE sieve_scripts ADD COLUMN id bigint NOT NULL DEFAULT 0;
ALTER TABLE sieve_scripts ADD COLUMN created_seq bigint NOT NULL DEFAULT 1;
ALTER TABLE sieve_scripts ADD COLUMN changed_seq bigint NOT NULL DEFAULT 1;
UPDATE sieve_scripts s SET id = n.rn FROM (SELECT account_id, name, row_number() OVER
  (PARTITION BY account_id ORDER BY name COLLATE "C") AS rn FROM sieve_scripts) n
  WHERE s.account_id = n.account_id AND s.name = n.name;
CREATE TABLE sieve_state(
  account_id bigint PRIMARY KEY,
  seq bigint NOT NULL,
  next_id bigint NOT NULL,
  forgotten bigint NOT NULL DEFAULT 0);
INSERT INTO sieve_state(account_id, seq, next_id)
  SELECT account_id, 1, max(id) + 1 FROM sieve_scripts GROUP BY account_id;
CREATE TABLE sieve_scripts_gone(
  account_id bigint NOT NULL,
  id bigint NOT NULL,
  name text NOT NULL,
  created_seq bigint NOT NULL,
  gone_seq bigint NOT NULL,
  PRIMARY KEY(account_id, id));
)sql",
      // -> +1 (issue 14 item 7, RFC 2342): each list's archive account (see
      // the SQLite schema); 0 = not made yet.
      R"sql(
ALTER TABLE lists ADD COLUMN archive_account_id bigint NOT NULL DEFAULT 0;
CREATE INDEX list_members_address ON list_members(address);
)sql",
      // -> +1 (issue 12, RFC 8621 section 2): each body's threadId and each
      // mailbox's live messages per Thread, with the mailbox's Thread
      // counters (see the SQLite schema). hato_count_thread adds to one
      // (mailbox, Thread) row and moves the mailbox's counters when the row
      // starts or stops counting; the row goes when its count reaches 0.
      R"sql(
ALTER TABLE blobs ADD COLUMN thread_id text;
ALTER TABLE mailboxes ADD COLUMN n_threads bigint NOT NULL DEFAULT 0,
  ADD COLUMN n_unread_threads bigint NOT NULL DEFAULT 0;
CREATE TABLE mailbox_threads(
  mailbox_id bigint NOT NULL,
  thread text NOT NULL,
  n bigint NOT NULL,
  unseen bigint NOT NULL,
  PRIMARY KEY(mailbox_id, thread));
INSERT INTO mailbox_threads(mailbox_id, thread, n, unseen)
  SELECT m.mailbox_id, '#' || m.blob_id, count(*), count(*) FILTER (WHERE (m.flags & 1) = 0)
  FROM messages m WHERE m.expunged_at IS NULL GROUP BY m.mailbox_id, m.blob_id;
UPDATE mailboxes x SET n_threads = c.t, n_unread_threads = c.u
FROM (SELECT mailbox_id, count(*) AS t, count(*) FILTER (WHERE unseen > 0) AS u
      FROM mailbox_threads GROUP BY mailbox_id) c
WHERE c.mailbox_id = x.id;
CREATE FUNCTION hato_count_thread(mailbox bigint, thread_key text, dn bigint, dunseen bigint)
RETURNS void AS $$
DECLARE
  after_n bigint;
  after_u bigint;
BEGIN
  IF thread_key IS NULL OR (dn = 0 AND dunseen = 0) THEN
    RETURN;
  END IF;
  INSERT INTO mailbox_threads AS t(mailbox_id, thread, n, unseen)
    VALUES (mailbox, thread_key, dn, dunseen)
    ON CONFLICT (mailbox_id, thread) DO UPDATE SET n = t.n + dn, unseen = t.unseen + dunseen
    RETURNING t.n, t.unseen INTO after_n, after_u;
  UPDATE mailboxes SET
    n_threads = n_threads + (after_n > 0)::int - (after_n - dn > 0)::int,
    n_unread_threads = n_unread_threads + (after_u > 0)::int - (after_u - dunseen > 0)::int
  WHERE id = mailbox;
  IF after_n <= 0 THEN
    DELETE FROM mailbox_threads WHERE mailbox_id = mailbox AND thread = thread_key;
  END IF;
END $$ LANGUAGE plpgsql;
CREATE FUNCTION hato_thread_key(blob bigint) RETURNS text AS $$
  SELECT coalesce(thread_id, '#' || id) FROM blobs WHERE id = blob
$$ LANGUAGE sql STABLE;
CREATE FUNCTION hato_messages_threads() RETURNS trigger AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.expunged_at IS NULL THEN
    PERFORM hato_count_thread(OLD.mailbox_id, hato_thread_key(OLD.blob_id), -1,
                              CASE WHEN (OLD.flags & 1) = 0 THEN -1 ELSE 0 END);
  END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.expunged_at IS NULL THEN
    PERFORM hato_count_thread(NEW.mailbox_id, hato_thread_key(NEW.blob_id), 1,
                              CASE WHEN (NEW.flags & 1) = 0 THEN 1 ELSE 0 END);
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER messages_threads AFTER INSERT OR DELETE ON messages
  FOR EACH ROW EXECUTE FUNCTION hato_messages_threads();
CREATE TRIGGER messages_threads_update
  AFTER UPDATE OF mailbox_id, flags, expunged_at, blob_id ON messages FOR EACH ROW
  WHEN (OLD.mailbox_id != NEW.mailbox_id OR (OLD.flags & 1) != (NEW.flags & 1) OR
        OLD.blob_id != NEW.blob_id OR (OLD.expunged_at IS NULL) != (NEW.expunged_at IS NULL))
  EXECUTE FUNCTION hato_messages_threads();
CREATE FUNCTION hato_blobs_thread() RETURNS trigger AS $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT m.mailbox_id, count(*) AS n,
                  count(*) FILTER (WHERE (m.flags & 1) = 0) AS unseen
           FROM messages m WHERE m.blob_id = NEW.id AND m.expunged_at IS NULL
           GROUP BY m.mailbox_id LOOP
    PERFORM hato_count_thread(r.mailbox_id, coalesce(OLD.thread_id, '#' || OLD.id), -r.n,
                              -r.unseen);
    PERFORM hato_count_thread(r.mailbox_id, coalesce(NEW.thread_id, '#' || NEW.id), r.n,
                              r.unseen);
  END LOOP;
  RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER blobs_thread AFTER UPDATE OF thread_id ON blobs FOR EACH ROW
  WHEN (OLD.thread_id IS DISTINCT FROM NEW.thread_id) EXECUTE FUNCTION hato_blobs_thread();
)sql",
      // -> +1 (issue 15, ingest speed): a new message row is counted once per
      // INSERT statement, not once per row: one statement-level trigger over
      // the statement's new rows (a transition table) adds them to their
      // (mailbox, Thread) rows and then, in the same statement, to their
      // mailboxes' counters (messages, unseen, size, deleted, recent,
      // distinct bodies, Threads, unread Threads). The per-row triggers took
      // five statements per message (and two updates of the mailbox row);
      // they stay for UPDATE and DELETE. The trigger runs at the end of the
      // INSERT, in a snapshot of its own taken after the inserting statement
      // locked the mailbox row (NextSlot, the pipelined delivery's uidnext),
      // so every message committed to the mailbox by another node is seen
      // when the distinct bodies are counted; the (mailbox, Thread) upsert
      // returns the row as it is after this and every earlier writer, so a
      // Thread starts counting exactly once. Unlike the per-row trigger,
      // distinct bodies are exact for INSERTs of many rows too.
      R"sql(
DROP TRIGGER messages_counts ON messages;
DROP TRIGGER messages_threads ON messages;
CREATE TRIGGER messages_counts AFTER DELETE ON messages
  FOR EACH ROW EXECUTE FUNCTION hato_messages_counts();
CREATE TRIGGER messages_threads AFTER DELETE ON messages
  FOR EACH ROW EXECUTE FUNCTION hato_messages_threads();
CREATE FUNCTION hato_messages_added() RETURNS trigger AS $$
BEGIN
  WITH a AS (SELECT mailbox_id, uid, blob_id, size, flags FROM added
             WHERE expunged_at IS NULL),
  g AS (SELECT a.mailbox_id, coalesce(b.thread_id, '#' || b.id) AS thread, count(*) AS n,
               count(*) FILTER (WHERE (a.flags & 1) = 0) AS unseen
        FROM a JOIN blobs b ON b.id = a.blob_id GROUP BY 1, 2),
  th AS (INSERT INTO mailbox_threads AS t(mailbox_id, thread, n, unseen)
           SELECT mailbox_id, thread, n, unseen FROM g
           ON CONFLICT (mailbox_id, thread) DO UPDATE SET n = t.n + EXCLUDED.n,
             unseen = t.unseen + EXCLUDED.unseen
           RETURNING t.mailbox_id, t.thread, t.n, t.unseen),
  dt AS (SELECT th.mailbox_id, sum((th.n - g.n <= 0)::int) AS threads,
                sum((th.unseen > 0 AND th.unseen - g.unseen <= 0)::int) AS unread
         FROM th JOIN g ON g.mailbox_id = th.mailbox_id AND g.thread = th.thread
         GROUP BY th.mailbox_id),
  bodies AS (SELECT mailbox_id, blob_id, count(*) AS k FROM a GROUP BY 1, 2),
  c AS (SELECT a.mailbox_id, count(*) AS n, count(*) FILTER (WHERE (a.flags & 1) = 0) AS unseen,
               sum(a.size) AS bytes, count(*) FILTER (WHERE (a.flags & 8) != 0) AS deleted,
               coalesce(sum(a.size) FILTER (WHERE (a.flags & 8) != 0), 0) AS deleted_bytes,
               (SELECT count(*) FROM bodies q WHERE q.mailbox_id = a.mailbox_id AND q.k =
                  (SELECT count(*) FROM messages d WHERE d.mailbox_id = q.mailbox_id AND
                     d.blob_id = q.blob_id AND d.expunged_at IS NULL)) AS emails,
               array_agg(a.uid) AS uids
        FROM a GROUP BY a.mailbox_id)
  UPDATE mailboxes x SET n_messages = x.n_messages + c.n, n_unseen = x.n_unseen + c.unseen,
    n_size = x.n_size + c.bytes, n_deleted = x.n_deleted + c.deleted,
    n_deleted_size = x.n_deleted_size + c.deleted_bytes,
    n_recent = x.n_recent + (SELECT count(*) FROM unnest(c.uids) u WHERE u > x.recent_uid),
    n_emails = x.n_emails + c.emails,
    n_threads = x.n_threads + coalesce(dt.threads, 0),
    n_unread_threads = x.n_unread_threads + coalesce(dt.unread, 0)
  FROM c LEFT JOIN dt ON dt.mailbox_id = c.mailbox_id
  WHERE x.id = c.mailbox_id;
  RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER messages_added AFTER INSERT ON messages REFERENCING NEW TABLE AS added
  FOR EACH STATEMENT EXECUTE FUNCTION hato_messages_added();
)sql",
      // -> +1 (issue 15, ingest speed): the values PostgreSQL compresses
      // itself (TOAST, past ~2 KiB) use lz4 instead of pglz where the server
      // was built with it: a body's chunk (already zstd-compressed when that
      // saved 1/8: pglz spent CPU on every delivery failing to shrink it) and
      // the decoded text for SEARCH (compressed at every delivery, read back
      // at every SEARCH BODY/TEXT scan). Rows stored before keep pglz; both
      // read the same. A server without lz4 keeps pglz.
      R"sql(
DO $$
BEGIN
  ALTER TABLE blob_chunks ALTER COLUMN data SET COMPRESSION lz4;
  ALTER TABLE blob_text ALTER COLUMN header SET COMPRESSION lz4,
    ALTER COLUMN body SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
  NULL;
END $$;
)sql",
      // Per-member \Seen in list archives (issue 14): the archive mailbox's
      // UIDs each member account has seen (Store::SetArchiveSeen).
      R"sql(
CREATE TABLE archive_seen(
  account_id bigint NOT NULL,
  mailbox_id bigint NOT NULL,
  uid bigint NOT NULL,
  PRIMARY KEY(account_id, mailbox_id, uid));
)sql",
      // -> +1 (issue 15): the delivery look-ups are cached on every node
      // (store/directory_cache.h); a change to what they read is notified
      // on hato_lookups when it commits, whichever node or tool made it:
      // "dir:" for domains, accounts and aliases, "dir:ID" for account ID's
      // Sieve scripts. Only the account columns a look-up reads count.
      R"sql(
CREATE FUNCTION hato_lookups_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_LEVEL = 'ROW' THEN
    PERFORM pg_notify('hato_lookups', 'dir:' || COALESCE(NEW.account_id, OLD.account_id));
  ELSE
    PERFORM pg_notify('hato_lookups', 'dir:');
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER domains_lookups AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON domains
  FOR EACH STATEMENT EXECUTE FUNCTION hato_lookups_changed();
CREATE TRIGGER aliases_lookups AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON aliases
  FOR EACH STATEMENT EXECUTE FUNCTION hato_lookups_changed();
CREATE TRIGGER accounts_lookups AFTER INSERT OR DELETE OR TRUNCATE ON accounts
  FOR EACH STATEMENT EXECUTE FUNCTION hato_lookups_changed();
CREATE TRIGGER accounts_lookups_update
  AFTER UPDATE OF id, address, password_hash, scram_sha256, quota_bytes, removed_at, moved_to
  ON accounts FOR EACH STATEMENT EXECUTE FUNCTION hato_lookups_changed();
CREATE TRIGGER sieve_lookups AFTER INSERT OR UPDATE OR DELETE ON sieve_scripts
  FOR EACH ROW EXECUTE FUNCTION hato_lookups_changed();
CREATE TRIGGER sieve_lookups_truncate AFTER TRUNCATE ON sieve_scripts
  FOR EACH STATEMENT EXECUTE FUNCTION hato_lookups_changed();
)sql",
      // Admin retries and releases asked per queued recipient (issue 14): a
      // deferral recorded for an attempt that began before one keeps the
      // attempt it asked for (ApplyOutcomes) instead of pushing it back.
      R"sql(
ALTER TABLE outbound_recipients ADD COLUMN retry_requests bigint NOT NULL DEFAULT 0;
)sql",
      // -> +1 (issue 15, ingest WAL and CPU): where PostgreSQL puts the big
      // values of a delivery. A row past ~2 KB is TOASTed: its values are
      // compressed and, when the row is still past 2 KB, moved out of line
      // (a row per 2 KB in the TOAST table and its index, more WAL). A body's
      // chunk is already zstd-compressed (or did not shrink by 1/8), so it is
      // never compressed again (EXTERNAL) and stays in its row up to a page
      // (toast_tuple_target); the SEARCH text is compressed (lz4 where the
      // server has it) but stays in its row until the compressed row no
      // longer fits a page (MAIN). Rows stored before keep their form; both
      // read the same. No rewrite: the settings apply to new rows.
      R"sql(
ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE blob_chunks SET (toast_tuple_target = 8160);
ALTER TABLE blob_text ALTER COLUMN header SET STORAGE MAIN, ALTER COLUMN body SET STORAGE MAIN;
)sql",
  };
  return kMigrations;
}

namespace {
// pg_advisory_xact_lock key: "hato" in ASCII.
constexpr int64_t kMigrationLock = 0x6861746f;
}  // namespace

Result<int> SchemaVersion(Conn& conn) {
  auto r = conn.Exec(
      "SELECT CASE WHEN to_regclass('hato_schema') IS NULL THEN 0 ELSE "
      "(SELECT coalesce(max(version), 0) FROM hato_schema) END");
  if (!r) return r.error();
  return static_cast<int>(r->Int(0, 0));
}

Status Migrate(Conn& conn, int target) {
  const auto& steps = Migrations();
  if (target < 0) target = static_cast<int>(steps.size());
  if (auto r = conn.Exec("BEGIN"); !r) return r.error();
  auto fail = [&conn](const Error& e) -> Status {
    (void)conn.Exec("ROLLBACK");
    return e;
  };
  if (auto r = conn.Exec("SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLock) + ")");
      !r) {
    return fail(r.error());
  }
  auto r = conn.Exec("CREATE TABLE IF NOT EXISTS hato_schema(version integer NOT NULL)");
  if (!r) return fail(r.error());
  auto current = SchemaVersion(conn);
  if (!current) return fail(current.error());
  if (*current > static_cast<int>(steps.size())) {
    return fail(Err(ErrorKind::kInvalid, "database schema version " + std::to_string(*current) +
                                             " is newer than this hato (" +
                                             std::to_string(steps.size()) + ")"));
  }
  for (int v = *current; v < target; ++v) {
    if (auto s = conn.Exec(steps[static_cast<size_t>(v)]); !s) {
      return fail(Err(s.error().kind, "migration to schema " + std::to_string(v + 1) +
                                          " failed: " + s.error().message));
    }
  }
  if (target > *current) {
    if (auto s = conn.Exec("DELETE FROM hato_schema; INSERT INTO hato_schema VALUES(" +
                           std::to_string(target) + ")");
        !s) {
      return fail(s.error());
    }
  }
  if (auto c = conn.Exec("COMMIT"); !c) return c.error();
  return Ok();
}

}  // namespace hato::store::pg
