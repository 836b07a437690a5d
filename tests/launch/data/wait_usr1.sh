#!/bin/sh
# Test stand-in for `hpcml train`: runs until SIGUSR1, then exits 3 ("preempted").
trap 'echo got-usr1 >"$RECORD_DIR/usr1"; exit 3' USR1
echo ready >"$RECORD_DIR/ready"
while :; do sleep 0.05; done
