#!/usr/bin/env bash
# Builds the webmail (web/: TypeScript + Preact + Vite) into OUT (default
# build/web), which `hato serve` serves at "/" ([web] root). Dependencies come
# only from web/package-lock.json (npm ci), re-installed when the lock file
# changes; nothing is fetched at run time.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(realpath -m "${1:-$ROOT/build/web}")
cd "$ROOT/web"
if ! node -e "const [a,b]=process.versions.node.split(\".\").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)"; then
  echo "build-web: Node.js >= 20.19 is needed (found $(node --version 2>/dev/null))" >&2; exit 1
fi
stamp=node_modules/.hato-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
# Skip the build when nothing changed since the last one.
newest=$(find src index.html vite.config.ts tsconfig.json package-lock.json -newer "$OUT/index.html" 2>/dev/null | head -1 || true)
if [ -f "$OUT/index.html" ] && [ -z "$newest" ]; then exit 0; fi
npx tsc --noEmit -p .
HATO_WEB_OUT="$OUT" npx vite build --logLevel warn
# Precompressed copies (hato serves them to clients that accept gzip).
find "$OUT" -type f \( -name '*.js' -o -name '*.css' -o -name '*.html' \) -exec gzip -9kf {} \;
# The budget: the JS and CSS a browser downloads stay under 200 KB compressed.
BUDGET=$((200 * 1024))
size=$(find "$OUT/assets" -type f \( -name '*.js.gz' -o -name '*.css.gz' \) -printf '%s\n' | awk '{s+=$1} END {print s+0}')
if [ "$size" -gt "$BUDGET" ]; then
  echo "build-web: the webmail ships $size bytes of compressed JS+CSS, over the budget of $BUDGET" >&2
  exit 1
fi
echo "web: built into $OUT ($size bytes of JS+CSS gzip-compressed; budget $BUDGET)"
