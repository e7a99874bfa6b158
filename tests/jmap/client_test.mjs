// An independent JMAP client (jmap-jam, RFC 8620/8621) against a live
// `hato serve`: run by tests/integration/test_jmap_client.py, which
// delivers mail first and passes the session URL, a bearer token and what
// to expect in the environment. Exits non-zero on the first failed check.
import assert from "node:assert/strict";
import JamClient from "jmap-jam";

const sessionUrl = process.env.JMAP_SESSION_URL;
const token = process.env.JMAP_TOKEN;
const expected = Number(process.env.JMAP_EXPECT_INBOX);
const jam = new JamClient({ sessionUrl, bearerToken: token });
let checks = 0;
const check = (cond, what) => {
  assert.ok(cond, what);
  checks++;
};

const session = await jam.session;
check(session.apiUrl && session.eventSourceUrl && session.uploadUrl, "session URLs");
const accountId = await jam.getPrimaryAccount();
check(typeof accountId === "string" && session.accounts[accountId], "primary account");
const core = session.capabilities["urn:ietf:params:jmap:core"];
check(core.maxCallsInRequest > 0 && core.maxObjectsInGet > 0, "core limits advertised");

// Core/echo
const [echo] = await jam.request(["Core/echo", { hello: [1, 2, 3] }]);
check(JSON.stringify(echo) === JSON.stringify({ hello: [1, 2, 3] }), "Core/echo");

// Mailbox/get: the special-use folders have their roles.
const [mbs] = await jam.api.Mailbox.get({ accountId, ids: null });
const byRole = Object.fromEntries(mbs.list.filter((m) => m.role).map((m) => [m.role, m]));
for (const role of ["inbox", "sent", "drafts", "trash", "junk", "archive"]) check(byRole[role], `role ${role}`);
const inbox = byRole.inbox;
check(inbox.totalEmails === expected, `inbox has ${expected} (got ${inbox.totalEmails})`);
const [mq] = await jam.api.Mailbox.query({ accountId, filter: { role: "inbox" } });
check(mq.ids.length === 1 && mq.ids[0] === inbox.id, "Mailbox/query by role");

// Email/query + Email/get in one request with a result reference.
const [{ q, g }] = await jam.requestMany((t) => {
  const q = t.Email.query({
    accountId,
    filter: { inMailbox: inbox.id },
    sort: [{ property: "receivedAt", isAscending: false }],
    limit: 50,
    calculateTotal: true,
  });
  const g = t.Email.get({
    accountId,
    ids: q.$ref("/ids"),
    properties: ["subject", "from", "to", "preview", "keywords", "mailboxIds", "receivedAt",
                 "bodyValues", "textBody", "threadId", "blobId", "size"],
    fetchTextBodyValues: true,
  });
  return { q, g };
});
check(q.total === expected && q.ids.length === expected, "Email/query total");
check(g.list.length === expected, "Email/get by reference");
const first = g.list[0];
check(first.subject === `message ${expected - 1}`, `newest first (got ${first.subject})`);
check(first.from[0].email === "sender@remote.test", "from address");
check(first.preview.startsWith("Body of message"), "preview");
const textPart = first.textBody[0].partId;
check(first.bodyValues[textPart].value.includes(`Body of message ${expected - 1}`), "bodyValues");
check(!first.keywords.$seen, "unseen at first");

// Email/query with a text filter and a keyword filter.
const [fq] = await jam.api.Email.query({ accountId, filter: { subject: "message 1" } });
check(fq.ids.length >= 1, "subject filter");

// Email/set keywords, then Email/changes reports the update.
const [{ state: before }] = await jam.api.Email.get({ accountId, ids: [] });
const [set1] = await jam.api.Email.set({ accountId, update: { [first.id]: { "keywords/$seen": true, "keywords/$flagged": true } } });
check(set1.updated && first.id in set1.updated, "Email/set keywords");
const [ch] = await jam.api.Email.changes({ accountId, sinceState: before });
check(ch.updated.includes(first.id) && ch.created.length === 0, `Email/changes updated ${JSON.stringify(ch)}`);
const [g2] = await jam.api.Email.get({ accountId, ids: [first.id], properties: ["keywords"] });
check(g2.list[0].keywords.$seen && g2.list[0].keywords.$flagged, "keywords stored");

// Move to the archive: same Email id, new mailboxIds.
const [set2] = await jam.api.Email.set({ accountId, update: { [first.id]: { mailboxIds: { [byRole.archive.id]: true } } } });
check(set2.updated && first.id in set2.updated, "Email/set mailboxIds");
const [g3] = await jam.api.Email.get({ accountId, ids: [first.id], properties: ["mailboxIds", "keywords"] });
check(JSON.stringify(g3.list[0].mailboxIds) === JSON.stringify({ [byRole.archive.id]: true }), "moved");
check(g3.list[0].keywords.$seen, "keywords kept across the move");

// A draft.
const [set3] = await jam.api.Email.set({
  accountId,
  create: {
    d1: {
      mailboxIds: { [byRole.drafts.id]: true },
      keywords: { $draft: true },
      from: [{ name: "Alice", email: process.env.JMAP_ADDRESS }],
      to: [{ name: "Bob", email: "bob@remote.test" }],
      subject: "Draft ünïcode",
      bodyValues: { b: { value: "Hello draft\n" } },
      textBody: [{ partId: "b", type: "text/plain" }],
    },
  },
});
check(set3.created && set3.created.d1 && set3.created.d1.id, `draft created ${JSON.stringify(set3)}`);
const [g4] = await jam.api.Email.get({ accountId, ids: [set3.created.d1.id], properties: ["subject", "keywords", "mailboxIds"] });
check(g4.list[0].subject === "Draft ünïcode" && g4.list[0].keywords.$draft, "draft read back");

// Upload a message and import it into the inbox; download its blob.
const raw = "From: up@remote.test\r\nTo: " + process.env.JMAP_ADDRESS + "\r\nSubject: imported\r\n\r\nImported body\r\n";
const up = await jam.uploadBlob(accountId, new Blob([raw], { type: "message/rfc822" }));
check(up.blobId && up.size === raw.length, "upload");
const [imp] = await jam.api.Email.import({ accountId, emails: { i1: { blobId: up.blobId, mailboxIds: { [inbox.id]: true }, keywords: {} } } });
check(imp.created && imp.created.i1, `import ${JSON.stringify(imp)}`);
const dl = await jam.downloadBlob({ accountId, blobId: imp.created.i1.blobId, mimeType: "message/rfc822", fileName: "m.eml" });
check((await dl.text()) === raw, "download");

// Destroy; Thread/get; Identity/get.
const [set4] = await jam.api.Email.set({ accountId, destroy: [imp.created.i1.id] });
check(set4.destroyed && set4.destroyed.includes(imp.created.i1.id), "destroy");
const [th] = await jam.api.Thread.get({ accountId, ids: [first.threadId] });
check(th.list[0].emailIds.includes(first.id), "Thread/get");
const [ids] = await jam.api.Identity.get({ accountId });
check(ids.list.some((i) => i.email === process.env.JMAP_ADDRESS), "Identity/get");

// Errors: an unknown method, another account.
try {
  await jam.request(["Email/get", { accountId: "a999999", ids: [] }]);
  check(false, "another account must fail");
} catch (e) {
  check(e.type === "accountNotFound", `accountNotFound (${JSON.stringify(e)})`);
}
console.log(`OK ${checks} checks`);
