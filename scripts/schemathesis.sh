#!/usr/bin/env bash
# Schemathesis (PyPI) against the dev server, from openapi.yaml, with every
# check but positive_data_acceptance (scripts/schemathesis/schemathesis.toml
# says why). The IAM routes are signed with the dev server's development
# credentials (scripts/schemathesis/hooks.py). Fails on any failure.
#
#   scripts/schemathesis.sh                  # the seed CI uses
#   ST_SEED=random scripts/schemathesis.sh   # a fresh one
#
# Needs target/debug/gatehouse-local (cargo build -p gatehouse-local).
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${GATEHOUSE_SCHEMATHESIS:-${XDG_CACHE_HOME:-$HOME/.cache}/gatehouse-schemathesis}"
if ! "$venv/bin/python" -c 'import requests_aws4auth, schemathesis' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'schemathesis==4.32.5' 'requests-aws4auth==1.4.0'
fi

port="${ST_PORT:-3991}"
log="$(mktemp)"
PORT="$port" RUST_LOG=warn target/debug/gatehouse-local >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$port/" >/dev/null || { cat "$log" >&2; exit 1; }

seed=()
[ "${ST_SEED:-}" = random ] || seed=(--seed "${ST_SEED:-20261207}")
cd scripts/schemathesis
SCHEMATHESIS_HOOKS=hooks PYTHONPATH=. "$venv/bin/st" --config-file schemathesis.toml \
  run ../../openapi.yaml --url "http://127.0.0.1:$port" \
  "${seed[@]}"
