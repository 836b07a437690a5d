#!/bin/sh
# Test stand-in for hpcml: writes its arguments, one per line, and the value of
# HOSTILE to $RECORD_DIR/args.<n>.
n=0
while [ -e "$RECORD_DIR/args.$n" ]; do n=$((n + 1)); done
for a in "$@"; do printf '%s\n' "$a"; done >"$RECORD_DIR/args.$n"
printf '%s\n' "${HOSTILE-unset}" >"$RECORD_DIR/env.$n"
