// A small JMAP client (RFC 8620 core, RFC 8621 mail) for the webmail.
// The browser holds no password: the server's login endpoint sets an
// HttpOnly session cookie, and every state-changing request also carries the
// CSRF token the login answered with (header X-Hato-CSRF).

export const CORE = "urn:ietf:params:jmap:core";
export const MAIL = "urn:ietf:params:jmap:mail";
export const SUBMISSION = "urn:ietf:params:jmap:submission";
export const VACATION = "urn:ietf:params:jmap:vacationresponse";

export interface Session {
  capabilities: Record<string, unknown>;
  apiUrl: string;
  downloadUrl: string;
  uploadUrl: string;
  eventSourceUrl: string;
  username: string;
  primaryAccounts: Record<string, string>;
  accounts: Record<string, { name: string }>;
  state: string;
}

export interface Mailbox {
  id: string;
  name: string;
  parentId: string | null;
  role: string | null;
  sortOrder: number;
  totalEmails: number;
  unreadEmails: number;
}

export interface EmailAddress {
  name: string | null;
  email: string;
}

export interface BodyPart {
  partId: string | null;
  blobId: string | null;
  size: number;
  type: string;
  name: string | null;
  charset: string | null;
  disposition: string | null;
  cid: string | null;
}

export interface Email {
  id: string;
  threadId: string;
  blobId: string;
  mailboxIds: Record<string, boolean>;
  keywords: Record<string, boolean>;
  from: EmailAddress[] | null;
  to: EmailAddress[] | null;
  cc: EmailAddress[] | null;
  replyTo: EmailAddress[] | null;
  subject: string | null;
  receivedAt: string;
  sentAt: string | null;
  size: number;
  preview: string;
  hasAttachment: boolean;
  messageId: string[] | null;
  references: string[] | null;
  textBody?: BodyPart[];
  htmlBody?: BodyPart[];
  attachments?: BodyPart[];
  bodyValues?: Record<string, { value: string; isTruncated: boolean }>;
}

export interface Identity {
  id: string;
  name: string;
  email: string;
}

export type Invocation = [string, Record<string, unknown>, string];

export class JmapError extends Error {
  constructor(
    public readonly type: string,
    message: string,
    public readonly status = 0,
  ) {
    super(message);
  }
}

export interface WebSession {
  username: string;
  csrfToken: string;
  expiresAt: number;
}

const CSRF_HEADER = "X-Hato-CSRF";

// The web login API of hato serve (src/web/): POST /web/login, GET
// /web/session, POST /web/logout. Same origin only.
export async function webLogin(username: string, password: string): Promise<WebSession> {
  const res = await fetch("/web/login", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  if (res.status === 401) throw new JmapError("unauthorized", "login failed", 401);
  if (res.status === 429 || res.status === 503)
    throw new JmapError("tryLater", "try later", res.status);
  if (!res.ok) throw new JmapError("http", `HTTP ${res.status}`, res.status);
  return (await res.json()) as WebSession;
}

export async function webSession(): Promise<WebSession | null> {
  const res = await fetch("/web/session", { credentials: "same-origin" });
  if (res.status === 401) return null;
  if (!res.ok) throw new JmapError("http", `HTTP ${res.status}`, res.status);
  return (await res.json()) as WebSession;
}

export async function webLogout(csrf: string): Promise<void> {
  await fetch("/web/logout", {
    method: "POST",
    credentials: "same-origin",
    headers: { [CSRF_HEADER]: csrf },
  });
}

function expand(template: string, vars: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (_, k: string) => encodeURIComponent(vars[k] ?? ""));
}

export class Client {
  session!: Session;
  accountId = "";
  private events: EventSource | null = null;

  constructor(
    private readonly csrf: string,
    private readonly onUnauthorized: () => void,
  ) {}

  async connect(): Promise<void> {
    const res = await fetch("/.well-known/jmap", { credentials: "same-origin" });
    if (res.status === 401) {
      this.onUnauthorized();
      throw new JmapError("unauthorized", "session expired", 401);
    }
    if (!res.ok) throw new JmapError("http", `HTTP ${res.status}`, res.status);
    this.session = (await res.json()) as Session;
    this.accountId = this.session.primaryAccounts[MAIL] ?? Object.keys(this.session.accounts)[0]!;
  }

  // The capabilities a request uses: only those the server advertises (an
  // unknown one fails the whole request, RFC 8620 section 3.6.1).
  private using(): string[] {
    const caps = this.session.capabilities ?? {};
    return [CORE, MAIL, SUBMISSION, VACATION].filter((c) => c === CORE || c in caps);
  }

  // One API request (RFC 8620 section 3.3); method-level errors stay in the
  // responses, request-level ones (section 3.6.1) throw.
  async request(calls: Invocation[]): Promise<Invocation[]> {
    const res = await fetch(this.session.apiUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", [CSRF_HEADER]: this.csrf },
      body: JSON.stringify({ using: this.using(), methodCalls: calls }),
    });
    if (res.status === 401) {
      this.onUnauthorized();
      throw new JmapError("unauthorized", "session expired", 401);
    }
    if (!res.ok) {
      let type = "http";
      try {
        const p = (await res.json()) as { type?: string; detail?: string };
        type = p.type ?? type;
      } catch {
        /* not a problem document */
      }
      throw new JmapError(type, `HTTP ${res.status}`, res.status);
    }
    const body = (await res.json()) as { methodResponses: Invocation[] };
    return body.methodResponses;
  }

  // Calls that must all succeed; returns the arguments of each response by call id.
  async call(calls: Invocation[]): Promise<Record<string, Record<string, unknown>>> {
    const out: Record<string, Record<string, unknown>> = {};
    for (const [name, args, id] of await this.request(calls)) {
      if (name === "error") throw new JmapError(String(args["type"]), String(args["description"] ?? args["type"]));
      out[id] = args;
    }
    return out;
  }

  async mailboxes(): Promise<Mailbox[]> {
    const r = await this.call([["Mailbox/get", { accountId: this.accountId, ids: null }, "m"]]);
    return (r["m"]!["list"] as Mailbox[]).slice().sort(mailboxOrder);
  }

  // One page of a query plus the emails on it (a result reference, RFC 8620 section 3.7).
  async queryPage(
    filter: Record<string, unknown> | null,
    position: number,
    limit: number,
  ): Promise<{ ids: string[]; total: number; emails: Email[]; queryState: string }> {
    const r = await this.call([
      [
        "Email/query",
        {
          accountId: this.accountId,
          filter,
          sort: [{ property: "receivedAt", isAscending: false }],
          position,
          limit,
          calculateTotal: true,
        },
        "q",
      ],
      [
        "Email/get",
        {
          accountId: this.accountId,
          "#ids": { resultOf: "q", name: "Email/query", path: "/ids" },
          properties: LIST_PROPERTIES,
        },
        "g",
      ],
    ]);
    const q = r["q"]!;
    return {
      ids: q["ids"] as string[],
      total: (q["total"] as number) ?? 0,
      emails: r["g"]!["list"] as Email[],
      queryState: String(q["queryState"] ?? ""),
    };
  }

  async getFull(id: string): Promise<Email | null> {
    const r = await this.call([
      [
        "Email/get",
        {
          accountId: this.accountId,
          ids: [id],
          properties: [...LIST_PROPERTIES, "textBody", "htmlBody", "attachments", "bodyValues", "replyTo", "cc", "messageId", "references"],
          fetchTextBodyValues: true,
          fetchHTMLBodyValues: true,
          maxBodyValueBytes: 1 << 20,
        },
        "g",
      ],
    ]);
    const list = r["g"]!["list"] as Email[];
    return list[0] ?? null;
  }

  async snippets(filter: Record<string, unknown>, ids: string[]): Promise<Record<string, string>> {
    if (ids.length === 0) return {};
    const r = await this.request([
      ["SearchSnippet/get", { accountId: this.accountId, filter, emailIds: ids }, "s"],
    ]);
    const out: Record<string, string> = {};
    for (const [name, args] of r) {
      if (name !== "SearchSnippet/get") continue;
      for (const s of args["list"] as { emailId: string; preview: string | null; subject: string | null }[]) {
        out[s.emailId] = s.preview ?? s.subject ?? "";
      }
    }
    return out;
  }

  async setEmails(update: Record<string, Record<string, unknown>>): Promise<void> {
    const r = await this.call([["Email/set", { accountId: this.accountId, update }, "u"]]);
    const notUpdated = r["u"]!["notUpdated"] as Record<string, { type: string }> | null;
    if (notUpdated && Object.keys(notUpdated).length > 0) {
      const first = Object.values(notUpdated)[0]!;
      throw new JmapError(first.type, "not updated");
    }
  }

  async destroyEmails(ids: string[]): Promise<void> {
    await this.call([["Email/set", { accountId: this.accountId, destroy: ids }, "d"]]);
  }

  async identities(): Promise<Identity[]> {
    const r = await this.call([["Identity/get", { accountId: this.accountId, ids: null }, "i"]]);
    return r["i"]!["list"] as Identity[];
  }

  async upload(file: Blob): Promise<{ blobId: string; type: string; size: number }> {
    const url = expand(this.session.uploadUrl, { accountId: this.accountId });
    const res = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": file.type || "application/octet-stream", [CSRF_HEADER]: this.csrf },
      body: file,
    });
    if (!res.ok) throw new JmapError("upload", `HTTP ${res.status}`, res.status);
    return (await res.json()) as { blobId: string; type: string; size: number };
  }

  downloadUrl(blobId: string, name: string, type: string): string {
    return expand(this.session.downloadUrl, { accountId: this.accountId, blobId, name, type });
  }

  // Saves a draft (Email/set create, RFC 8621 section 4.6); replaces `previous`.
  async saveDraft(draft: Record<string, unknown>, previous: string | null): Promise<string> {
    const args: Record<string, unknown> = { accountId: this.accountId, create: { d: draft } };
    if (previous) args["destroy"] = [previous];
    const r = await this.call([["Email/set", args, "s"]]);
    const created = r["s"]!["created"] as Record<string, { id: string }> | null;
    if (!created?.["d"]) {
      const nc = r["s"]!["notCreated"] as Record<string, { type: string; description?: string }> | null;
      throw new JmapError(nc?.["d"]?.type ?? "notCreated", nc?.["d"]?.description ?? "draft not saved");
    }
    return created["d"].id;
  }

  // Sends a saved draft (EmailSubmission/set, RFC 8621 section 7.5): on
  // success the server moves it to Sent and clears $draft.
  async send(draftId: string, identityId: string, draftsId: string, sentId: string | null): Promise<void> {
    const update: Record<string, unknown> = { "keywords/$draft": null, [`mailboxIds/${draftsId}`]: null };
    if (sentId) update[`mailboxIds/${sentId}`] = true;
    const r = await this.call([
      [
        "EmailSubmission/set",
        {
          accountId: this.accountId,
          create: { s: { identityId, emailId: draftId } },
          onSuccessUpdateEmail: { "#s": update },
        },
        "s",
      ],
    ]);
    const nc = r["s"]!["notCreated"] as Record<string, { type: string; description?: string }> | null;
    if (nc?.["s"]) throw new JmapError(nc["s"].type, nc["s"].description ?? "not sent");
  }

  // Push (RFC 8620 section 7.3): calls `changed` on every StateChange.
  listen(changed: () => void): void {
    this.events?.close();
    const url = expand(this.session.eventSourceUrl, { types: "*", closeafter: "no", ping: "30" });
    const es = new EventSource(url, { withCredentials: true });
    es.addEventListener("state", () => changed());
    this.events = es;
  }

  close(): void {
    this.events?.close();
    this.events = null;
  }
}

export const LIST_PROPERTIES = [
  "id",
  "threadId",
  "blobId",
  "mailboxIds",
  "keywords",
  "from",
  "to",
  "subject",
  "receivedAt",
  "sentAt",
  "size",
  "preview",
  "hasAttachment",
];

const ROLE_ORDER = ["inbox", "drafts", "sent", "archive", "junk", "trash"];

export function mailboxOrder(a: Mailbox, b: Mailbox): number {
  const ra = a.role ? ROLE_ORDER.indexOf(a.role) : -1;
  const rb = b.role ? ROLE_ORDER.indexOf(b.role) : -1;
  const ka = ra < 0 ? 100 : ra;
  const kb = rb < 0 ? 100 : rb;
  if (ka !== kb) return ka - kb;
  if (a.sortOrder !== b.sortOrder) return a.sortOrder - b.sortOrder;
  return a.name.localeCompare(b.name);
}
