// The webmail's top: login, then folders | message list | reader or compose.
// State lives here; the parts below are small components (Preact).
import { useEffect, useRef, useState } from "preact/hooks";
import { Client, JmapError, webLogin, webLogout, webSession } from "./jmap";
import type { Email, Identity, Mailbox, WebSession } from "./jmap";
import { languageChanged, roleName, t } from "./i18n";
import { MessageList } from "./list";
import { Reader } from "./reader";
import type { ReaderAction } from "./reader";
import { Compose, newCompose, replyTo } from "./compose";
import type { ComposeInit } from "./compose";
import { Settings } from "./settings";

type Phase = { kind: "checking" } | { kind: "login"; note: string | null } | { kind: "mail"; web: WebSession };

export function App() {
  const [phase, setPhase] = useState<Phase>({ kind: "checking" });
  useEffect(() => {
    webSession()
      .then((s) => setPhase(s ? { kind: "mail", web: s } : { kind: "login", note: null }))
      .catch(() => setPhase({ kind: "login", note: null }));
  }, []);
  if (phase.kind === "checking") return <div class="splash">{t.loading}</div>;
  if (phase.kind === "login") return <Login note={phase.note} onLogin={(web) => setPhase({ kind: "mail", web })} />;
  return (
    <Mail
      web={phase.web}
      onSignedOut={(expired) => setPhase({ kind: "login", note: expired ? t.sessionExpired : null })}
    />
  );
}

function Login(props: { note: string | null; onLogin: (s: WebSession) => void }) {
  const [error, setError] = useState<string | null>(props.note);
  const [busy, setBusy] = useState(false);
  async function submit(ev: Event) {
    ev.preventDefault();
    const form = ev.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    setBusy(true);
    setError(null);
    try {
      const s = await webLogin(String(data.get("username") ?? ""), String(data.get("password") ?? ""));
      // The account chose another language than the page was drawn in.
      if (languageChanged()) {
        location.reload();
        return;
      }
      props.onLogin(s);
    } catch (e) {
      const err = e as JmapError;
      setError(err.status === 401 ? t.loginFailed : err.status === 429 || err.status === 503 ? t.tryLater : `${t.error} ${err.message}`);
      setBusy(false);
    }
  }
  return (
    <main class="login">
      <form class="login-box" method="post" action="/web/login" onSubmit={submit}>
        <h1>
          <span class="logo" aria-hidden="true">
            ✉
          </span>{" "}
          {t.appName}
        </h1>
        <label>
          <span>{t.address}</span>
          <input name="username" type="email" autoComplete="username" required autoFocus />
        </label>
        <label>
          <span>{t.password}</span>
          <input name="password" type="password" autoComplete="current-password" required />
        </label>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? t.signingIn : t.signIn}
        </button>
      </form>
    </main>
  );
}

interface Toast {
  text: string;
  undo?: () => Promise<void>;
}

type View = { kind: "mailbox"; id: string } | { kind: "search"; text: string; back: string };

function Mail(props: { web: WebSession; onSignedOut: (expired: boolean) => void }) {
  const { web, onSignedOut } = props;
  const client = useRef<Client | null>(null);
  const [ready, setReady] = useState(false);
  const [mailboxes, setMailboxes] = useState<Mailbox[]>([]);
  const [identity, setIdentity] = useState<Identity | null>(null);
  const [view, setView] = useState<View | null>(null);
  const [selected, setSelected] = useState<Email | null>(null);
  const [compose, setCompose] = useState<{ init: ComposeInit; key: number } | null>(null);
  const [refresh, setRefresh] = useState(0);
  const [toast, setToast] = useState<Toast | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [drawer, setDrawer] = useState(false);
  const [settings, setSettings] = useState(false);
  const listIds = useRef<(string | undefined)[]>([]);
  const searchBox = useRef<HTMLInputElement>(null);

  const c = client.current;

  async function reloadMailboxes(cl: Client) {
    const list = await cl.mailboxes();
    setMailboxes(list);
    return list;
  }

  useEffect(() => {
    const cl = new Client(web.csrfToken, () => onSignedOut(true));
    client.current = cl;
    let pushTimer = 0;
    (async () => {
      await cl.connect();
      const list = await reloadMailboxes(cl);
      const ids = await cl.identities().catch(() => []);
      setIdentity(ids.find((i) => i.email.toLowerCase() === web.username.toLowerCase()) ?? ids[0] ?? null);
      const inbox = list.find((m) => m.role === "inbox") ?? list[0];
      if (inbox) setView({ kind: "mailbox", id: inbox.id });
      setReady(true);
      cl.listen(() => {
        clearTimeout(pushTimer);
        pushTimer = window.setTimeout(() => {
          void reloadMailboxes(cl).catch(() => undefined);
          setRefresh((n) => n + 1);
        }, 150);
      });
    })().catch((e: Error) => {
      if (!(e instanceof JmapError && e.status === 401)) setError(e.message);
    });
    // Session expiry: the server's answer decides; this only checks sooner.
    const expiry = web.expiresAt ? window.setTimeout(() => onSignedOut(true), Math.max(0, web.expiresAt * 1000 - Date.now())) : 0;
    return () => {
      cl.close();
      clearTimeout(pushTimer);
      clearTimeout(expiry);
    };
  }, []);

  const current = view?.kind === "mailbox" ? mailboxes.find((m) => m.id === view.id) : undefined;
  const trash = mailboxes.find((m) => m.role === "trash");

  function filterOf(v: View): Record<string, unknown> {
    return v.kind === "mailbox" ? { inMailbox: v.id } : { text: v.text };
  }

  async function open(e: Email) {
    if (!c) return;
    setCompose(null);
    setSettings(false);
    setDrawer(false);
    try {
      const full = await c.getFull(e.id);
      setSelected(full);
      if (full && !full.keywords["$seen"]) {
        await c.setEmails({ [full.id]: { "keywords/$seen": true } });
        setSelected({ ...full, keywords: { ...full.keywords, $seen: true } });
        changed();
      }
    } catch (err) {
      setError((err as Error).message);
    }
  }

  function bodyText(e: Email): string {
    const part = e.textBody?.find((p) => p.type === "text/plain");
    const v = part?.partId ? e.bodyValues?.[part.partId]?.value : undefined;
    if (v !== undefined) return v;
    const h = e.htmlBody?.[0]?.partId ? e.bodyValues?.[e.htmlBody[0].partId!]?.value ?? "" : "";
    return new DOMParser().parseFromString(h, "text/html").body.textContent ?? "";
  }

  // After our own change: reload the list and the counts now (push would
  // too, a moment later).
  function changed() {
    setRefresh((n) => n + 1);
    if (c) void reloadMailboxes(c).catch(() => undefined);
  }

  async function moveWithUndo(e: Email, target: string, text: string) {
    if (!c) return;
    const before = { ...e.mailboxIds };
    await c.setEmails({ [e.id]: { mailboxIds: { [target]: true } } });
    setSelected(null);
    changed();
    setToast({
      text,
      undo: async () => {
        await c.setEmails({ [e.id]: { mailboxIds: before } });
        changed();
      },
    });
  }

  async function act(a: ReaderAction) {
    if (!c || !selected) return;
    const e = selected;
    try {
      switch (a) {
        case "back":
          setSelected(null);
          break;
        case "reply":
        case "replyAll":
        case "forward":
          setCompose({ init: replyTo(e, a, identity?.email ?? web.username, bodyText(e)), key: Date.now() });
          break;
        case "delete":
          if (trash && !e.mailboxIds[trash.id]) {
            await moveWithUndo(e, trash.id, t.deleted);
          } else {
            await c.destroyEmails([e.id]);
            setSelected(null);
            changed();
            setToast({ text: t.deletedForever });
          }
          break;
        case "flag": {
          const on = !e.keywords["$flagged"];
          await c.setEmails({ [e.id]: { "keywords/$flagged": on ? true : null } });
          setSelected({ ...e, keywords: { ...e.keywords, $flagged: on } });
          changed();
          break;
        }
        case "unread":
          await c.setEmails({ [e.id]: { "keywords/$seen": null } });
          setSelected(null);
          changed();
          break;
      }
    } catch (err) {
      setError((err as Error).message);
    }
  }

  // Undo toasts disappear after a while.
  useEffect(() => {
    if (!toast) return;
    const timer = setTimeout(() => setToast(null), toast.undo ? 10000 : 4000);
    return () => clearTimeout(timer);
  }, [toast]);

  function step(delta: number) {
    if (!selected) {
      const first = listIds.current.find(Boolean);
      if (first) void open({ id: first } as Email);
      return;
    }
    const i = listIds.current.indexOf(selected.id);
    const next = listIds.current[i + delta];
    if (i >= 0 && next) void open({ id: next } as Email);
  }

  // Keyboard shortcuts (not while typing).
  useEffect(() => {
    const onKey = (ev: KeyboardEvent) => {
      const tag = (ev.target as HTMLElement | null)?.tagName ?? "";
      if (/^(INPUT|TEXTAREA|SELECT)$/.test(tag) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      const map: Record<string, () => void> = {
        j: () => step(1),
        k: () => step(-1),
        r: () => void act("reply"),
        a: () => void act("replyAll"),
        f: () => void act("forward"),
        "#": () => void act("delete"),
        Delete: () => void act("delete"),
        s: () => void act("flag"),
        u: () => void act("unread"),
        c: () => setCompose({ init: newCompose(), key: Date.now() }),
        "/": () => searchBox.current?.focus(),
        Escape: () => {
          setSelected(null);
          setCompose(null);
        },
      };
      const fn = map[ev.key];
      if (fn) {
        ev.preventDefault();
        fn();
      }
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  });

  async function signOut() {
    client.current?.close();
    await webLogout(web.csrfToken).catch(() => undefined);
    onSignedOut(false);
  }

  function search(ev: Event) {
    ev.preventDefault();
    const text = searchBox.current?.value.trim() ?? "";
    setSelected(null);
    if (!text) {
      if (view?.kind === "search") setView({ kind: "mailbox", id: view.back });
      return;
    }
    setView({ kind: "search", text, back: view?.kind === "mailbox" ? view.id : view?.back ?? "" });
  }

  const pane = compose ? "compose" : selected || settings ? "reader" : "list";
  return (
    <div class={`mail pane-${pane}${drawer ? " drawer-open" : ""}`}>
      <header class="top">
        <button class="only-phone menu" aria-label={t.menu} onClick={() => setDrawer(!drawer)}>
          ☰
        </button>
        <span class="brand">{t.appName}</span>
        <form class="search" role="search" onSubmit={search}>
          <input ref={searchBox} type="search" name="q" placeholder={t.search} aria-label={t.search} />
        </form>
        <a class="me" href="/account" data-action="account">
          {web.username}
        </a>
        <button
          data-action="settings"
          onClick={() => {
            setSettings(true);
            setSelected(null);
            setCompose(null);
          }}
        >
          {t.settings}
        </button>
        <button onClick={() => void signOut()} data-action="signout">
          {t.signOut}
        </button>
      </header>
      <nav class="folders" aria-label={t.folders}>
        <button class="primary compose-button" onClick={() => setCompose({ init: newCompose(), key: Date.now() })}>
          {t.compose}
        </button>
        <ul>
          {mailboxes.map((m) => (
            <li key={m.id}>
              <a
                href="#"
                class={view?.kind === "mailbox" && view.id === m.id ? "active" : ""}
                data-role={m.role ?? ""}
                data-name={m.name}
                onClick={(ev) => {
                  ev.preventDefault();
                  setSelected(null);
                  setCompose(null);
                  setDrawer(false);
                  if (searchBox.current) searchBox.current.value = "";
                  setSettings(false);
                  setView({ kind: "mailbox", id: m.id });
                }}
              >
                <span class="name">{roleName(m.role, m.name)}</span>
                {m.unreadEmails > 0 && <span class="count">{m.unreadEmails}</span>}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <section class="listpane">
        <h2 class="list-title">{view?.kind === "search" ? `${t.searchResults}: ${view.text}` : current ? roleName(current.role, current.name) : ""}</h2>
        {ready && c && view && (
          <MessageList
            client={c}
            filter={filterOf(view)}
            filterKey={JSON.stringify(view)}
            refresh={refresh}
            selectedId={selected?.id ?? null}
            onSelect={(e) => void open(e)}
            onLoaded={(ids) => (listIds.current = ids)}
          />
        )}
      </section>
      <section class="mainpane">
        {error && (
          <div class="banner error" role="alert">
            {t.error} {error} <button onClick={() => setError(null)}>×</button>
          </div>
        )}
        {settings && c && !compose && !selected ? (
          <Settings client={c} address={web.username} />
        ) : compose && c ? (
          <Compose
            key={compose.key}
            client={c}
            init={compose.init}
            identity={identity}
            mailboxes={mailboxes}
            onDone={(msg) => {
              setCompose(null);
              if (msg) setToast({ text: msg });
              changed();
            }}
          />
        ) : selected && c ? (
          <Reader client={c} email={selected} mailboxes={mailboxes} onAction={(a) => void act(a)} onMove={(id) => void moveWithUndo(selected, id, t.moved).catch((e: Error) => setError(e.message))} />
        ) : (
          <div class="empty">
            <p>{t.selectMessage}</p>
            <p class="hint">{t.shortcuts}</p>
          </div>
        )}
      </section>
      <button class="primary fab only-phone" onClick={() => setCompose({ init: newCompose(), key: Date.now() })}>
        {t.compose}
      </button>
      {toast && (
        <div class="toast" role="status">
          {toast.text}{" "}
          {toast.undo && (
            <button
              data-action="undo"
              onClick={() => {
                const u = toast.undo!;
                setToast(null);
                void u().catch((e: Error) => setError(e.message));
              }}
            >
              {t.undo}
            </button>
          )}
        </div>
      )}
    </div>
  );
}
