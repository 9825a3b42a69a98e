#!/usr/bin/env bash
# End-to-end S3 tool check: start a 3-peer mesh of real `bun run node` processes, then
# drive it with Debian's aws CLI (/usr/bin/aws) and rclone (/usr/bin/rclone), using
# different peers' S3 endpoints for different steps:
#
#   mb; cp up/down (one small file, one ~20 MiB multipart file); ls; rm;
#   sync a folder of 500 files (0 B to 12 MiB, nested) up through peer 0 and down
#   through peer 2, then diff -r; rclone check; rclone copy up and back; rclone delete;
#   and no secret (admin secret, token, mesh key) in any peer's log.
#
# Prints one PASS/FAIL line per step and stops at the first failure with a non-zero exit,
# showing the failing command, its output and the tail of every peer's log. The peers
# and the temp folder are always cleaned up, and the whole run is bounded in time.
#
# Usage: test/tools/s3-cli-check.sh
#   BUN=/path/to/bun        the bun to run the peers with (default: bun on PATH)
#   S3CHECK_BUDGET=170      seconds the whole run may take
#   S3CHECK_KEEP=1          keep the temp folder (data, logs) for a look afterwards
#   S3CHECK_DEBUG=1         run the tools with --debug / -vv (very verbose)
set -euo pipefail
exec 2>&1

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

BUN=${BUN:-bun}
AWS=/usr/bin/aws
RCLONE=/usr/bin/rclone
BUDGET=${S3CHECK_BUDGET:-170}
DEADLINE=$((SECONDS + BUDGET))
BUCKET=s3cli-check
ADMIN_KEY=MKS3CLICHECK0000000001
ADMIN_SECRET=s3-cli-check-secret-0123456789abcdef

STEP="setup"
STEP_T0=$SECONDS
FAILED=0
declare -a PIDS=() HTTP=() S3=()

say() { printf '%s\n' "$*"; }

# fail MESSAGE: print the step's FAIL line and stop (the EXIT trap prints the peer logs).
fail() {
  say "FAIL  ${STEP}: $*"
  FAILED=1
  exit 1
}

step() {
  STEP=$1
  STEP_T0=$SECONDS
}

pass() {
  say "PASS  ${STEP} ($((SECONDS - STEP_T0)) s)${1:+: $1}"
  STEP=""
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if [ "$rc" -ne 0 ] && [ "$FAILED" -eq 0 ]; then
    say "FAIL  ${STEP:-after the last step}: unexpected exit status $rc"
  fi
  # SIGTERM every peer launcher (it forwards the signal to the peer), then SIGKILL
  # whatever is still there after a few seconds, launchers and their children alike.
  local pid kids=()
  for pid in "${PIDS[@]}"; do
    while read -r k; do [ -n "$k" ] && kids+=("$k"); done < <(pgrep -P "$pid" 2>/dev/null)
    kill -TERM "$pid" 2>/dev/null
  done
  local end=$((SECONDS + 6)) alive
  while :; do
    alive=0
    for pid in "${PIDS[@]}" "${kids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] || [ "$SECONDS" -ge "$end" ] && break
    sleep 0.2
  done
  if [ "$alive" -ne 0 ]; then
    say "note: a peer did not stop within 6 s of SIGTERM; sending SIGKILL"
    for pid in "${PIDS[@]}" "${kids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  fi
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  if [ "$rc" -ne 0 ] && [ -n "${WORK:-}" ]; then
    local i f
    for i in "${!PIDS[@]}"; do
      for f in "$WORK/peer$i.out" "$WORK/peer$i.err"; do
        [ -s "$f" ] || continue
        say "----- tail of ${f##*/} (s3=${S3[$i]:-?} http=${HTTP[$i]:-?})"
        tail -n 40 "$f"
      done
    done
  fi
  if [ -n "${WORK:-}" ]; then
    if [ "${S3CHECK_KEEP:-}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
  fi
  if [ "$rc" -eq 0 ]; then say "s3-cli-check: all steps passed in $((SECONDS)) s"; else say "s3-cli-check: FAILED after $((SECONDS)) s"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# ---------------------------------------------------------------------------------------
# Environment: only our own settings reach the tools and the peers.
step "tools present"
[ -x "$AWS" ] || fail "$AWS is missing (install Debian's awscli: apt-get install awscli)"
[ -x "$RCLONE" ] || fail "$RCLONE is missing (install Debian's rclone: apt-get install rclone)"
command -v "$BUN" >/dev/null || fail "bun not found (set BUN=/path/to/bun)"
for v in $(compgen -e); do
  case "$v" in AWS_* | RCLONE_* | MESH_*) [ "$v" = MESH_LOG ] || unset "$v" ;; esac
done
pass "$("$AWS" --version 2>&1 | head -1); $("$RCLONE" version 2>&1 | head -1)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/meshstore-s3cli.XXXXXX")
mkdir -p "$WORK/home" "$WORK/aws" "$WORK/logs"
cat >"$WORK/aws/config" <<'EOF'
[default]
region = us-east-1
s3 =
    addressing_style = path
EOF
: >"$WORK/aws/credentials"
: >"$WORK/rclone.conf"

export MESH_ADMIN_KEY=$ADMIN_KEY MESH_ADMIN_SECRET=$ADMIN_SECRET
export AWS_ACCESS_KEY_ID=$ADMIN_KEY AWS_SECRET_ACCESS_KEY=$ADMIN_SECRET AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=$WORK/aws/config AWS_SHARED_CREDENTIALS_FILE=$WORK/aws/credentials
export AWS_PAGER="" AWS_EC2_METADATA_DISABLED=true
export RCLONE_CONFIG=$WORK/rclone.conf
export RCLONE_CONFIG_MESH_TYPE=s3 RCLONE_CONFIG_MESH_PROVIDER=Other RCLONE_CONFIG_MESH_REGION=us-east-1
export RCLONE_CONFIG_MESH_ACCESS_KEY_ID=$ADMIN_KEY RCLONE_CONFIG_MESH_SECRET_ACCESS_KEY=$ADMIN_SECRET
export RCLONE_CONFIG_MESH_FORCE_PATH_STYLE=true

# run SECONDS CMD...: run a command with a time limit (never beyond the run's budget),
# stdout to $OUT and stderr to $ERR. Exit codes listed in $OK_RC (default "0") count as
# success; anything else prints the command, its output and fails the step.
NCMD=0
OUT="" ERR="" RC=0
run() {
  local secs=$1
  shift
  local left=$((DEADLINE - SECONDS))
  [ "$left" -gt 0 ] || fail "time budget of ${BUDGET} s used up before: $*"
  [ "$secs" -le "$left" ] || secs=$left
  NCMD=$((NCMD + 1))
  OUT=$WORK/logs/$NCMD.out
  ERR=$WORK/logs/$NCMD.err
  RC=0
  HOME=$WORK/home timeout -k 5 "$secs" "$@" >"$OUT" 2>"$ERR" </dev/null || RC=$?
  local ok
  for ok in ${OK_RC:-0}; do [ "$RC" -eq "$ok" ] && return 0; done
  say "      command: $*"
  if [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ]; then say "      (killed after the ${secs} s time limit)"; fi
  say "      exit status $RC; output (last 40 lines of each):"
  tail -n 40 "$OUT" | sed 's/^/      out| /'
  tail -n 40 "$ERR" | sed 's/^/      err| /'
  fail "command failed (exit $RC)"
}

# aws_at PEER ARGS...: the aws CLI against peer PEER's S3 endpoint.
aws_at() {
  local peer=$1
  shift
  local dbg=()
  [ "${S3CHECK_DEBUG:-}" = 1 ] && dbg=(--debug)
  run "${T:-60}" "$AWS" "${dbg[@]}" --endpoint-url "${S3[$peer]}" "$@"
}

# rclone_at PEER ARGS...: rclone with remote "mesh:" pointing at peer PEER's S3 endpoint.
rclone_at() {
  local peer=$1
  shift
  local dbg=()
  [ "${S3CHECK_DEBUG:-}" = 1 ] && dbg=(-vv --dump headers)
  run "${T:-60}" env RCLONE_CONFIG_MESH_ENDPOINT="${S3[$peer]}" "$RCLONE" "${dbg[@]}" --retries 1 --contimeout 10s --timeout 60s "$@"
}

# ---------------------------------------------------------------------------------------
step "start a 3-peer mesh"
start_peer() {
  local i=$1
  shift
  "$BUN" run --silent node --data "$WORK/peer$i" --p2p /ip4/127.0.0.1/tcp/0 --http 127.0.0.1:0 --s3 127.0.0.1:0 "$@" \
    >"$WORK/peer$i.out" 2>"$WORK/peer$i.err" </dev/null &
  PIDS[i]=$!
}
# wait_ready I: wait for peer I's ready line and take its addresses from it.
P2P0=""
wait_ready() {
  local i=$1 end=$((SECONDS + 45)) line=""
  while [ "$SECONDS" -lt "$end" ]; do
    line=$(grep -m1 -E '^meshstore peer [^ ]+ ready p2p=[^ ]+ http=[^ ]+ s3=[^ ]+$' "$WORK/peer$i.out" || true)
    [ -n "$line" ] && break
    kill -0 "${PIDS[$i]}" 2>/dev/null || fail "peer $i exited before its ready line"
    sleep 0.2
  done
  [ -n "$line" ] || fail "peer $i printed no ready line within 45 s"
  local p2p=${line#* p2p=}
  p2p=${p2p%% *}
  HTTP[i]=$(sed -E 's/.* http=([^ ]+).*/\1/' <<<"$line")
  S3[i]=$(sed -E 's/.* s3=([^ ]+).*/\1/' <<<"$line")
  [ "$i" -eq 0 ] && P2P0=${p2p%%,*}
  return 0
}
start_peer 0
wait_ready 0
# Peer 0 started a new mesh and created its key; the others join with it.
start_peer 1 --bootstrap "$P2P0" --mesh-key "$WORK/peer0/mesh.key"
start_peer 2 --bootstrap "$P2P0" --mesh-key "$WORK/peer0/mesh.key"
wait_ready 1
wait_ready 2

# The native API's bearer token for the admin key (sent in case the native API
# requires it; harmless otherwise).
TOKEN=$("$BUN" -e 'import { nativeToken } from "./src/auth/access-keys.ts"; console.log(nativeToken(process.env.MESH_ADMIN_KEY!, process.env.MESH_ADMIN_SECRET!))' 2>/dev/null || true)
# Wait until every peer's /cluster/status shows all 3 peers alive.
alive=""
end=$((SECONDS + 45))
while [ "$SECONDS" -lt "$end" ]; do
  # shellcheck disable=SC2016 # JavaScript template literals, not shell expansions
  alive=$(TOKEN=$TOKEN "$BUN" -e '
    const out: string[] = [];
    for (const base of process.argv.slice(1)) {
      try {
        const res = await fetch(`${base}/cluster/status`, {
          headers: process.env.TOKEN ? { authorization: `Bearer ${process.env.TOKEN}` } : {},
          signal: AbortSignal.timeout(3000),
        });
        const body = (await res.json()) as { peers?: { alive?: number } };
        out.push(String(body.peers?.alive ?? `http-${res.status}`));
      } catch (err) {
        out.push("unreachable");
      }
    }
    console.log(out.join(" "));' "${HTTP[@]}" 2>/dev/null || echo "?")
  [ "$alive" = "3 3 3" ] && break
  sleep 0.5
done
[ "$alive" = "3 3 3" ] || fail "peers.alive per peer is '$alive' after 45 s, want '3 3 3'"
pass "s3 endpoints ${S3[*]}"

# ---------------------------------------------------------------------------------------
step "generate test data"
cat >"$WORK/gen.ts" <<'EOF'
// Deterministic test data: a seeded xorshift generator picks sizes and fills contents.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

let s = 0x9e3779b9;
const next = () => {
  s ^= s << 13; s >>>= 0;
  s ^= s >>> 17;
  s ^= s << 5; s >>>= 0;
  return s;
};
const below = (n: number) => next() % n;
function bytes(n: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(n / 4));
  for (let i = 0; i < words.length; i++) words[i] = next();
  return new Uint8Array(words.buffer, 0, n);
}
function write(file: string, size: number) {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, bytes(size));
  return size;
}

const [, , work] = process.argv;
const KiB = 1024, MiB = 1024 * 1024;

// One small and one ~20 MiB (multipart) file for aws s3 cp.
write(path.join(work, "single", "hello.txt"), 1234);
write(path.join(work, "single", "big.bin"), 20 * MiB + 12345);

// The 500-file tree: mostly small, some medium, a few large enough for multipart.
const dirs = ["", "docs", "docs/2026", "docs/2026/q1", "media", "media/raw", "media/raw/cam-1", "a/b/c/d", "logs", "logs/app.v2", "empty-ish"];
const sizes: number[] = [0, 1, 16 * KiB - 1, 16 * KiB, 16 * KiB + 1, 64 * KiB];
while (sizes.length < 457) sizes.push(below(20) === 0 ? 0 : 1 + below(64 * KiB));
for (let i = 0; i < 40; i++) {
  const r = below(1000) / 1000;
  sizes.push(100 * KiB + Math.floor(r * r * (2 * MiB - 100 * KiB)));
}
sizes.push(9 * MiB + 1, 12 * MiB, 10 * MiB + below(MiB));
let total = 0;
sizes.forEach((size, i) => {
  const dir = dirs[below(dirs.length)];
  const ext = [".bin", ".txt", ".json", ".dat", ""][below(5)];
  total += write(path.join(work, "tree", dir, `file-${String(i).padStart(3, "0")}${ext}`), size);
});

// A small folder for rclone copy, with names that need encoding.
const names = ["plain.txt", "with space.txt", "paren (1).txt", "plus+equals=.txt", "tilde~and,comma.txt", "caf\u00e9-\u00fcml\u00e4ut.txt", "nested/deeper/leaf.bin", "nested/zero.bin", "nested/one-mib.bin"];
names.forEach((name, i) => write(path.join(work, "small", name), name.endsWith("zero.bin") ? 0 : name.endsWith("one-mib.bin") ? MiB : 100 + i * 977));

console.log(`${sizes.length} files, ${(total / MiB).toFixed(1)} MiB`);
EOF
run 60 "$BUN" "$WORK/gen.ts" "$WORK"
TREE_SUMMARY=$(cat "$OUT")
[ "$(find "$WORK/tree" -type f | wc -l)" -eq 500 ] || fail "generated tree does not hold 500 files"
pass "tree: $TREE_SUMMARY"

# ---------------------------------------------------------------------------------------
step "aws s3 mb (peer 0)"
aws_at 0 s3 mb "s3://$BUCKET"
grep -q "make_bucket: $BUCKET" "$OUT" || fail "unexpected output: $(cat "$OUT")"
pass

step "aws s3 cp small file up (peer 1) and down (peer 2)"
aws_at 1 s3 cp --no-progress "$WORK/single/hello.txt" "s3://$BUCKET/cp/hello.txt"
aws_at 2 s3 cp --no-progress "s3://$BUCKET/cp/hello.txt" "$WORK/hello.down"
cmp "$WORK/single/hello.txt" "$WORK/hello.down" || fail "downloaded hello.txt differs from the original"
pass

step "aws s3 cp 20 MiB multipart file up (peer 2) and down (peer 0)"
T=90 aws_at 2 s3 cp --no-progress "$WORK/single/big.bin" "s3://$BUCKET/cp/big.bin"
T=90 aws_at 0 s3 cp --no-progress "s3://$BUCKET/cp/big.bin" "$WORK/big.down"
cmp "$WORK/single/big.bin" "$WORK/big.down" || fail "downloaded big.bin differs from the original"
pass "$(stat -c %s "$WORK/single/big.bin") bytes"

step "aws s3 ls (peer 1)"
aws_at 1 s3 ls
grep -Eq " $BUCKET\$" "$OUT" || fail "bucket list does not show $BUCKET: $(cat "$OUT")"
aws_at 1 s3 ls "s3://$BUCKET/cp/"
for f in hello.txt big.bin; do
  want="$(stat -c %s "$WORK/single/$f") $f"
  awk '{print $3, $4}' "$OUT" | grep -qxF "$want" || fail "listing of s3://$BUCKET/cp/ lacks '$want'; got: $(cat "$OUT")"
done
pass

step "aws s3 rm (peer 2), then ls (peer 0) shows nothing"
aws_at 2 s3 rm "s3://$BUCKET/cp/hello.txt"
aws_at 2 s3 rm "s3://$BUCKET/cp/big.bin"
# aws s3 ls exits 1 when the listing is empty.
OK_RC="0 1" aws_at 0 s3 ls "s3://$BUCKET/cp/"
[ ! -s "$OUT" ] || fail "listing still shows objects after rm: $(cat "$OUT")"
pass

# ---------------------------------------------------------------------------------------
step "aws s3 sync 500 files up (peer 0), down (peer 2), diff -r"
T=120 aws_at 0 s3 sync --no-progress "$WORK/tree" "s3://$BUCKET/tree"
uploads=$(grep -c '^upload: ' "$OUT" || true)
[ "$uploads" -eq 500 ] || fail "sync up reported $uploads uploads, want 500"
T=120 aws_at 2 s3 sync --no-progress "s3://$BUCKET/tree" "$WORK/tree.down"
[ "$(find "$WORK/tree.down" -type f | wc -l)" -eq 500 ] || fail "sync down gave $(find "$WORK/tree.down" -type f | wc -l) files, want 500"
diff -r "$WORK/tree" "$WORK/tree.down" >"$WORK/logs/diff.txt" 2>&1 || fail "downloaded tree differs: $(head -20 "$WORK/logs/diff.txt")"
pass "$TREE_SUMMARY identical"

step "aws s3 ls --recursive in pages of 100 (peer 1) lists all 500"
aws_at 1 s3 ls --recursive --page-size 100 "s3://$BUCKET/tree/"
listed=$(wc -l <"$OUT")
[ "$listed" -eq 500 ] || fail "listed $listed objects, want 500"
pass

step "aws s3 sync again (peer 1) uploads nothing"
T=90 aws_at 1 s3 sync --no-progress "$WORK/tree" "s3://$BUCKET/tree"
[ ! -s "$OUT" ] || fail "a second sync of an unchanged folder transferred files: $(head -5 "$OUT")"
pass

# ---------------------------------------------------------------------------------------
step "rclone check tree against mesh:$BUCKET/tree (peer 1)"
T=90 rclone_at 1 check "$WORK/tree" "mesh:$BUCKET/tree"
grep -q ': 0 differences found' "$ERR" || fail "rclone check did not report 0 differences: $(tail -5 "$ERR")"
note="$(grep -Eo '[0-9]+ matching files' "$ERR" || true)"
unchecked=$(grep -Eo '[0-9]+ hashes could not be checked' "$ERR" || true)
if [ -n "$unchecked" ]; then
  # Multipart uploads have no MD5 ETag, so rclone cannot compare those by hash:
  # compare every byte instead.
  T=90 rclone_at 1 check --download "$WORK/tree" "mesh:$BUCKET/tree"
  grep -q ': 0 differences found' "$ERR" || fail "rclone check --download did not report 0 differences: $(tail -5 "$ERR")"
  note="$note; $unchecked, so also --download: $(grep -Eo '[0-9]+ matching files' "$ERR" || true)"
fi
pass "$note"

step "rclone copy a small folder up (peer 1) and back (peer 2)"
T=60 rclone_at 1 copy "$WORK/small" "mesh:$BUCKET/rclone-copy"
T=60 rclone_at 2 copy "mesh:$BUCKET/rclone-copy" "$WORK/small.back"
diff -r "$WORK/small" "$WORK/small.back" >"$WORK/logs/diff-small.txt" 2>&1 || fail "copied-back folder differs: $(head -20 "$WORK/logs/diff-small.txt")"
pass "$(find "$WORK/small" -type f | wc -l) files"

step "rclone delete mesh:$BUCKET/tree (peer 0), then rclone ls (peer 2) shows it empty"
T=90 rclone_at 0 delete "mesh:$BUCKET/tree"
# An empty prefix is either an empty listing or rclone's "directory not found" (exit 3).
OK_RC="0 3" T=30 rclone_at 2 ls "mesh:$BUCKET/tree"
[ ! -s "$OUT" ] || fail "rclone ls still lists $(wc -l <"$OUT") objects, e.g. $(head -3 "$OUT")"
if [ "$RC" -eq 3 ]; then grep -q 'directory not found' "$ERR" || fail "rclone ls exit 3 without 'directory not found': $(tail -5 "$ERR")"; fi
T=30 rclone_at 2 ls "mesh:$BUCKET/rclone-copy"
[ "$(wc -l <"$OUT")" -eq "$(find "$WORK/small" -type f | wc -l)" ] || fail "rclone delete also touched another prefix: $(cat "$OUT")"
pass

# These peers log to files the test process never sees: check them here, as
# test/harness/leak-check.ts does for every other peer of the suite (the admin secret, its
# token, the mesh key, and anything shaped like a native token).
step "no secret in any peer's log"
MESH_KEY_HEX=$(grep -E '^[0-9a-fA-F]{64}$' "$WORK/peer0/mesh.key" || true)
[ -n "$MESH_KEY_HEX" ] || fail "no mesh key in $WORK/peer0/mesh.key"
LOGS=("$WORK"/peer*.out "$WORK"/peer*.err)
for secret in "$ADMIN_SECRET" "$TOKEN" "$MESH_KEY_HEX"; do
  [ -z "$secret" ] && continue
  hits=$(grep -lF -e "$secret" "${LOGS[@]}" || true)
  [ -z "$hits" ] || fail "a secret (${secret:0:4}..., ${#secret} chars) is in $(echo $hits)"
done
hits=$(grep -lE 'mst_[A-Z0-9]{16,64}_[A-Za-z0-9_-]{43}' "${LOGS[@]}" || true)
[ -z "$hits" ] || fail "a native token is in $(echo $hits)"
pass "$(cat "${LOGS[@]}" | wc -l) lines"

STEP=""
