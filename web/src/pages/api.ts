// The JSON endpoints of the member's pages and the admin console
// (src/web/account_api.h, src/web/admin_api.h): same origin, the session
// cookie, and the CSRF header on every POST.
import { webSession } from "../jmap";
import type { WebSession } from "../jmap";

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

let session: WebSession | null = null;

export async function currentSession(): Promise<WebSession | null> {
  session = await webSession();
  return session;
}

async function answer<T>(res: Response): Promise<T> {
  let body: unknown = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok) {
    const msg = body && typeof body === "object" && "error" in body ? String((body as { error: unknown }).error) : `HTTP ${res.status}`;
    throw new ApiError(msg, res.status);
  }
  return body as T;
}

// The CSRF token of the signed-in session (after currentSession()).
export function csrfToken(): string {
  return session?.csrfToken ?? "";
}

export async function getJson<T>(path: string): Promise<T> {
  return answer<T>(await fetch(path, { credentials: "same-origin" }));
}

export async function postJson<T>(path: string, data: unknown): Promise<T> {
  const res = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-Hato-CSRF": session?.csrfToken ?? "" },
    body: JSON.stringify(data),
  });
  return answer<T>(res);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatTime(unix: number | null, locale: string | undefined): string {
  if (!unix) return "—";
  return new Date(unix * 1000).toLocaleString(locale);
}
