// Writing: new, reply, reply-all, forward. The draft is saved to Drafts
// automatically a few seconds after each change (Email/set create, the old
// draft destroyed in the same call) and sent with EmailSubmission/set.
import { useEffect, useRef, useState } from "preact/hooks";
import type { Client, Email, EmailAddress, Identity, Mailbox } from "./jmap";
import { formatDate, t } from "./i18n";
import { formatAddresses, formatSize } from "./reader";

const AUTOSAVE_MS = 3000;

export interface ComposeInit {
  to: string;
  cc: string;
  subject: string;
  body: string;
  inReplyTo: string[] | null;
  references: string[] | null;
}

export function newCompose(): ComposeInit {
  return { to: "", cc: "", subject: "", body: "", inReplyTo: null, references: null };
}

export function replyTo(e: Email, mode: "reply" | "replyAll" | "forward", me: string, text: string): ComposeInit {
  const subject = e.subject ?? "";
  const quoted = text
    .split("\n")
    .map((l) => `> ${l}`)
    .join("\n");
  const who = formatAddresses(e.from);
  if (mode === "forward") {
    return {
      to: "",
      cc: "",
      subject: /^fwd?:/i.test(subject) ? subject : `Fwd: ${subject}`,
      body: `\n\n${t.forwardedHeader}\n${t.from}: ${who}\n${t.date}: ${formatDate(e.sentAt ?? e.receivedAt, true)}\n${t.subject}: ${subject}\n${t.to}: ${formatAddresses(e.to)}\n\n${text}`,
      inReplyTo: null,
      references: null,
    };
  }
  const target = e.replyTo && e.replyTo.length > 0 ? e.replyTo : e.from ?? [];
  let cc: EmailAddress[] = [];
  if (mode === "replyAll") {
    const seen = new Set([me.toLowerCase(), ...target.map((a) => a.email.toLowerCase())]);
    cc = [...(e.to ?? []), ...(e.cc ?? [])].filter((a) => {
      const k = a.email.toLowerCase();
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
  }
  return {
    to: formatAddresses(target),
    cc: formatAddresses(cc),
    subject: /^re:/i.test(subject) ? subject : `Re: ${subject}`,
    body: `\n\n${who} ${t.wrote}\n${quoted}`,
    inReplyTo: e.messageId,
    references: [...(e.references ?? []), ...(e.messageId ?? [])],
  };
}

export function parseAddresses(s: string): EmailAddress[] {
  return s
    .split(/[,;]/)
    .map((x) => x.trim())
    .filter(Boolean)
    .map((x) => {
      const m = /^(.*)<([^>]+)>$/.exec(x);
      if (m) return { name: m[1]!.trim().replace(/^"|"$/g, "") || null, email: m[2]!.trim() };
      return { name: null, email: x };
    });
}

interface Attachment {
  blobId: string;
  name: string;
  type: string;
  size: number;
}

export function Compose(props: {
  client: Client;
  init: ComposeInit;
  identity: Identity | null;
  mailboxes: Mailbox[];
  onDone: (message: string | null) => void;
}) {
  const { client, init, identity, mailboxes, onDone } = props;
  const [to, setTo] = useState(init.to);
  const [cc, setCc] = useState(init.cc);
  const [subject, setSubject] = useState(init.subject);
  const [body, setBody] = useState(init.body);
  const [files, setFiles] = useState<Attachment[]>([]);
  const [status, setStatus] = useState<string>("");
  const [busy, setBusy] = useState(false);
  const draftId = useRef<string | null>(null);
  const dirty = useRef(false);
  const saving = useRef<Promise<string | null> | null>(null);
  const drafts = mailboxes.find((m) => m.role === "drafts");
  const sent = mailboxes.find((m) => m.role === "sent");

  function draftObject(): Record<string, unknown> {
    const d: Record<string, unknown> = {
      mailboxIds: { [drafts?.id ?? ""]: true },
      keywords: { $draft: true, $seen: true },
      from: [{ name: identity?.name || null, email: identity?.email ?? client.session.username }],
      to: parseAddresses(to),
      cc: parseAddresses(cc),
      subject,
      bodyValues: { b: { value: body } },
      textBody: [{ partId: "b", type: "text/plain" }],
      attachments: files.map((f) => ({ blobId: f.blobId, type: f.type, name: f.name, disposition: "attachment" })),
    };
    if (init.inReplyTo) d["inReplyTo"] = init.inReplyTo;
    if (init.references && init.references.length > 0) d["references"] = init.references;
    return d;
  }

  async function save(): Promise<string | null> {
    if (!drafts) return null;
    if (saving.current) await saving.current;
    if (!dirty.current && draftId.current) return draftId.current;
    dirty.current = false;
    const p = client.saveDraft(draftObject(), draftId.current).then((id) => {
      draftId.current = id;
      setStatus(t.draftSaved);
      return id;
    });
    saving.current = p;
    try {
      return await p;
    } finally {
      saving.current = null;
    }
  }

  // Autosave: a few seconds after the last change.
  useEffect(() => {
    if (!dirty.current) return;
    const timer = setTimeout(() => void save().catch((e: Error) => setStatus(`${t.error} ${e.message}`)), AUTOSAVE_MS);
    return () => clearTimeout(timer);
  }, [to, cc, subject, body, files]);

  const change = (set: (v: string) => void) => (ev: Event) => {
    dirty.current = true;
    set((ev.currentTarget as HTMLInputElement).value);
  };

  async function attach(ev: Event) {
    const input = ev.currentTarget as HTMLInputElement;
    const list = Array.from(input.files ?? []);
    input.value = "";
    setBusy(true);
    try {
      for (const f of list) {
        const up = await client.upload(f);
        dirty.current = true;
        setFiles((prev) => [...prev, { blobId: up.blobId, name: f.name, type: f.type || up.type, size: up.size }]);
      }
    } catch (e) {
      setStatus(`${t.error} ${(e as Error).message}`);
    } finally {
      setBusy(false);
    }
  }

  async function send(ev: Event) {
    ev.preventDefault();
    if (!identity || !drafts) return;
    setBusy(true);
    setStatus(t.sending);
    try {
      dirty.current = true;
      const id = await save();
      if (!id) throw new Error("no Drafts folder");
      await client.send(id, identity.id, drafts.id, sent?.id ?? null);
      onDone(t.sent);
    } catch (e) {
      setStatus(`${t.error} ${(e as Error).message}`);
      setBusy(false);
    }
  }

  async function discard() {
    if (draftId.current) await client.destroyEmails([draftId.current]).catch(() => undefined);
    onDone(null);
  }

  return (
    <form class="compose" onSubmit={send}>
      <div class="toolbar">
        <button type="submit" class="primary" disabled={busy} data-action="send">
          {t.send}
        </button>
        <button type="button" disabled={busy} onClick={() => void save().catch(() => undefined)}>
          {t.saveDraft}
        </button>
        <button type="button" onClick={() => void discard()}>
          {t.discard}
        </button>
        <span class="status" role="status">
          {status}
        </span>
      </div>
      <label>
        <span>{t.to}</span>
        <input name="to" type="text" value={to} onInput={change(setTo)} autoComplete="email" />
      </label>
      <label>
        <span>{t.cc}</span>
        <input name="cc" type="text" value={cc} onInput={change(setCc)} />
      </label>
      <label>
        <span>{t.subject}</span>
        <input name="subject" type="text" value={subject} onInput={change(setSubject)} />
      </label>
      <textarea name="body" value={body} onInput={change(setBody)} rows={14} />
      <div class="attach">
        <label class="button">
          {t.attach}
          <input type="file" multiple onChange={(ev) => void attach(ev)} />
        </label>
        <ul>
          {files.map((f) => (
            <li key={f.blobId}>
              {f.name} <span class="size">{formatSize(f.size)}</span>
            </li>
          ))}
        </ul>
      </div>
    </form>
  );
}
