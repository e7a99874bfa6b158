// Reading one message: plain text as text nodes, HTML through sanitize.ts in
// a sandboxed iframe, attachments as downloads from the JMAP download URL.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { Client, Email, EmailAddress, Mailbox } from "./jmap";
import { formatDate, roleName, t } from "./i18n";
import { linkify, safeHtml } from "./sanitize";

export type ReaderAction = "reply" | "replyAll" | "forward" | "delete" | "flag" | "unread" | "back";

export function formatAddresses(list: EmailAddress[] | null | undefined): string {
  return (list ?? []).map((a) => (a.name ? `${a.name} <${a.email}>` : a.email)).join(", ");
}

export function Reader(props: {
  client: Client;
  email: Email;
  mailboxes: Mailbox[];
  onAction: (a: ReaderAction) => void;
  onMove: (mailboxId: string) => void;
}) {
  const { client, email, mailboxes, onAction, onMove } = props;
  const [allowRemote, setAllowRemote] = useState(false);
  useEffect(() => setAllowRemote(false), [email.id]);

  const html = email.htmlBody?.find((p) => p.type === "text/html");
  const textParts = email.textBody?.filter((p) => p.type.startsWith("text/")) ?? [];
  const cidMap = useMemo(() => {
    const m = new Map<string, string>();
    for (const a of [...(email.attachments ?? []), ...(email.htmlBody ?? [])]) {
      if (a.cid && a.blobId) m.set(a.cid.replace(/^<|>$/g, ""), client.downloadUrl(a.blobId, a.name ?? "part", a.type));
    }
    return m;
  }, [email]);
  const safe = useMemo(() => {
    if (!html?.partId) return null;
    const value = email.bodyValues?.[html.partId]?.value ?? "";
    return safeHtml(value, allowRemote, (cid) => cidMap.get(cid) ?? null);
  }, [email, allowRemote]);
  const attachments = (email.attachments ?? []).filter((a) => a.disposition !== "inline" || !a.cid);
  const flagged = !!email.keywords["$flagged"];

  return (
    <article class="reader" aria-label={email.subject ?? ""}>
      <div class="toolbar">
        <button class="only-phone" onClick={() => onAction("back")}>← {t.back}</button>
        <button onClick={() => onAction("reply")}>{t.reply}</button>
        <button onClick={() => onAction("replyAll")}>{t.replyAll}</button>
        <button onClick={() => onAction("forward")}>{t.forward}</button>
        <button onClick={() => onAction("delete")} data-action="delete">{t.delete}</button>
        <button onClick={() => onAction("flag")}>{flagged ? t.unflag : t.flag}</button>
        <button onClick={() => onAction("unread")}>{t.markUnread}</button>
        <select
          aria-label={t.move}
          data-action="move"
          value=""
          onChange={(ev) => {
            const v = (ev.currentTarget as HTMLSelectElement).value;
            if (v) onMove(v);
          }}
        >
          <option value="">{t.move}</option>
          {mailboxes
            .filter((m) => !email.mailboxIds[m.id])
            .map((m) => (
              <option key={m.id} value={m.id}>
                {roleName(m.role, m.name)}
              </option>
            ))}
        </select>
      </div>
      <h1 class="subject">{email.subject || t.noSubject}</h1>
      <dl class="headers">
        <dt>{t.from}</dt>
        <dd>{formatAddresses(email.from)}</dd>
        <dt>{t.to}</dt>
        <dd>{formatAddresses(email.to)}</dd>
        {email.cc && email.cc.length > 0 && (
          <>
            <dt>{t.cc}</dt>
            <dd>{formatAddresses(email.cc)}</dd>
          </>
        )}
        <dt>{t.date}</dt>
        <dd>{formatDate(email.sentAt ?? email.receivedAt, true)}</dd>
      </dl>
      {safe?.remoteBlocked && (
        <div class="notice">
          {t.remoteBlocked} <button onClick={() => setAllowRemote(true)}>{t.showImages}</button>
        </div>
      )}
      {safe ? (
        <MailFrame srcdoc={safe.srcdoc} />
      ) : (
        <div class="body-text">
          {textParts.map((p) => (
            <pre key={p.partId ?? ""}>
              {linkify(email.bodyValues?.[p.partId ?? ""]?.value ?? "").map((piece, i) =>
                piece.href ? (
                  <a key={i} href={piece.href} target="_blank" rel="noopener noreferrer">
                    {piece.text}
                  </a>
                ) : (
                  piece.text
                ),
              )}
            </pre>
          ))}
        </div>
      )}
      {attachments.length > 0 && (
        <div class="attachments">
          <h2>{t.attachments}</h2>
          <ul>
            {attachments.map((a) => (
              <li key={a.partId ?? a.blobId ?? ""}>
                <a href={client.downloadUrl(a.blobId ?? "", a.name ?? "attachment", a.type)} download={a.name ?? "attachment"}>
                  {a.name ?? "attachment"}
                </a>{" "}
                <span class="size">{formatSize(a.size)}</span>
              </li>
            ))}
          </ul>
        </div>
      )}
    </article>
  );
}

// The sandbox: no allow-scripts, no allow-forms. allow-same-origin only so
// the parent can size the frame to its content (scripts cannot run in it).
function MailFrame(props: { srcdoc: string }) {
  const frame = useRef<HTMLIFrameElement>(null);
  const [height, setHeight] = useState(200);
  useEffect(() => {
    const f = frame.current;
    if (!f) return;
    const fit = () => {
      const doc = f.contentDocument;
      if (doc?.body) setHeight(Math.max(100, doc.documentElement.scrollHeight + 8));
    };
    f.addEventListener("load", fit);
    return () => f.removeEventListener("load", fit);
  }, [props.srcdoc]);
  return (
    <iframe
      ref={frame}
      class="mail-frame"
      title="message"
      sandbox="allow-same-origin allow-popups allow-popups-to-escape-sandbox"
      referrerpolicy="no-referrer"
      srcdoc={props.srcdoc}
      style={{ height: `${height}px` }}
    />
  );
}

export function formatSize(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${Math.round(n / 1024)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
