#!/usr/bin/env bash
# The whole test suite: formatting and lints, unit, property and integration tests of every crate, then the
# DESIGN.md §4 contract check of `shanfu pay --json` on the release binary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TERM_COLOR=never
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --release --locked --bin shanfu
# crash-test: the SHANFU_CRASH_AT hooks of the durability tests (never in the release binary).
cargo test --workspace --locked --features shanfu/crash-test
contract=../shared/tools/check-contract
if [ -x "$contract" ] || [ -f "$contract" ]; then
  bash "$contract"
else
  echo "contract check skipped: $contract not present (it ships with the project's shared/ folder)"
fi
