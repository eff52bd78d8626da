#!/bin/sh
# Runs every target in turn, SECS seconds each (default 300), in a single
# libFuzzer process (one core), release build with overflow checks and
# debug assertions (-O -a), logging to logs/<target>.log.
SECS=${1:-300}
cd "$(dirname "$0")" || exit 1
mkdir -p logs
for t in ${TARGETS:-fileid_url range query config_ini storage_ids proto_replies upload_inputs}; do
  mkdir -p "corpus/$t"
  echo "== $t start $(date -u +%FT%TZ)"
  cargo +nightly fuzz run -O -a "$t" "corpus/$t" -- -max_total_time="$SECS" \
    -max_len=8192 -timeout=10 -rss_limit_mb=2048 >"logs/$t.log" 2>&1
  echo "== $t end rc=$? $(date -u +%FT%TZ)"
  tail -n 3 "logs/$t.log"
done
