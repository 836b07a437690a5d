#!/bin/sh
# Test stand-in for `hpcml train`: creates <run.dir>/train and writes the summary.json
# rank 0 writes, with stopped_by_signal = $STOPPED (true/false); exits 3 when true.
for a in "$@"; do
  case "$a" in
    run.dir=*) dir=${a#run.dir=}; dir=${dir#\"}; dir=${dir%\"} ;;
  esac
done
mkdir -p "$dir/train"
printf '{\n  "ranks": 2,\n  "stopped_by_signal": %s\n}\n' "$STOPPED" >"$dir/train/summary.json"
[ "$STOPPED" = true ] && exit 3
exit 0
