// Builds the webmail into ../build/web (git-ignored; `hato serve` serves it
// at "/", see [web] root in hato.toml). No CDN, no inline script: the only
// <script> is the module Vite emits as a file, so the page's CSP can say
// script-src 'self'.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  build: {
    outDir: process.env.HATO_WEB_OUT ?? "../build/web",
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    target: "es2022",
    // The member's pages and the admin console are pages of their own
    // (served at /account and /admin), sharing Preact with the webmail.
    rollupOptions: {
      input: {
        main: "index.html",
        account: "account.html",
        admin: "admin.html",
      },
    },
  },
});
