// The member's own page (part): the vacation reply (JMAP VacationResponse,
// RFC 8621 section 8) and the mail client set-up details (from the server's
// autoconfig document, with the Apple profile as a download).
import { useEffect, useState } from "preact/hooks";
import type { Client } from "./jmap";
import { t, lang } from "./i18n";

const text = {
  en: {
    title: "Settings",
    vacation: "Vacation reply",
    vacationOn: "Send an automatic reply",
    vacationSubject: "Subject",
    vacationBody: "Message",
    from: "From (optional)",
    to: "Until (optional)",
    save: "Save",
    saved: "Saved.",
    setup: "Set up a mail program",
    setupHelp: "Most mail programs set themselves up from your address. If yours asks, use these settings with your address and password.",
    incoming: "Incoming mail",
    outgoing: "Outgoing mail",
    server: "Server",
    port: "Port",
    security: "Security",
    apple: "Download the profile for iPhone, iPad and Mac",
    unavailable: "Not available on this server.",
  },
  ja: {
    title: "設定",
    vacation: "不在時の自動返信",
    vacationOn: "自動返信を送る",
    vacationSubject: "件名",
    vacationBody: "本文",
    from: "開始日 (任意)",
    to: "終了日 (任意)",
    save: "保存",
    saved: "保存しました。",
    setup: "メールソフトの設定",
    setupHelp: "多くのメールソフトはメールアドレスから自動で設定されます。尋ねられたら、メールアドレスとパスワードと共に次の設定を使ってください。",
    incoming: "受信",
    outgoing: "送信",
    server: "サーバー",
    port: "ポート",
    security: "暗号化",
    apple: "iPhone・iPad・Mac 用のプロファイルをダウンロード",
    unavailable: "このサーバーでは利用できません。",
  },
}[lang];

interface Vacation {
  isEnabled: boolean;
  subject: string | null;
  textBody: string | null;
  fromDate: string | null;
  toDate: string | null;
}

interface ServerRow {
  kind: string;
  type: string;
  host: string;
  port: string;
  socket: string;
}

export function Settings(props: { client: Client; address: string }) {
  const { client, address } = props;
  const [vac, setVac] = useState<Vacation | null>(null);
  const [vacError, setVacError] = useState<string | null>(null);
  const [status, setStatus] = useState("");
  const [servers, setServers] = useState<ServerRow[] | null>(null);

  useEffect(() => {
    client
      .call([["VacationResponse/get", { accountId: client.accountId, ids: ["singleton"] }, "v"]])
      .then((r) => {
        const v = (r["v"]!["list"] as Vacation[])[0];
        setVac(v ?? { isEnabled: false, subject: null, textBody: null, fromDate: null, toDate: null });
      })
      .catch((e: Error) => setVacError(e.message));
    fetch(`/mail/config-v1.1.xml?emailaddress=${encodeURIComponent(address)}`, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.text() : Promise.reject(new Error(String(r.status)))))
      .then((xml) => {
        const doc = new DOMParser().parseFromString(xml, "application/xml");
        const rows: ServerRow[] = [];
        for (const el of Array.from(doc.querySelectorAll("incomingServer, outgoingServer"))) {
          const get = (n: string) => el.querySelector(n)?.textContent ?? "";
          rows.push({ kind: el.tagName, type: el.getAttribute("type") ?? "", host: get("hostname"), port: get("port"), socket: get("socketType") });
        }
        setServers(rows);
      })
      .catch(() => setServers([]));
  }, []);

  async function save(ev: Event) {
    ev.preventDefault();
    if (!vac) return;
    try {
      const r = await client.call([
        ["VacationResponse/set", { accountId: client.accountId, update: { singleton: { isEnabled: vac.isEnabled, subject: vac.subject, textBody: vac.textBody, fromDate: vac.fromDate, toDate: vac.toDate } } }, "s"],
      ]);
      const nu = r["s"]!["notUpdated"] as Record<string, { type: string }> | null;
      setStatus(nu?.["singleton"] ? `${t.error} ${nu["singleton"].type}` : text.saved);
    } catch (e) {
      setStatus(`${t.error} ${(e as Error).message}`);
    }
  }

  const date = (s: string | null) => (s ? s.slice(0, 10) : "");
  const toUtc = (s: string) => (s ? `${s}T00:00:00Z` : null);

  return (
    <div class="settings">
      <h1>{text.title}</h1>
      <section>
        <h2>{text.vacation}</h2>
        {vacError && <p class="muted">{text.unavailable}</p>}
        {vac && (
          <form onSubmit={save} class="vacation">
            <label class="check">
              <input type="checkbox" checked={vac.isEnabled} onChange={(e) => setVac({ ...vac, isEnabled: (e.currentTarget as HTMLInputElement).checked })} />{" "}
              {text.vacationOn}
            </label>
            <label>
              <span>{text.vacationSubject}</span>
              <input type="text" value={vac.subject ?? ""} onInput={(e) => setVac({ ...vac, subject: (e.currentTarget as HTMLInputElement).value || null })} />
            </label>
            <label>
              <span>{text.vacationBody}</span>
              <textarea rows={5} value={vac.textBody ?? ""} onInput={(e) => setVac({ ...vac, textBody: (e.currentTarget as HTMLTextAreaElement).value || null })} />
            </label>
            <div class="dates">
              <label>
                <span>{text.from}</span>
                <input type="date" value={date(vac.fromDate)} onInput={(e) => setVac({ ...vac, fromDate: toUtc((e.currentTarget as HTMLInputElement).value) })} />
              </label>
              <label>
                <span>{text.to}</span>
                <input type="date" value={date(vac.toDate)} onInput={(e) => setVac({ ...vac, toDate: toUtc((e.currentTarget as HTMLInputElement).value) })} />
              </label>
            </div>
            <button type="submit" class="primary">
              {text.save}
            </button>{" "}
            <span class="status" role="status">
              {status}
            </span>
          </form>
        )}
      </section>
      <section>
        <h2>{text.setup}</h2>
        <p class="muted">{text.setupHelp}</p>
        {servers && servers.length > 0 && (
          <table class="servers">
            <thead>
              <tr>
                <th></th>
                <th>{text.server}</th>
                <th>{text.port}</th>
                <th>{text.security}</th>
              </tr>
            </thead>
            <tbody>
              {servers.map((s) => (
                <tr key={`${s.kind}${s.port}`}>
                  <td>
                    {s.kind === "incomingServer" ? text.incoming : text.outgoing} ({s.type.toUpperCase()})
                  </td>
                  <td>{s.host}</td>
                  <td>{s.port}</td>
                  <td>{s.socket}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <p>
          <a href={`/autoconfig/apple.mobileconfig?emailaddress=${encodeURIComponent(address)}`} download>
            {text.apple}
          </a>
        </p>
      </section>
    </div>
  );
}
