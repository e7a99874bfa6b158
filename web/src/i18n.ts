// English and Japanese UI text, chosen by the browser's language.

const en = {
  appName: "Hato Mail",
  signIn: "Sign in",
  signingIn: "Signing in…",
  address: "Email address",
  password: "Password",
  loginFailed: "The address or password is not right.",
  tryLater: "The service is busy. Please try again in a minute.",
  sessionExpired: "Your session has ended. Please sign in again.",
  signOut: "Sign out",
  folders: "Folders",
  compose: "Write",
  search: "Search mail",
  searchResults: "Search results",
  noMessages: "No messages here.",
  loading: "Loading…",
  noSubject: "(no subject)",
  from: "From",
  to: "To",
  cc: "Cc",
  subject: "Subject",
  date: "Date",
  reply: "Reply",
  replyAll: "Reply all",
  forward: "Forward",
  delete: "Delete",
  move: "Move to…",
  markRead: "Mark read",
  markUnread: "Mark unread",
  flag: "Flag",
  unflag: "Unflag",
  undo: "Undo",
  deleted: "Moved to Trash.",
  deletedForever: "Deleted.",
  moved: "Moved.",
  back: "Back",
  send: "Send",
  sending: "Sending…",
  sent: "Sent.",
  draftSaved: "Draft saved",
  saveDraft: "Save draft",
  discard: "Discard",
  attach: "Attach files",
  attachments: "Attachments",
  remoteBlocked: "Pictures from the internet are hidden to protect your privacy.",
  showImages: "Show pictures",
  selectMessage: "Choose a message to read it.",
  error: "Something went wrong:",
  newMail: "New mail",
  forwardedHeader: "---------- Forwarded message ----------",
  wrote: "wrote:",
  shortcuts: "Keys: j/k next/previous, r reply, a reply all, f forward, c write, # delete, s flag, u unread, / search",
  menu: "Menu",
  settings: "Settings",
};

type Text = typeof en;

const ja: Text = {
  appName: "Hato メール",
  signIn: "ログイン",
  signingIn: "ログインしています…",
  address: "メールアドレス",
  password: "パスワード",
  loginFailed: "メールアドレスまたはパスワードが正しくありません。",
  tryLater: "混み合っています。少し待ってからもう一度お試しください。",
  sessionExpired: "セッションが終了しました。もう一度ログインしてください。",
  signOut: "ログアウト",
  folders: "フォルダ",
  compose: "作成",
  search: "メールを検索",
  searchResults: "検索結果",
  noMessages: "メッセージはありません。",
  loading: "読み込み中…",
  noSubject: "(件名なし)",
  from: "差出人",
  to: "宛先",
  cc: "Cc",
  subject: "件名",
  date: "日時",
  reply: "返信",
  replyAll: "全員に返信",
  forward: "転送",
  delete: "削除",
  move: "移動…",
  markRead: "既読にする",
  markUnread: "未読にする",
  flag: "フラグを付ける",
  unflag: "フラグを外す",
  undo: "元に戻す",
  deleted: "ごみ箱に移動しました。",
  deletedForever: "削除しました。",
  moved: "移動しました。",
  back: "戻る",
  send: "送信",
  sending: "送信しています…",
  sent: "送信しました。",
  draftSaved: "下書きを保存しました",
  saveDraft: "下書き保存",
  discard: "破棄",
  attach: "ファイルを添付",
  attachments: "添付ファイル",
  remoteBlocked: "プライバシー保護のため、インターネット上の画像は表示していません。",
  showImages: "画像を表示",
  selectMessage: "読むメッセージを選んでください。",
  error: "エラーが発生しました:",
  newMail: "新着メール",
  forwardedHeader: "---------- 転送メッセージ ----------",
  wrote: "さんが書きました:",
  shortcuts: "キー: j/k 次/前, r 返信, a 全員に返信, f 転送, c 作成, # 削除, s フラグ, u 未読, / 検索",
  menu: "メニュー",
  settings: "設定",
};

const ROLE_NAMES: Record<string, [string, string]> = {
  inbox: ["Inbox", "受信トレイ"],
  drafts: ["Drafts", "下書き"],
  sent: ["Sent", "送信済み"],
  trash: ["Trash", "ごみ箱"],
  junk: ["Junk", "迷惑メール"],
  archive: ["Archive", "アーカイブ"],
};

// The account's choice first (the hato_lang cookie the server sets at
// sign-in and when it changes on /account), else the browser's languages.
function chosenLanguage(): "en" | "ja" | null {
  const m = /(?:^|;\s*)hato_lang=(en|ja)(?:;|$)/.exec(document.cookie);
  return m ? (m[1] as "en" | "ja") : null;
}

export const lang: "en" | "ja" =
  chosenLanguage() ??
  ((navigator.languages ?? [navigator.language]).some((l) => l.toLowerCase().startsWith("ja")) ? "ja" : "en");

// True when the sign-in just set a language cookie other than the page's.
export function languageChanged(): boolean {
  const chosen = chosenLanguage();
  return chosen !== null && chosen !== lang;
}

export const t: Text = lang === "ja" ? ja : en;

export function roleName(role: string | null, name: string): string {
  const r = role ? ROLE_NAMES[role] : undefined;
  if (!r) return name;
  return lang === "ja" ? r[1] : r[0];
}

export function formatDate(iso: string, full = false): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const now = new Date();
  const locale = lang === "ja" ? "ja-JP" : undefined;
  if (full) return d.toLocaleString(locale);
  if (d.toDateString() === now.toDateString())
    return d.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
  return d.toLocaleDateString(locale, { month: "short", day: "numeric", year: d.getFullYear() === now.getFullYear() ? undefined : "numeric" });
}
