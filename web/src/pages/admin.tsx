// The admin console (issue 13, item 3): health and key figures, accounts,
// domains with their DNS records, aliases, the outbound queue, backups and
// the audit log. Talks to /web/admin/ (src/web/admin_api.h), which refuses
// non-admins itself; this page only follows.
import { useEffect, useState } from "preact/hooks";
import { ApiError, formatBytes, formatTime, getJson, postJson } from "./api";
import { Frame, pt, locale } from "./text";

type Tab = "overview" | "accounts" | "domains" | "queue" | "backups" | "audit";
const TABS: Tab[] = ["overview", "accounts", "domains", "queue", "backups", "audit"];

function tabFromHash(): Tab {
  const h = location.hash.replace(/^#/, "") as Tab;
  return TABS.includes(h) ? h : "overview";
}

export function AdminPage() {
  const [tab, setTab] = useState<Tab>(tabFromHash());
  const [denied, setDenied] = useState(false);
  useEffect(() => {
    const on = () => setTab(tabFromHash());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  const onError = (e: unknown) => {
    if (e instanceof ApiError && e.status === 403) setDenied(true);
  };
  return (
    <Frame active="admin" admin={!denied}>
      <nav class="toolbar" aria-label={pt.admin}>
        {TABS.map((t) => (
          <a key={t} href={`#${t}`} class={`button${t === tab ? " primary" : ""}`} data-tab={t}>
            {pt[t]}
          </a>
        ))}
      </nav>
      {denied ? (
        <p class="error" data-testid="denied">
          {pt.notAdmin}
        </p>
      ) : (
        <>
          {tab === "overview" && <Overview onError={onError} />}
          {tab === "accounts" && <Accounts onError={onError} />}
          {tab === "domains" && <Domains onError={onError} />}
          {tab === "queue" && <Queue onError={onError} />}
          {tab === "backups" && <Backups onError={onError} />}
          {tab === "audit" && <Audit onError={onError} />}
        </>
      )}
    </Frame>
  );
}

type OnError = { onError: (e: unknown) => void };

// Loads `path` now and on reload(); errors go to onError and are shown.
function useApi<T>(path: string, onError: (e: unknown) => void, everyMs = 0) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const reload = () =>
    getJson<T>(path)
      .then((d) => {
        setData(d);
        setError(null);
      })
      .catch((e: Error) => {
        onError(e);
        setError(e.message);
      });
  useEffect(() => {
    void reload();
    if (!everyMs) return;
    const id = setInterval(() => void reload(), everyMs);
    return () => clearInterval(id);
  }, [path]);
  return { data, error, reload };
}

// Runs an admin action, then reloads; shows its outcome.
function useAction(reload: () => Promise<void>, onError: (e: unknown) => void) {
  const [status, setStatus] = useState<{ ok: boolean; text: string } | null>(null);
  async function act(path: string, body: unknown) {
    try {
      await postJson(path, body);
      setStatus({ ok: true, text: pt.done });
    } catch (e) {
      onError(e);
      setStatus({ ok: false, text: (e as Error).message });
    }
    await reload();
  }
  const view = status && (
    <p role="status" class={status.ok ? "ok" : "bad"}>
      {status.text}
    </p>
  );
  return { act, view };
}

interface Sample {
  at: number;
  deliveriesPerS: number;
  sentPerS: number;
  queue: number;
  queueOldestS: number;
  commitMs: number;
  loginFailures: number;
  connections: Record<string, number>;
}

function Spark(props: { label: string; values: number[] }) {
  const v = props.values;
  const max = Math.max(1, ...v);
  const pts = v.map((x, i) => `${v.length > 1 ? (i * 100) / (v.length - 1) : 50},${48 - (Math.max(0, x) * 44) / max - 2}`).join(" ");
  const last = v.length ? v[v.length - 1]! : 0;
  return (
    <div class="chart">
      <div class="label">{props.label}</div>
      <div class="value">{Number.isInteger(last) ? last : last.toFixed(2)}</div>
      <svg viewBox="0 0 100 48" preserveAspectRatio="none" aria-hidden="true">
        <polyline points={pts} />
      </svg>
    </div>
  );
}

function Overview({ onError }: OnError) {
  const { data, error } = useApi<{
    health: { status: string; storage: { status: string; reason: string; commitLatencyMs: number }; protocols: Record<string, { status: string; reason: string }> };
    figures: Sample[];
  }>("/web/admin/overview", onError, 30000);
  if (error) return <p class="error">{error}</p>;
  if (!data) return <p class="muted">{pt.loading}</p>;
  const f = data.figures;
  const protocols = Array.from(new Set(f.flatMap((s) => Object.keys(s.connections))));
  const rows = [["storage", data.health.storage] as const, ...Object.entries(data.health.protocols)];
  return (
    <section data-testid="overview">
      <h2>
        {pt.health}: <span class={data.health.status === "up" ? "ok" : "bad"}>{data.health.status}</span>
      </h2>
      <table>
        <tbody>
          {rows.map(([name, p]) => (
            <tr key={name}>
              <td>{name}</td>
              <td class={p.status === "up" ? "ok" : p.status === "off" ? "muted" : "bad"}>{p.status}</td>
              <td class="muted">{p.reason}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div class="charts" style={{ marginTop: "16px" }}>
        <Spark label={pt.deliveries} values={f.map((s) => s.deliveriesPerS)} />
        <Spark label={pt.sent} values={f.map((s) => s.sentPerS)} />
        <Spark label={pt.queueSize} values={f.map((s) => s.queue)} />
        <Spark label={pt.queueAge} values={f.map((s) => s.queueOldestS)} />
        <Spark label={pt.commit} values={f.map((s) => s.commitMs)} />
        <Spark label={pt.loginFailures} values={f.map((s) => s.loginFailures)} />
        {protocols.map((p) => (
          <Spark key={p} label={`${pt.connections} (${p})`} values={f.map((s) => s.connections[p] ?? 0)} />
        ))}
      </div>
    </section>
  );
}

interface AccountRow {
  address: string;
  messages: number;
  bytes: number;
  quota: number | null;
  admin: boolean;
}
interface RemovedRow {
  id: number;
  address: string;
  removedAt: number;
  purgeAt: number;
  messages: number;
  bytes: number;
}

function Accounts({ onError }: OnError) {
  const { data, error, reload } = useApi<{ accounts: AccountRow[]; removed: RemovedRow[] }>("/web/admin/accounts", onError);
  const aliases = useApi<{ aliases: { alias: string; account: string; accountRemoved: boolean }[] }>("/web/admin/aliases", onError);
  const { act, view } = useAction(async () => {
    await reload();
    await aliases.reload();
  }, onError);
  function add(ev: Event) {
    ev.preventDefault();
    const form = ev.currentTarget as HTMLFormElement;
    const d = new FormData(form);
    void act("/web/admin/accounts/add", { address: d.get("address"), password: d.get("password"), admin: d.get("admin") === "on" }).then(() => form.reset());
  }
  function quota(address: string) {
    const v = prompt(pt.setQuota);
    if (v === null) return;
    const mb = v.trim();
    void act("/web/admin/accounts/quota", { address, limit: mb === "" ? null : Math.round(Number(mb) * 1024 * 1024) });
  }
  function password(address: string) {
    const v = prompt(`${pt.resetPassword}: ${address}`);
    if (v) void act("/web/admin/accounts/password", { address, password: v });
  }
  function addAlias(ev: Event) {
    ev.preventDefault();
    const form = ev.currentTarget as HTMLFormElement;
    const d = new FormData(form);
    void act("/web/admin/aliases/add", { alias: d.get("alias"), account: d.get("account") }).then(() => form.reset());
  }
  if (error) return <p class="error">{error}</p>;
  if (!data) return <p class="muted">{pt.loading}</p>;
  return (
    <section data-testid="accounts">
      <h2>{pt.accounts}</h2>
      {view}
      <form class="inline" onSubmit={add} data-testid="add-account">
        <input name="address" type="email" placeholder={pt.address} required />
        <input name="password" type="password" placeholder={pt.password} autoComplete="new-password" required />
        <label class="check">
          <input name="admin" type="checkbox" /> {pt.makeAdmin}
        </label>
        <button type="submit" class="primary">
          {pt.add}
        </button>
      </form>
      <table>
        <thead>
          <tr>
            <th>{pt.address}</th>
            <th>{pt.messages}</th>
            <th>{pt.size}</th>
            <th>{pt.quota}</th>
            <th>{pt.role}</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {data.accounts.map((a) => (
            <tr key={a.address} data-account={a.address}>
              <td>{a.address}</td>
              <td>{a.messages}</td>
              <td>{formatBytes(a.bytes)}</td>
              <td>{a.quota === null ? "—" : formatBytes(a.quota)}</td>
              <td>
                <label class="check">
                  <input type="checkbox" checked={a.admin} onChange={(e) => void act("/web/admin/accounts/admin", { address: a.address, admin: (e.currentTarget as HTMLInputElement).checked })} />{" "}
                  {pt.makeAdmin}
                </label>
              </td>
              <td>
                <button type="button" onClick={() => quota(a.address)}>
                  {pt.quota}
                </button>{" "}
                <button type="button" onClick={() => password(a.address)}>
                  {pt.resetPassword}
                </button>{" "}
                <button type="button" onClick={() => confirm(pt.confirmRemove.replace("{x}", a.address)) && void act("/web/admin/accounts/remove", { address: a.address })}>
                  {pt.remove}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {data.removed.length > 0 && (
        <>
          <h2 style={{ marginTop: "24px" }}>{pt.removed}</h2>
          <table>
            <thead>
              <tr>
                <th>{pt.address}</th>
                <th>{pt.removedAt}</th>
                <th>{pt.purgeAt}</th>
                <th>{pt.messages}</th>
                <th></th>
              </tr>
            </thead>
            <tbody>
              {data.removed.map((r) => (
                <tr key={r.id}>
                  <td>{r.address}</td>
                  <td>{formatTime(r.removedAt, locale)}</td>
                  <td>{formatTime(r.purgeAt, locale)}</td>
                  <td>
                    {r.messages} ({formatBytes(r.bytes)})
                  </td>
                  <td>
                    <button type="button" onClick={() => void act("/web/admin/accounts/restore", { address: r.address })}>
                      {pt.restore}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      <h2 style={{ marginTop: "24px" }}>{pt.aliases}</h2>
      <form class="inline" onSubmit={addAlias}>
        <input name="alias" type="email" placeholder={pt.alias} required />
        <input name="account" type="email" placeholder={pt.target} required />
        <button type="submit">{pt.add}</button>
      </form>
      <table>
        <tbody>
          {(aliases.data?.aliases ?? []).map((a) => (
            <tr key={a.alias}>
              <td>{a.alias}</td>
              <td>
                → {a.account}
                {a.accountRemoved ? " (removed)" : ""}
              </td>
              <td>
                <button type="button" onClick={() => void act("/web/admin/aliases/remove", { alias: a.alias })}>
                  {pt.remove}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

interface DnsRecord {
  status?: string;
  detail?: string;
  name: string;
  type: string;
  value: string;
  required: boolean;
  purpose: string;
  zoneLine: string;
}

function Domains({ onError }: OnError) {
  const { data, error, reload } = useApi<{ domains: string[] }>("/web/admin/domains", onError);
  const { act, view } = useAction(reload, onError);
  const [dns, setDns] = useState<{ domain: string; records: DnsRecord[] } | null>(null);
  function add(ev: Event) {
    ev.preventDefault();
    const form = ev.currentTarget as HTMLFormElement;
    void act("/web/admin/domains/add", { domain: new FormData(form).get("domain") }).then(() => form.reset());
  }
  function show(domain: string, check = false) {
    getJson<{ domain: string; records: DnsRecord[] }>(`/web/admin/dns?domain=${encodeURIComponent(domain)}${check ? "&check=1" : ""}`)
      .then(setDns)
      .catch(onError);
  }
  if (error) return <p class="error">{error}</p>;
  if (!data) return <p class="muted">{pt.loading}</p>;
  return (
    <section data-testid="domains">
      <h2>{pt.domains}</h2>
      {view}
      <form class="inline" onSubmit={add}>
        <input name="domain" type="text" placeholder="example.com" required />
        <button type="submit">{pt.add}</button>
      </form>
      <table>
        <tbody>
          {data.domains.map((d) => (
            <tr key={d}>
              <td>{d}</td>
              <td>
                <button type="button" onClick={() => show(d)}>
                  {pt.dnsRecords}
                </button>{" "}
                <button type="button" onClick={() => void act("/web/admin/domains/remove", { domain: d })}>
                  {pt.remove}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {dns && (
        <>
          <h2 style={{ marginTop: "24px" }}>
            {pt.dnsRecords}: {dns.domain}{" "}
            <button type="button" data-action="dns-check" onClick={() => show(dns.domain, true)}>
              {pt.dnsCheck}
            </button>
          </h2>
          <table data-testid="dns">
            <tbody>
              {dns.records.map((r) => (
                <tr key={`${r.type}${r.name}${r.value}`}>
                  <td>
                    {r.type}
                    {r.required ? "" : " *"}
                    {r.status && <div class={r.status === "OK" ? "ok" : r.status === "SKIPPED" ? "muted" : "bad"}>{r.status}</div>}
                  </td>
                  <td>
                    <div class="zone">{r.zoneLine}</div>
                    <div class="muted">{r.purpose}</div>
                    {r.detail && <div class="muted">{r.detail}</div>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}

interface QueuedMessage {
  id: number;
  sender: string;
  createdAt: number;
  size: number;
  recipients: { address: string; state: string; attempts: number; nextAttemptAt: number; lastError: string }[];
}

function Queue({ onError }: OnError) {
  const { data, error, reload } = useApi<{ messages: QueuedMessage[] }>("/web/admin/queue", onError, 10000);
  const { act, view } = useAction(reload, onError);
  if (error) return <p class="error">{error}</p>;
  if (!data) return <p class="muted">{pt.loading}</p>;
  return (
    <section data-testid="queue">
      <h2>{pt.queue}</h2>
      {view}
      {data.messages.length === 0 && <p class="muted">{pt.emptyQueue}</p>}
      {data.messages.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>{pt.id}</th>
              <th>{pt.sender}</th>
              <th>{pt.recipients}</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {data.messages.map((m) => (
              <tr key={m.id} data-queue-id={m.id}>
                <td>
                  {m.id}
                  <div class="muted">{formatTime(m.createdAt, locale)}</div>
                </td>
                <td>{m.sender || "<>"}</td>
                <td>
                  {m.recipients.map((r) => (
                    <div key={r.address}>
                      {r.address} — {r.state}, {r.attempts}× {r.lastError && <span class="muted">({r.lastError})</span>}
                      {r.state === "queued" && r.nextAttemptAt > 0 && <span class="muted"> → {formatTime(r.nextAttemptAt, locale)}</span>}
                    </div>
                  ))}
                </td>
                <td>
                  {(["retry", "hold", "release", "delete"] as const).map((a) => (
                    <button key={a} type="button" data-action={a} onClick={() => void act("/web/admin/queue/action", { id: m.id, action: a })}>
                      {pt[a]}
                    </button>
                  ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

interface BackupSet {
  id: string;
  complete: boolean;
  problem: string;
  created?: number;
  counts?: Record<string, number>;
}
interface Job {
  kind: string;
  running: boolean;
  label: string;
  items: number;
  total: number;
  bytes: number;
  startedAt: number;
  finishedAt: number;
  result: string;
}

function Backups({ onError }: OnError) {
  const { data, error, reload } = useApi<{ dest: string; sets: BackupSet[]; job: Job; error?: string }>("/web/admin/backups", onError, 2000);
  const { act, view } = useAction(reload, onError);
  if (error) return <p class="error">{error}</p>;
  if (!data) return <p class="muted">{pt.loading}</p>;
  const job = data.job;
  return (
    <section data-testid="backups">
      <h2>{pt.backups}</h2>
      <p class="muted">
        {pt.destination}: {data.dest}
      </p>
      {view}
      <button type="button" class="primary" disabled={job.running} onClick={() => void act("/web/admin/backups/create", {})}>
        {pt.createBackup}
      </button>{" "}
      <button type="button" disabled={job.running} onClick={() => void act("/web/admin/backups/verify", { id: "" })}>
        {pt.verify}
      </button>
      {job.startedAt > 0 && (
        <p class="progress" data-testid="job">
          {job.kind}: {job.running ? `${pt.running} — ${job.label} ${job.items}${job.total ? `/${job.total}` : ""} (${formatBytes(job.bytes)})` : job.result}
        </p>
      )}
      <table>
        <tbody>
          {data.sets.map((s) => (
            <tr key={s.id}>
              <td>{s.id}</td>
              <td>{s.complete ? formatTime(s.created ?? 0, locale) : <span class="bad">{s.problem}</span>}</td>
              <td>{s.counts ? `${s.counts["accounts"] ?? 0} ${pt.accounts}, ${s.counts["messages"] ?? 0} ${pt.messages}` : ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function Audit({ onError }: OnError) {
  const { data, error } = useApi<{ entries: { at: number; admin: string; ip: string; action: string; target: string; ok: boolean; detail: string }[] }>("/web/admin/audit", onError);
  if (error) return <p class="error">{error}</p>;
  if (!data) return <p class="muted">{pt.loading}</p>;
  return (
    <section data-testid="audit">
      <h2>{pt.audit}</h2>
      <table>
        <thead>
          <tr>
            <th>{pt.time}</th>
            <th>{pt.admin}</th>
            <th>{pt.action}</th>
            <th>{pt.result}</th>
          </tr>
        </thead>
        <tbody>
          {data.entries.map((e, i) => (
            <tr key={i}>
              <td>{formatTime(e.at, locale)}</td>
              <td>
                {e.admin}
                <div class="muted">{e.ip}</div>
              </td>
              <td>
                {e.action} {e.target}
              </td>
              <td class={e.ok ? "ok" : "bad"}>
                {e.ok ? "ok" : "refused"} {e.detail && <span class="muted">{e.detail}</span>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
