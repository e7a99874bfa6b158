// The member's own page (issue 13, item 2): password, storage, addresses,
// app passwords for mail programs, set-up details, and the download of all
// one's mail. Talks to /web/api/ (src/web/account_api.h).
import { useEffect, useState } from "preact/hooks";
import { Client } from "../jmap";
import { ApiError, csrfToken, formatBytes, formatTime, getJson, postJson } from "./api";
import { Frame, pt, locale } from "./text";

interface ServerRow {
  type: string;
  host: string;
  port: number;
  socket: string;
}

export interface Me {
  address: string;
  admin: boolean;
  quota: { limit: number | null; used: number | null };
  aliases: string[];
  appPasswords: { id: number; label: string; createdAt: number; lastUsedAt: number | null }[];
  setup: { incoming: ServerRow[]; outgoing: ServerRow[] };
  sessionHours: number;
  forwarding: { to: string; keepCopy: boolean } | null;
}

export function AccountPage() {
  const [me, setMe] = useState<Me | null>(null);
  const [error, setError] = useState<string | null>(null);
  const reload = () =>
    getJson<Me>("/web/api/me")
      .then(setMe)
      .catch((e: Error) => setError(e.message));
  useEffect(() => {
    void reload();
  }, []);
  return (
    <Frame active="account" admin={me?.admin ?? false}>
      <h1>{pt.accountTitle}</h1>
      {error && <p class="error">{error}</p>}
      {me && (
        <>
          <p class="muted" data-testid="address">
            {me.address}
          </p>
          <PasswordForm />
          <Storage me={me} />
          <Aliases me={me} />
          <VacationForm />
          <Forwarding me={me} reload={reload} />
          <AppPasswords me={me} reload={reload} />
          <Setup me={me} />
          <Download />
        </>
      )}
    </Frame>
  );
}

function PasswordForm() {
  const [status, setStatus] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  async function submit(ev: Event) {
    ev.preventDefault();
    const form = ev.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const next = String(data.get("new") ?? "");
    if (next !== String(data.get("confirm") ?? "")) {
      setStatus({ ok: false, text: pt.passwordsDiffer });
      return;
    }
    setBusy(true);
    try {
      await postJson("/web/api/password", { old: String(data.get("old") ?? ""), new: next, signOutOthers: data.get("others") === "on" });
      setStatus({ ok: true, text: pt.passwordChanged });
      form.reset();
    } catch (e) {
      const err = e as ApiError;
      setStatus({ ok: false, text: err.status === 403 ? pt.oldWrong : err.message });
    }
    setBusy(false);
  }
  return (
    <section data-testid="password">
      <h2>{pt.changePassword}</h2>
      <form class="stack" onSubmit={submit}>
        <label>
          <span>{pt.oldPassword}</span>
          <input name="old" type="password" autoComplete="current-password" required />
        </label>
        <label>
          <span>{pt.newPassword}</span>
          <input name="new" type="password" autoComplete="new-password" required minLength={8} />
        </label>
        <label>
          <span>{pt.confirmPassword}</span>
          <input name="confirm" type="password" autoComplete="new-password" required />
        </label>
        <label class="check">
          <input name="others" type="checkbox" /> {pt.signOutOthers}
        </label>
        <p class="muted">{pt.passwordNote}</p>
        <div>
          <button type="submit" class="primary" disabled={busy}>
            {pt.changePassword}
          </button>{" "}
          {status && (
            <span role="status" class={status.ok ? "ok" : "bad"}>
              {status.text}
            </span>
          )}
        </div>
      </form>
    </section>
  );
}

function Storage({ me }: { me: Me }) {
  const { limit, used } = me.quota;
  return (
    <section data-testid="storage">
      <h2>{pt.storage}</h2>
      {limit === null || used === null ? (
        <p class="muted">{pt.noQuota}</p>
      ) : (
        <>
          <div class="meter" role="meter" aria-valuemin={0} aria-valuemax={limit} aria-valuenow={used}>
            <div style={{ width: `${Math.min(100, (100 * used) / Math.max(limit, 1)).toFixed(1)}%` }} />
          </div>
          <p class="muted">
            {formatBytes(used)} / {formatBytes(limit)}
          </p>
        </>
      )}
    </section>
  );
}

function Aliases({ me }: { me: Me }) {
  return (
    <section data-testid="aliases">
      <h2>{pt.aliases}</h2>
      {me.aliases.length === 0 ? (
        <p class="muted">{pt.noAliases}</p>
      ) : (
        <ul>
          {me.aliases.map((a) => (
            <li key={a}>{a}</li>
          ))}
        </ul>
      )}
    </section>
  );
}

function AppPasswords({ me, reload }: { me: Me; reload: () => Promise<void> }) {
  const [fresh, setFresh] = useState<{ label: string; password: string } | null>(null);
  const [error, setError] = useState<string | null>(null);
  async function add(ev: Event) {
    ev.preventDefault();
    const form = ev.currentTarget as HTMLFormElement;
    const label = String(new FormData(form).get("label") ?? "").trim();
    if (!label) return;
    try {
      const r = await postJson<{ label: string; password: string }>("/web/api/app-passwords", { label });
      setFresh(r);
      setError(null);
      form.reset();
      await reload();
    } catch (e) {
      setError((e as Error).message);
    }
  }
  async function revoke(id: number) {
    try {
      await postJson("/web/api/app-passwords/revoke", { id });
      await reload();
    } catch (e) {
      setError((e as Error).message);
    }
  }
  return (
    <section data-testid="app-passwords">
      <h2>{pt.appPasswords}</h2>
      <p class="muted">{pt.appPasswordsHelp}</p>
      {fresh && (
        <p data-testid="new-app-password">
          {pt.appPasswordShown.replace("{label}", fresh.label)}
          <br />
          <span class="secret">{fresh.password}</span>
        </p>
      )}
      {error && <p class="error">{error}</p>}
      {me.appPasswords.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>{pt.name}</th>
              <th>{pt.created}</th>
              <th>{pt.lastUsed}</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {me.appPasswords.map((a) => (
              <tr key={a.id}>
                <td>{a.label}</td>
                <td>{formatTime(a.createdAt, locale)}</td>
                <td>{a.lastUsedAt ? formatTime(a.lastUsedAt, locale) : pt.never}</td>
                <td>
                  <button type="button" onClick={() => void revoke(a.id)}>
                    {pt.revoke}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form class="inline" onSubmit={add}>
        <input name="label" type="text" placeholder={pt.appPasswordName} maxLength={100} required />
        <button type="submit">{pt.createAppPassword}</button>
      </form>
    </section>
  );
}

function Setup({ me }: { me: Me }) {
  const rows = [...me.setup.incoming.map((s) => ({ ...s, dir: pt.incoming })), ...me.setup.outgoing.map((s) => ({ ...s, dir: pt.outgoing }))];
  return (
    <section data-testid="setup">
      <h2>{pt.setup}</h2>
      <p class="muted">{pt.setupHelp}</p>
      <table>
        <thead>
          <tr>
            <th></th>
            <th>{pt.server}</th>
            <th>{pt.port}</th>
            <th>{pt.security}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((s) => (
            <tr key={`${s.type}${s.port}`}>
              <td>
                {s.dir} ({s.type.toUpperCase()})
              </td>
              <td>{s.host}</td>
              <td>{s.port}</td>
              <td>{s.socket}</td>
            </tr>
          ))}
          <tr>
            <td>{pt.username}</td>
            <td colSpan={3}>{me.address}</td>
          </tr>
        </tbody>
      </table>
      <p>
        <a href={`/autoconfig/apple.mobileconfig?emailaddress=${encodeURIComponent(me.address)}`} download>
          {pt.appleProfile}
        </a>
      </p>
    </section>
  );
}

function Download() {
  return (
    <section data-testid="download">
      <h2>{pt.download}</h2>
      <p class="muted">{pt.downloadHelp}</p>
      <a class="button" href="/web/api/export.zip" download data-testid="download-link">
        {pt.downloadButton}
      </a>
    </section>
  );
}

interface Vacation {
  isEnabled: boolean;
  subject: string | null;
  textBody: string | null;
  fromDate: string | null;
  toDate: string | null;
}

// The vacation reply: JMAP VacationResponse (RFC 8621 section 8), the same
// object the webmail's settings edit.
function VacationForm() {
  const [client, setClient] = useState<Client | null>(null);
  const [vac, setVac] = useState<Vacation | null>(null);
  const [status, setStatus] = useState<{ ok: boolean; text: string } | null>(null);
  useEffect(() => {
    const c = new Client(csrfToken(), () => (location.href = "/"));
    c.connect()
      .then(() => c.call([["VacationResponse/get", { accountId: c.accountId, ids: ["singleton"] }, "v"]]))
      .then((r) => {
        setClient(c);
        const v = (r["v"]!["list"] as Vacation[])[0];
        setVac(v ?? { isEnabled: false, subject: null, textBody: null, fromDate: null, toDate: null });
      })
      .catch((e: Error) => setStatus({ ok: false, text: e.message }));
  }, []);
  async function save(ev: Event) {
    ev.preventDefault();
    if (!client || !vac) return;
    try {
      const r = await client.call([["VacationResponse/set", { accountId: client.accountId, update: { singleton: { isEnabled: vac.isEnabled, subject: vac.subject, textBody: vac.textBody, fromDate: vac.fromDate, toDate: vac.toDate } } }, "s"]]);
      const nu = r["s"]!["notUpdated"] as Record<string, { type: string }> | null;
      setStatus(nu?.["singleton"] ? { ok: false, text: nu["singleton"].type } : { ok: true, text: pt.saved });
    } catch (e) {
      setStatus({ ok: false, text: (e as Error).message });
    }
  }
  const date = (s: string | null) => (s ? s.slice(0, 10) : "");
  const toUtc = (s: string) => (s ? `${s}T00:00:00Z` : null);
  return (
    <section data-testid="vacation">
      <h2>{pt.vacation}</h2>
      {vac && (
        <form class="stack" onSubmit={save}>
          <label class="check">
            <input name="enabled" type="checkbox" checked={vac.isEnabled} onChange={(e) => setVac({ ...vac, isEnabled: (e.currentTarget as HTMLInputElement).checked })} /> {pt.vacationOn}
          </label>
          <label>
            <span>{pt.vacationSubject}</span>
            <input name="subject" type="text" value={vac.subject ?? ""} onInput={(e) => setVac({ ...vac, subject: (e.currentTarget as HTMLInputElement).value || null })} />
          </label>
          <label>
            <span>{pt.vacationBody}</span>
            <textarea name="body" rows={4} value={vac.textBody ?? ""} onInput={(e) => setVac({ ...vac, textBody: (e.currentTarget as HTMLTextAreaElement).value || null })} />
          </label>
          <label>
            <span>{pt.vacationFrom}</span>
            <input name="from" type="date" value={date(vac.fromDate)} onInput={(e) => setVac({ ...vac, fromDate: toUtc((e.currentTarget as HTMLInputElement).value) })} />
          </label>
          <label>
            <span>{pt.vacationTo}</span>
            <input name="to" type="date" value={date(vac.toDate)} onInput={(e) => setVac({ ...vac, toDate: toUtc((e.currentTarget as HTMLInputElement).value) })} />
          </label>
          <div>
            <button type="submit" class="primary">
              {pt.save}
            </button>{" "}
            {status && (
              <span role="status" class={status.ok ? "ok" : "bad"}>
                {status.text}
              </span>
            )}
          </div>
        </form>
      )}
      {!vac && status && <p class="error">{status.text}</p>}
    </section>
  );
}

// Forwarding to another address (POST /web/api/forwarding).
function Forwarding({ me, reload }: { me: Me; reload: () => Promise<void> }) {
  const [status, setStatus] = useState<{ ok: boolean; text: string } | null>(null);
  async function save(ev: Event) {
    ev.preventDefault();
    const data = new FormData(ev.currentTarget as HTMLFormElement);
    try {
      await postJson("/web/api/forwarding", { to: String(data.get("to") ?? "").trim(), keepCopy: data.get("keep") === "on" });
      setStatus({ ok: true, text: pt.saved });
      await reload();
    } catch (e) {
      setStatus({ ok: false, text: (e as Error).message });
    }
  }
  const f = me.forwarding;
  return (
    <section data-testid="forwarding">
      <h2>{pt.forwarding}</h2>
      <p class="muted">{pt.forwardingHelp}</p>
      <p data-testid="forwarding-state">{f ? pt.forwardingNow.replace("{x}", f.to) : pt.forwardingOff}</p>
      <form class="stack" onSubmit={save}>
        <label>
          <span>{pt.forwardTo}</span>
          <input name="to" type="email" defaultValue={f?.to ?? ""} maxLength={256} />
        </label>
        <label class="check">
          <input name="keep" type="checkbox" defaultChecked={f ? f.keepCopy : true} /> {pt.keepCopy}
        </label>
        <div>
          <button type="submit" class="primary">
            {pt.save}
          </button>{" "}
          {status && (
            <span role="status" class={status.ok ? "ok" : "bad"}>
              {status.text}
            </span>
          )}
        </div>
      </form>
    </section>
  );
}
