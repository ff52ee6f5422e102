#!/usr/bin/env bash
# Cold start of every function, measured: release builds of the function
# binaries for this machine, then local/src/bin/coldstart.rs, which starts each
# binary against a local Lambda Runtime API (and loopback fakes of DynamoDB,
# Secrets Manager, WeChat and Tencent), hands it one event from events/ and reports the
# milliseconds from process spawn to the POSTed response. Options go to the
# tool: --runs N (default 5), --target-ms MS (default 30), function names.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
cargo build --release --locked -p gatehouse-local --bin coldstart
# The functions of the route table (gatehouse::api::Function), one binary each.
packages=()
while read -r function; do packages+=(-p "$function"); done < <("$target/release/coldstart" --list)
cargo build --release --locked "${packages[@]}"
"$target/release/coldstart" --bin-dir "$target/release" "$@"
