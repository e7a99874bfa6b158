// The message list: windowed rendering over JMAP paging. Only the rows in
// view (plus a margin) are in the DOM, and only the pages of ids they need
// are fetched (Email/query position/limit + Email/get by result reference),
// so a 100,000-message folder costs the same as a 50-message one.
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import type { Client, Email } from "./jmap";
import { formatDate, t } from "./i18n";

export const ROW_HEIGHT = 72;
const PAGE = 50;
const OVERSCAN = 8;

export interface ListProps {
  client: Client;
  filter: Record<string, unknown>;
  filterKey: string; // changes when the folder or search changes
  refresh: number; // bumped by push: reload what is loaded
  selectedId: string | null;
  onSelect: (e: Email, index: number) => void;
  onLoaded: (ids: (string | undefined)[]) => void;
}

interface Loaded {
  key: string;
  total: number | null;
  rows: (Email | undefined)[];
  snippets: Record<string, string>;
}

export function MessageList(props: ListProps) {
  const { client, filter, filterKey, refresh, selectedId, onSelect, onLoaded } = props;
  const box = useRef<HTMLDivElement>(null);
  const [scroll, setScroll] = useState({ top: 0, height: 600 });
  const [data, setData] = useState<Loaded>({ key: "", total: null, rows: [], snippets: {} });
  const [error, setError] = useState<string | null>(null);
  const pending = useRef(new Set<number>());
  const loadedPages = useRef(new Set<number>());
  const generation = useRef(0);

  const textFilter = typeof filter["text"] === "string";

  async function loadPage(page: number, gen: number) {
    if (pending.current.has(page)) return;
    pending.current.add(page);
    try {
      const r = await client.queryPage(filter, page * PAGE, PAGE);
      if (gen !== generation.current) return;
      const byId = new Map(r.emails.map((e) => [e.id, e]));
      const snippets = textFilter ? await client.snippets(filter, r.ids) : {};
      if (gen !== generation.current) return;
      loadedPages.current.add(page);
      setData((d) => {
        const rows = d.key === filterKey ? d.rows.slice() : [];
        rows.length = Math.max(rows.length, r.total);
        if (rows.length > r.total) rows.length = r.total;
        r.ids.forEach((id, i) => {
          rows[page * PAGE + i] = byId.get(id);
        });
        return { key: filterKey, total: r.total, rows, snippets: { ...(d.key === filterKey ? d.snippets : {}), ...snippets } };
      });
      setError(null);
    } catch (e) {
      if (gen === generation.current) setError(String((e as Error).message ?? e));
    } finally {
      pending.current.delete(page);
    }
  }

  function visiblePages(top: number, height: number, total: number | null): number[] {
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    let last = Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN;
    if (total !== null) last = Math.min(last, Math.max(0, total - 1));
    const pages: number[] = [];
    for (let p = Math.floor(first / PAGE); p <= Math.floor(last / PAGE); p++) pages.push(p);
    return pages;
  }

  // A new folder or search: start over at the top.
  useEffect(() => {
    generation.current++;
    pending.current.clear();
    loadedPages.current.clear();
    if (box.current) box.current.scrollTop = 0;
    setData({ key: filterKey, total: null, rows: [], snippets: {} });
    void loadPage(0, generation.current);
  }, [filterKey]);

  // Push: reload the pages in view (the rest is dropped and refetched on demand).
  useEffect(() => {
    if (refresh === 0) return;
    const gen = ++generation.current;
    pending.current.clear();
    const pages = visiblePages(scroll.top, scroll.height, null);
    loadedPages.current.clear();
    for (const p of pages) void loadPage(p, gen);
  }, [refresh]);

  // Scrolling: fetch the pages that came into view.
  useEffect(() => {
    for (const p of visiblePages(scroll.top, scroll.height, data.total)) {
      if (!loadedPages.current.has(p)) void loadPage(p, generation.current);
    }
  }, [scroll, data.total]);

  useEffect(() => onLoaded(data.rows.map((e) => e?.id)), [data]);

  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    const update = () => setScroll({ top: el.scrollTop, height: el.clientHeight });
    update();
    let frame = 0;
    const onScroll = () => {
      if (frame) return;
      frame = requestAnimationFrame(() => {
        frame = 0;
        update();
      });
    };
    el.addEventListener("scroll", onScroll, { passive: true });
    const ro = new ResizeObserver(update);
    ro.observe(el);
    return () => {
      el.removeEventListener("scroll", onScroll);
      ro.disconnect();
    };
  }, []);

  // Keep the selected row in view (keyboard navigation).
  useEffect(() => {
    const el = box.current;
    if (!el || !selectedId) return;
    const i = data.rows.findIndex((e) => e?.id === selectedId);
    if (i < 0) return;
    const top = i * ROW_HEIGHT;
    if (top < el.scrollTop) el.scrollTop = top;
    else if (top + ROW_HEIGHT > el.scrollTop + el.clientHeight) el.scrollTop = top + ROW_HEIGHT - el.clientHeight;
  }, [selectedId]);

  const total = data.key === filterKey ? data.total : null;
  const first = Math.max(0, Math.floor(scroll.top / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min((total ?? 0) - 1, Math.ceil((scroll.top + scroll.height) / ROW_HEIGHT) + OVERSCAN);
  const rows = [];
  for (let i = first; i <= last; i++) {
    const e = data.rows[i];
    rows.push(
      e ? (
        <Row key={e.id} e={e} index={i} selected={e.id === selectedId} snippet={data.snippets[e.id]} onSelect={onSelect} />
      ) : (
        <div key={`p${i}`} class="row placeholder" style={{ top: `${i * ROW_HEIGHT}px` }} />
      ),
    );
  }
  return (
    <div class="list" ref={box} role="list" data-total={total ?? ""}>
      {error && <div class="list-note error">{t.error} {error}</div>}
      {total === null && !error && <div class="list-note">{t.loading}</div>}
      {total === 0 && <div class="list-note">{t.noMessages}</div>}
      <div class="list-inner" style={{ height: `${(total ?? 0) * ROW_HEIGHT}px` }}>
        {rows}
      </div>
    </div>
  );
}

function Row(props: { e: Email; index: number; selected: boolean; snippet: string | undefined; onSelect: (e: Email, i: number) => void }) {
  const { e, index, selected, snippet } = props;
  const unread = !e.keywords["$seen"];
  const flagged = !!e.keywords["$flagged"];
  const who = e.from?.[0] ? e.from[0].name || e.from[0].email : "";
  const cls = `row${unread ? " unread" : ""}${selected ? " selected" : ""}`;
  return (
    <div class={cls} role="listitem" data-id={e.id} style={{ top: `${index * ROW_HEIGHT}px` }} onClick={() => props.onSelect(e, index)}>
      <div class="row-top">
        <span class="row-from">{who}</span>
        {flagged && <span class="flag" aria-label="flagged">★</span>}
        {e.hasAttachment && <Clip />}
        <span class="row-date">{formatDate(e.receivedAt)}</span>
      </div>
      <div class="row-subject">{e.subject || t.noSubject}</div>
      <div class="row-preview">{snippet !== undefined ? <Snippet html={snippet} /> : e.preview}</div>
    </div>
  );
}

function Clip() {
  return (
    <svg class="clip" viewBox="0 0 16 16" width="14" height="14" role="img" aria-label="attachment">
      <path d="M10.5 3.5v7a2.5 2.5 0 0 1-5 0v-8a1.5 1.5 0 0 1 3 0v7.5a.5.5 0 0 1-1 0V4" fill="none" stroke="currentColor" stroke-width="1.3" stroke-linecap="round" />
    </svg>
  );
}

// RFC 8621 section 5.1: snippets are HTML with <mark> around the matches;
// rendered here as text and <mark> elements only, never as markup.
function Snippet(props: { html: string }) {
  const parts = props.html.split(/(<mark>|<\/mark>)/);
  let marked = false;
  const out = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (p === "<mark>") marked = true;
    else if (p === "</mark>") marked = false;
    else if (p) out.push(marked ? <mark key={i}>{unescape(p)}</mark> : unescape(p));
  }
  return <>{out}</>;
}

function unescape(s: string): string {
  return s
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, "&");
}
