#!/usr/bin/env bash
# Coverage-guided fuzzing of shanfu's targets (fuzz/src/lib.rs) with AFL++ on stable Rust.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]     fuzz each target for SECONDS (default 60)
#   bash scripts/fuzz.sh --execs N [TARGET...]     fuzz each target until N executions (a long run)
#   bash scripts/fuzz.sh --minimize [TARGET...]    merge the last run's queue into fuzz/corpus, minimized
#   bash scripts/fuzz.sh --list                    the targets
#
# Why AFL++ through cargo-afl: it instruments with rustc's own SanitizerCoverage passes, so it
# runs on the stable toolchain (cargo fuzz / libFuzzer needs nightly). cargo-afl builds its
# AFL++ from the sources it ships (needs make and a C compiler, nothing else).
#
# Each run starts from the committed corpus fuzz/corpus/TARGET and writes to
# target/fuzz/TARGET. A crash or hang is copied to fuzz/crashes/TARGET/ and the script exits
# 1: fix it, then add the input to fuzz/corpus/TARGET so `cargo test` replays it for ever.
# The table at the end (executions, executions/s, crashes, hangs per target) is what
# bench/REPORT.md quotes.
set -euo pipefail
cd "$(dirname "$0")/.."

AFL_VERSION=0.18.2
export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1
export AFLRS_NO_UPDATE_CHECK=1
# One binary per target (fuzz/afl/src/bin/TARGET.rs).
BIN=fuzz/afl/target/release
OUT=target/fuzz
# The summary table (FUZZ_TABLE=FILE to keep two runs side by side apart).
TABLE=${FUZZ_TABLE:-$OUT.table}

targets_all() { sed -n 's/^    ("\([a-z0-9_]*\)", .*/\1/p' fuzz/src/lib.rs; }

setup() {
  if ! cargo afl --version >/dev/null 2>&1; then
    echo "installing cargo-afl $AFL_VERSION (once)" >&2
    cargo install cargo-afl --locked --version "$AFL_VERSION"
  fi
  # AFL++ itself, built once per toolchain by cargo-afl.
  if ! ls "${XDG_DATA_HOME:-$HOME/.local/share}"/afl.rs/rustc-*/afl.rs-*/afl/bin/afl-fuzz >/dev/null 2>&1; then
    cargo afl config --build
  fi
  (cd fuzz/afl && cargo afl build --release --quiet)
}

case "${1:-}" in
  --list) targets_all; exit 0 ;;
  --minimize)
    shift
    setup
    afl_bin=$(dirname "$(ls "${XDG_DATA_HOME:-$HOME/.local/share}"/afl.rs/rustc-*/afl.rs-*/afl/bin/afl-fuzz | head -1)")
    targets=("$@"); [ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(targets_all)
    for t in "${targets[@]}"; do
      q="$OUT/$t/default/queue"
      [ -d "$q" ] || { echo "$t: no queue in $q (run the fuzzer first)" >&2; continue; }
      tmp=$(mktemp -d)
      cp fuzz/corpus/"$t"/* "$tmp"/ 2>/dev/null || true
      cp "$q"/id:* "$tmp"/ 2>/dev/null || true
      rm -rf "$OUT/$t.min"
      # afl-cmin.bash: the Python afl-cmin of this AFL++ records no tuples for the per-target
      # persistent binaries (and would leave an empty corpus).
      AFL_PATH="$afl_bin" PATH="$afl_bin:$PATH" bash "$afl_bin/afl-cmin.bash" -i "$tmp" -o "$OUT/$t.min" -- "$BIN/$t" >/dev/null 2>&1 || true
      if ! compgen -G "$OUT/$t.min/*" >/dev/null; then
        echo "$t: minimizing gave no inputs: corpus left as it was" >&2
        rm -rf "$tmp"
        continue
      fi
      rm -rf "$tmp" fuzz/corpus/"$t"
      mkdir -p fuzz/corpus/"$t"
      n=0
      for f in "$OUT/$t.min"/*; do n=$((n + 1)); cp "$f" "fuzz/corpus/$t/$(sha1sum "$f" | cut -c1-16)"; done
      echo "$t: $n inputs"
    done
    exit 0 ;;
esac

# -V SECONDS stops after a time, -E N after about N executions (the report's "long run").
if [ "${1:-}" = --execs ]; then
  execs=${2:?--execs N}; shift 2
  stop=(-E "$execs"); secs=-; limit=$((24 * 3600))
else
  secs=${1:-60}; shift || true
  stop=(-V "$secs"); limit=$((secs + 120))
fi
targets=("$@"); [ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(targets_all)
setup
failed=0
mkdir -p "$OUT"
printf '| target | seconds | executions | executions/s | corpus | crashes | hangs |\n|---|---|---|---|---|---|---|\n' > "$TABLE"
for t in "${targets[@]}"; do
  rm -rf "${OUT:?}/$t"
  mkdir -p "$OUT"
  # Persistent mode: inputs reach the target through AFL++'s shared memory.
  timeout "$limit" cargo afl fuzz "${stop[@]}" -i fuzz/corpus/"$t" -o "$OUT/$t" -- "$BIN/$t" > "$OUT/$t.log" 2>&1 || true
  stats="$OUT/$t/default/fuzzer_stats"
  if [ ! -f "$stats" ]; then
    echo "$t: AFL++ did not run (see $OUT/$t.log)" >&2
    tail -20 "$OUT/$t.log" >&2
    failed=1
    continue
  fi
  get() { sed -n "s/^$1 *: *//p" "$stats"; }
  crashes=$(get saved_crashes); hangs=$(get saved_hangs)
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$t" "$(get run_time)" "$(get execs_done)" "$(get execs_per_sec)" "$(get corpus_count)" "$crashes" "$hangs" | tee -a "$TABLE"
  if [ "${crashes:-0}" != 0 ] || [ "${hangs:-0}" != 0 ]; then
    mkdir -p fuzz/crashes/"$t"
    cp "$OUT/$t"/default/crashes/id:* "$OUT/$t"/default/hangs/id:* fuzz/crashes/"$t"/ 2>/dev/null || true
    echo "$t: $crashes crashes, $hangs hangs: inputs in fuzz/crashes/$t/ (replay: $BIN/$t < FILE)" >&2
    failed=1
  fi
done
echo
cat "$TABLE"
exit $failed
