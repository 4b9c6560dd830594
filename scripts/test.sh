#!/usr/bin/env bash
# The whole test suite: formatting and lints, unit, property and integration tests of every crate, then the
# DESIGN.md §4 contract check of `shanfu pay --json` on the release binary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TERM_COLOR=never
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The product build — no simulators — is clean too, and links no simulator crate (so no test
# issuer key and no embedded acquirer can be in a till's binary).
cargo clippy --locked -p shanfu --no-default-features --lib --bin shanfu -- -D warnings
if cargo tree --locked -p shanfu --no-default-features -e normal --prefix none | grep -qE '^(acquirer|test-cards) '; then
  echo "the product build (--no-default-features) links a simulator crate" >&2
  exit 1
fi
cargo build --release --locked --bin shanfu
# crash-test: the SHANFU_CRASH_AT hooks of the durability tests (never in the release binary).
cargo test --workspace --locked --features shanfu/crash-test
# The whole cert suite over pcscd and the phone process (minutes: an #[ignore] test run on purpose).
cargo test --locked --test pcsc -- --ignored whole_cert_suite_over_pcscd
contract=../shared/tools/check-contract
if [ -x "$contract" ] || [ -f "$contract" ]; then
  bash "$contract"
else
  echo "contract check skipped: $contract not present (it ships with the project's shared/ folder)"
fi
