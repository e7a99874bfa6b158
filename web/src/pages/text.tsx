// English and Japanese text of the member's pages and the admin console
// (chosen like the webmail's: the browser's languages), and the frame they
// share: the top bar, and the sign-in check.
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { lang } from "../i18n";
import { webLogout } from "../jmap";
import type { WebSession } from "../jmap";
import { currentSession } from "./api";

const en = {
  mail: "Mail",
  account: "My account",
  admin: "Admin",
  signOut: "Sign out",
  loading: "Loading…",
  signInFirst: "Please sign in first.",
  signIn: "Sign in",
  accountTitle: "My account",
  changePassword: "Change password",
  oldPassword: "Current password",
  newPassword: "New password",
  confirmPassword: "New password again",
  signOutOthers: "Also sign out my other web sessions and API tokens",
  passwordNote: "Mail programs signed in with the old password are signed out and must use the new one (app passwords keep working).",
  passwordsDiffer: "The two new passwords differ.",
  passwordChanged: "Your password was changed.",
  oldWrong: "The current password is not right.",
  storage: "Storage",
  noQuota: "No storage limit is set for your account.",
  aliases: "Your other addresses",
  noAliases: "Mail reaches you only at your own address.",
  appPasswords: "App passwords for mail programs",
  appPasswordsHelp: "Give each mail program (phone, laptop) its own password; revoke it if the device is lost. They work for IMAP, POP3 and sending, not for this web site.",
  appPasswordShown: "The password for “{label}” — type it into the mail program now; it is not shown again:",
  appPasswordName: "Name, e.g. “Phone”",
  createAppPassword: "Create",
  name: "Name",
  created: "Created",
  lastUsed: "Last used",
  never: "never",
  revoke: "Revoke",
  setup: "Set up a mail program",
  setupHelp: "Most mail programs set themselves up from your address. If yours asks, use these settings.",
  incoming: "Incoming",
  outgoing: "Outgoing",
  server: "Server",
  port: "Port",
  security: "Security",
  username: "User name",
  appleProfile: "Download the profile for iPhone, iPad and Mac",
  download: "Download all my mail",
  downloadHelp: "A zip file with one mbox file per folder (the same files as `hato export`); every mail program can import them.",
  downloadButton: "Download (.zip)",
  vacation: "Vacation reply",
  vacationOn: "Send an automatic reply",
  vacationSubject: "Subject",
  vacationBody: "Message",
  vacationFrom: "From (optional)",
  vacationTo: "Until (optional)",
  save: "Save",
  saved: "Saved.",
  forwarding: "Forwarding",
  forwardingHelp: "Send each new message on to another address. Leave the address empty to stop.",
  forwardTo: "Forward to",
  keepCopy: "Keep a copy here",
  forwardingNow: "New mail is forwarded to {x}.",
  forwardingOff: "Mail is not forwarded.",
  language: "Language",
  languageHelp: "For these pages, the webmail and the mails the server writes to you.",
  languageAuto: "The browser's language",
  // admin
  overview: "Overview",
  accounts: "Accounts",
  domains: "Domains",
  queue: "Queue",
  backups: "Backups",
  audit: "Audit log",
  notAdmin: "This page is for administrators.",
  health: "Health",
  deliveries: "Deliveries/s",
  sent: "Sent/s",
  queueSize: "Queue size",
  queueAge: "Oldest queued (s)",
  commit: "Commit latency (ms)",
  connections: "Connections",
  loginFailures: "Login failures",
  address: "Address",
  password: "Password",
  messages: "Messages",
  size: "Size",
  quota: "Quota",
  role: "Role",
  add: "Add",
  remove: "Remove",
  restore: "Restore",
  setQuota: "Quota (MB, empty = none)",
  resetPassword: "Reset password",
  makeAdmin: "admin",
  removed: "Removed accounts (kept for the retention period)",
  removedAt: "Removed",
  purgeAt: "Purged after",
  alias: "Alias",
  target: "Account",
  dnsRecords: "DNS records to publish",
  dnsCheck: "Check what DNS answers",
  show: "Show",
  id: "ID",
  sender: "Sender",
  recipients: "Recipients",
  retry: "Retry",
  hold: "Hold",
  release: "Release",
  delete: "Delete",
  emptyQueue: "The queue is empty.",
  createBackup: "Create a backup",
  verify: "Verify",
  destination: "Destination",
  running: "running",
  time: "Time",
  action: "Action",
  result: "Result",
  done: "Done.",
  confirmRemove: "Remove {x}? The mail is kept for the retention period.",
};

type PageText = typeof en;

const ja: PageText = {
  mail: "メール",
  account: "アカウント",
  admin: "管理",
  signOut: "ログアウト",
  loading: "読み込み中…",
  signInFirst: "先にログインしてください。",
  signIn: "ログイン",
  accountTitle: "アカウント",
  changePassword: "パスワードの変更",
  oldPassword: "現在のパスワード",
  newPassword: "新しいパスワード",
  confirmPassword: "新しいパスワード (確認)",
  signOutOthers: "他のウェブのセッションと API トークンもログアウトする",
  passwordNote: "古いパスワードでログインしているメールソフトはログアウトされ、新しいパスワードが必要になります (アプリパスワードはそのまま使えます)。",
  passwordsDiffer: "新しいパスワードが一致しません。",
  passwordChanged: "パスワードを変更しました。",
  oldWrong: "現在のパスワードが正しくありません。",
  storage: "容量",
  noQuota: "容量の上限は設定されていません。",
  aliases: "別のアドレス",
  noAliases: "ご自分のアドレス以外の受信アドレスはありません。",
  appPasswords: "メールソフト用のアプリパスワード",
  appPasswordsHelp: "メールソフト (スマートフォン、パソコン) ごとに別のパスワードを作れます。端末をなくしたら取り消してください。IMAP・POP3・送信で使え、このウェブサイトでは使えません。",
  appPasswordShown: "「{label}」のパスワードです。今メールソフトに入力してください。二度と表示されません:",
  appPasswordName: "名前 (例: スマートフォン)",
  createAppPassword: "作成",
  name: "名前",
  created: "作成日時",
  lastUsed: "最終使用",
  never: "未使用",
  revoke: "取り消す",
  setup: "メールソフトの設定",
  setupHelp: "多くのメールソフトはメールアドレスから自動で設定されます。尋ねられたら次の設定を使ってください。",
  incoming: "受信",
  outgoing: "送信",
  server: "サーバー",
  port: "ポート",
  security: "暗号化",
  username: "ユーザー名",
  appleProfile: "iPhone・iPad・Mac 用のプロファイルをダウンロード",
  download: "すべてのメールをダウンロード",
  downloadHelp: "フォルダーごとの mbox ファイルをまとめた zip ファイルです (`hato export` と同じファイル)。どのメールソフトにも取り込めます。",
  downloadButton: "ダウンロード (.zip)",
  vacation: "不在時の自動返信",
  vacationOn: "自動返信を送る",
  vacationSubject: "件名",
  vacationBody: "本文",
  vacationFrom: "開始日 (任意)",
  vacationTo: "終了日 (任意)",
  save: "保存",
  saved: "保存しました。",
  forwarding: "転送",
  forwardingHelp: "新しいメールを別のアドレスへ転送します。停止するにはアドレスを空欄にしてください。",
  forwardTo: "転送先",
  keepCopy: "このアカウントにもコピーを残す",
  forwardingNow: "新しいメールは {x} へ転送されます。",
  forwardingOff: "転送していません。",
  language: "言語",
  languageHelp: "このページ、ウェブメール、サーバーからあなたへのメールで使われます。",
  languageAuto: "ブラウザーの言語",
  overview: "概要",
  accounts: "アカウント",
  domains: "ドメイン",
  queue: "送信キュー",
  backups: "バックアップ",
  audit: "監査ログ",
  notAdmin: "このページは管理者用です。",
  health: "状態",
  deliveries: "配送/秒",
  sent: "送信/秒",
  queueSize: "キューの件数",
  queueAge: "最古の待ち時間 (秒)",
  commit: "書き込み遅延 (ms)",
  connections: "接続数",
  loginFailures: "ログイン失敗",
  address: "アドレス",
  password: "パスワード",
  messages: "メッセージ",
  size: "サイズ",
  quota: "容量上限",
  role: "役割",
  add: "追加",
  remove: "削除",
  restore: "復元",
  setQuota: "容量上限 (MB、空欄 = なし)",
  resetPassword: "パスワード再設定",
  makeAdmin: "管理者",
  removed: "削除したアカウント (保持期間中)",
  removedAt: "削除日時",
  purgeAt: "完全削除の予定",
  alias: "別名",
  target: "アカウント",
  dnsRecords: "公開する DNS レコード",
  dnsCheck: "現在の DNS の応答を確認",
  show: "表示",
  id: "ID",
  sender: "送信者",
  recipients: "宛先",
  retry: "再送",
  hold: "保留",
  release: "保留解除",
  delete: "削除",
  emptyQueue: "キューは空です。",
  createBackup: "バックアップを作成",
  verify: "検証",
  destination: "保存先",
  running: "実行中",
  time: "日時",
  action: "操作",
  result: "結果",
  done: "完了しました。",
  confirmRemove: "{x} を削除しますか? メールは保持期間のあいだ残ります。",
};

export const pt: PageText = lang === "ja" ? ja : en;
export const locale = lang === "ja" ? "ja-JP" : undefined;

// The top bar and the sign-in check; children render once signed in.
export function Frame(props: { active: "account" | "admin"; admin: boolean; children: ComponentChildren }) {
  const [s, setS] = useState<WebSession | null | undefined>(undefined);
  useEffect(() => {
    document.documentElement.lang = lang;
    currentSession()
      .then(setS)
      .catch(() => setS(null));
  }, []);
  if (s === undefined) return <div class="splash">{pt.loading}</div>;
  if (s === null)
    return (
      <main class="page">
        <p>{pt.signInFirst}</p>
        <a class="button" href="/">
          {pt.signIn}
        </a>
      </main>
    );
  async function signOut() {
    await webLogout(s!.csrfToken).catch(() => undefined);
    location.href = "/";
  }
  return (
    <main class="page">
      <header class="page-top">
        <span class="brand">
          <a href="/">✉ Hato</a>
        </span>
        <nav>
          <a href="/">{pt.mail}</a>
          <a href="/account" class={props.active === "account" ? "active" : ""}>
            {pt.account}
          </a>
          {(props.admin || props.active === "admin") && (
            <a href="/admin" class={props.active === "admin" ? "active" : ""}>
              {pt.admin}
            </a>
          )}
        </nav>
        <span class="me">{s.username}</span>
        <button type="button" onClick={() => void signOut()}>
          {pt.signOut}
        </button>
      </header>
      {props.children}
    </main>
  );
}
