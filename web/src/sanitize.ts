// HTML mail, made safe to show: DOMPurify removes scripts, event handlers,
// javascript: URLs, forms and embedded objects; what remains is shown in an
// <iframe sandbox> (no allow-scripts, no allow-forms) whose document carries
// its own Content-Security-Policy: nothing may load except inline styles,
// data: images and this site's own attachment downloads (cid: parts), and
// remote images only after the user allows them. Two fences: if the
// sanitizer misses something, the sandbox and the CSP still stop it.
import DOMPurify from "dompurify";

export interface SafeHtml {
  srcdoc: string;
  remoteBlocked: boolean; // the message has remote content that was not loaded
}

const REMOTE = /^\s*(https?:)?\/\//i;
const CSS_URL = /url\s*\(\s*(['"]?)\s*(https?:)?\/\//i;

export function safeHtml(html: string, allowRemote: boolean, cidUrl: (cid: string) => string | null): SafeHtml {
  let remote = false;
  const purify = DOMPurify();
  purify.addHook("uponSanitizeAttribute", (node, data) => {
    const name = data.attrName;
    const value = data.attrValue;
    if ((name === "src" || name === "background" || name === "poster" || name === "srcset") && value) {
      if (/^\s*cid:/i.test(value)) {
        const url = cidUrl(value.trim().slice(4));
        if (url) data.attrValue = url;
        else data.keepAttr = false;
      } else if (REMOTE.test(value) || name === "srcset") {
        remote = true;
        if (!allowRemote) data.keepAttr = false;
      }
    }
    if (name === "style" && CSS_URL.test(value)) {
      remote = true;
      if (!allowRemote) data.keepAttr = false;
    }
    void node;
  });
  purify.addHook("afterSanitizeAttributes", (node) => {
    if (node.tagName === "A") {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer");
    }
  });
  purify.addHook("uponSanitizeElement", (node, data) => {
    if (data.tagName === "style" && node.textContent && /url\s*\(/i.test(node.textContent)) {
      remote = true;
      if (!allowRemote) node.textContent = node.textContent.replace(/url\s*\([^)]*\)/gi, "none");
    }
  });
  const clean = purify.sanitize(html, {
    WHOLE_DOCUMENT: false,
    FORBID_TAGS: ["form", "input", "button", "select", "textarea", "object", "embed", "iframe", "frame", "frameset", "base", "meta", "link", "svg", "math", "audio", "video", "script", "noscript"],
    FORBID_ATTR: ["action", "formaction", "ping"],
    ALLOW_DATA_ATTR: false,
  });
  const img = allowRemote ? "img-src 'self' data: https: http:" : "img-src 'self' data:";
  const csp = `default-src 'none'; ${img}; style-src 'unsafe-inline'; font-src data:; base-uri 'none'; form-action 'none'`;
  const srcdoc =
    `<!doctype html><html><head><meta charset="utf-8">` +
    `<meta http-equiv="Content-Security-Policy" content="${csp}">` +
    `<meta name="referrer" content="no-referrer">` +
    `<style>body{margin:0;padding:8px;font:15px/1.5 system-ui,sans-serif;color:#222;word-wrap:break-word}img{max-width:100%;height:auto}pre{white-space:pre-wrap}</style>` +
    `</head><body>${clean}</body></html>`;
  return { srcdoc, remoteBlocked: remote && !allowRemote };
}

// Plain text as HTML-free pieces: the reader renders them as text nodes, with
// links recognised but never as markup.
export function linkify(text: string): { text: string; href?: string }[] {
  const out: { text: string; href?: string }[] = [];
  const re = /\bhttps?:\/\/[^\s<>"')\]]+/g;
  let last = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m.index > last) out.push({ text: text.slice(last, m.index) });
    out.push({ text: m[0], href: m[0] });
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push({ text: text.slice(last) });
  return out;
}
