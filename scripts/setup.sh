#!/usr/bin/env bash
# Installs what shanfu needs on a fresh Debian machine that has Rust, non-interactively.
# Idempotent: packages already present are not reinstalled.
set -euo pipefail
# pcscd + libpcsclite-dev + vsmartcard-vpcd: the real PC/SC path with a virtual reader (shared/readers.md);
# libclang-dev + cmake: the vendored libnfc build (nfc1); tmux: driving the cashier TUI in tests;
# python3: the DESIGN.md §4 contract checker; python3-venv + python3-pip: the third-party ISO 8583
# host of tests/thirdparty.rs (a venv at target/pyiso-venv with pyiso8583 from PyPI).
pkgs=(pcscd libpcsclite-dev vsmartcard-vpcd pcsc-tools libclang-dev cmake pkg-config tmux python3 python3-venv python3-pip)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
command -v cargo >/dev/null || { echo "setup: cargo not found: install Rust (rustup) first" >&2; exit 1; }
