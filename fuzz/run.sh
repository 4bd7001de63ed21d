#!/usr/bin/env bash
# Builds the cargo-fuzz targets and runs each for a while; prints a table of executions, time
# and findings per target. See docs/fuzzing.md.
#
#   fuzz/run.sh [SECONDS] [TARGET...]     every target (or the ones named), SECONDS each (default 60)
#   fuzz/run.sh --smoke [TARGET...]       CI: deterministic, KSEAL_FUZZ_SMOKE_RUNS inputs each
#                                         (default 20000) from the committed seeds, fixed seed
#   fuzz/run.sh --list                    the targets
#
# Exit status 1 when any target found a crash, a timeout or an out-of-memory; the inputs are in
# fuzz/artifacts/<target>/, the logs in fuzz/logs/<target>.log.
#
# Environment:
#   KSEAL_FUZZ_TARGET_DIR  where the nightly builds go; default: `fuzz-target` next to
#                          $CARGO_TARGET_DIR when that is set (CI caches it), else fuzz/target
#   KSEAL_FUZZ_SANITIZER   cargo fuzz's --sanitizer (default none; address also works)
#   KSEAL_FUZZ_TIMEOUT     seconds one input may take before it counts as a hang (default 3)
#   KSEAL_FUZZ_RSS_MB      memory limit of the fuzzing process (default 2048)
#   KSEAL_FUZZ_NICE        niceness of the build and the runs (default 10)
#   KSEAL_FUZZ_RUNS        long runs only: stop a target after this many executions even before
#                          SECONDS (e.g. 10000000), so fast targets do not use up the whole time
set -euo pipefail
cd "$(dirname "$0")"
FUZZ_DIR=$(pwd)

TARGETS=(bitnami_open age_open template seal_input unseal_input verify_input seal_records
  kubeseal_flags http_body yamledit)

# The longest input per target: large enough for every seed and for the bounds the code
# enforces (many age stanzas, deep nesting), small enough to keep executions fast.
max_len() {
  case "$1" in
    kubeseal_flags) echo 4096 ;;
    seal_records) echo 8192 ;;
    bitnami_open | template) echo 16384 ;;
    yamledit) echo 32768 ;;
    *) echo 65536 ;;
  esac
}

dict() {
  case "$1" in
    template) echo dict/template.dict ;;
    kubeseal_flags) echo dict/kubeseal_flags.dict ;;
    age_open) echo dict/age_open.dict ;;
    seal_input | unseal_input | verify_input | http_body | yamledit | seal_records) echo dict/yaml.dict ;;
  esac
}

smoke=false
seconds=60
case "${1:-}" in
  --list)
    printf '%s\n' "${TARGETS[@]}"
    exit 0
    ;;
  --smoke)
    smoke=true
    smoke_runs=${KSEAL_FUZZ_SMOKE_RUNS:-20000}
    shift
    ;;
  '' | *[!0-9]*) ;;
  *)
    seconds=$1
    shift
    ;;
esac
selected=("$@")
[ ${#selected[@]} -gt 0 ] || selected=("${TARGETS[@]}")
for t in "${selected[@]}"; do
  if [[ " ${TARGETS[*]} " != *" $t "* ]]; then
    echo "fuzz/run.sh: unknown target $t (see fuzz/run.sh --list)" >&2
    exit 2
  fi
done

if [ -n "${KSEAL_FUZZ_TARGET_DIR:-}" ]; then
  target_dir=$KSEAL_FUZZ_TARGET_DIR
elif [ -n "${CARGO_TARGET_DIR:-}" ]; then
  target_dir="$(dirname "$CARGO_TARGET_DIR")/fuzz-target"
else
  target_dir="$FUZZ_DIR/target"
fi
sanitizer=${KSEAL_FUZZ_SANITIZER:-none}
timeout=${KSEAL_FUZZ_TIMEOUT:-3}
rss_mb=${KSEAL_FUZZ_RSS_MB:-2048}
niceness=${KSEAL_FUZZ_NICE:-10}
# The workspace's CARGO_TARGET_DIR must not leak into the fuzz build.
unset CARGO_TARGET_DIR

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: installing cargo-fuzz" >&2
  nice -n "$niceness" cargo install --locked cargo-fuzz
fi

build_start=$(date +%s)
echo "==> building ${#selected[@]} fuzz target(s) (nightly, sanitizer $sanitizer) in $target_dir" >&2
for t in "${selected[@]}"; do
  nice -n "$niceness" cargo +nightly fuzz build --sanitizer "$sanitizer" --target-dir "$target_dir" "$t"
done
build_secs=$(($(date +%s) - build_start))
bin_dir="$target_dir/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"

mkdir -p logs
rows=()
found=0
for t in "${selected[@]}"; do
  corpus="corpus/$t"
  artifacts="artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  before=$(find "$artifacts" -type f | wc -l)
  seeds=("seeds/$t")
  [ -d "seeds-extra/$t" ] && seeds+=("seeds-extra/$t")
  [ -d "regressions/$t" ] && seeds+=("regressions/$t")
  d=$(dict "$t")
  if $smoke; then
    # Deterministic: one process, a fixed seed and number of inputs, the committed seeds only
    # (a scratch corpus, not the one earlier long runs grew), so the same commit gives the same
    # verdict on every machine. A finding stops the run and exits non-zero.
    scratch=$(mktemp -d)
    args=(-seed=1 -runs="$smoke_runs" -max_len="$(max_len "$t")" -timeout="$timeout"
      -rss_limit_mb="$rss_mb" -artifact_prefix="$artifacts/" -print_final_stats=1)
    [ -n "$d" ] && args+=(-dict="$d")
    echo "==> $t: $smoke_runs inputs (smoke)" >&2
    start=$(date +%s)
    status=0
    nice -n "$niceness" "$bin_dir/$t" "${args[@]}" "$scratch" "${seeds[@]}" >"logs/$t.log" 2>&1 || status=$?
    wall=$(($(date +%s) - start))
    rm -rf "$scratch"
    execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "logs/$t.log" | tail -n 1)
    cov=$(grep -E '^#[0-9]+' "logs/$t.log" | sed -nE 's/.* cov: ([0-9]+) .*/\1/p' | tail -n 1)
    ooms=0 timeouts=0 crashes=0
    if [ "$status" -ne 0 ]; then
      if grep -q 'ERROR: libFuzzer: timeout' "logs/$t.log"; then
        timeouts=1
      elif grep -q 'ERROR: libFuzzer: out-of-memory' "logs/$t.log"; then
        ooms=1
      else
        crashes=1
      fi
      tail -n 30 "logs/$t.log" >&2
    fi
  else
    args=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1
      -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout="$timeout"
      -rss_limit_mb="$rss_mb" -artifact_prefix="$artifacts/" -print_final_stats=1)
    [ -n "$d" ] && args+=(-dict="$d")
    [ -n "${KSEAL_FUZZ_RUNS:-}" ] && args+=(-runs="$KSEAL_FUZZ_RUNS")
    echo "==> $t: ${seconds}s${KSEAL_FUZZ_RUNS:+ or $KSEAL_FUZZ_RUNS executions}" >&2
    start=$(date +%s)
    # libFuzzer's exit status is not a verdict in fork mode: the counters below are.
    nice -n "$niceness" "$bin_dir/$t" "${args[@]}" "$corpus" "${seeds[@]}" >"logs/$t.log" 2>&1 || true
    wall=$(($(date +%s) - start))
    # Fork mode's status lines: "#N: cov: C ft: F corp: K exec/s: E oom/timeout/crash: O/T/X time: Ss job: J ..."
    last=$(grep -E '^#[0-9]+: cov:' "logs/$t.log" | tail -n 1 || true)
    execs=$(sed -nE 's/^#([0-9]+):.*/\1/p' <<<"$last")
    cov=$(sed -nE 's/.* cov: ([0-9]+) .*/\1/p' <<<"$last")
    read -r ooms timeouts crashes < <(sed -nE 's#.*oom/timeout/crash: ([0-9]+)/([0-9]+)/([0-9]+).*#\1 \2 \3#p' <<<"$last") || true
    if [ -z "$last" ] && ! grep -q 'INFO: exiting' "logs/$t.log"; then
      echo "fuzz/run.sh: $t did not run; see fuzz/logs/$t.log" >&2
      tail -n 20 "logs/$t.log" >&2
      crashes=1
    fi
  fi
  new=$(($(find "$artifacts" -type f | wc -l) - before))
  ooms=${ooms:-0} timeouts=${timeouts:-0} crashes=${crashes:-0}
  if [ $((ooms + timeouts + crashes + new)) -gt 0 ]; then
    found=1
  fi
  rows+=("$(printf '%-15s %12s %9s %6s %8s %8s %8s %9s' "$t" "${execs:-0}" "$((${execs:-0} / (wall > 0 ? wall : 1)))" "${wall}s" "${cov:-?}" "$crashes" "$timeouts" "$ooms") $new")
done

echo
echo "build: ${build_secs}s"
printf '%-15s %12s %9s %6s %8s %8s %8s %9s %s\n' target executions "exec/s" wall cov crashes timeouts ooms "new artifacts"
printf '%s\n' "${rows[@]}"
if [ "$found" -ne 0 ]; then
  echo
  echo "findings: reproduce with $bin_dir/<target> fuzz/artifacts/<target>/<file>; see docs/fuzzing.md" >&2
  exit 1
fi
