# Sourced by the fault scripts. make_dataset HPCML: a small learnable dataset in
# ./data (3 classes, 16 features, 4000 samples, train and test splits, 2 shards
# each) from ./data.csv; calls fail (defined by the caller) if sharding fails.
make_dataset() {
  awk 'BEGIN { srand(7); for (i = 0; i < 4000; i++) { y = i % 3; line = y;
         for (j = 0; j < 16; j++) line = line "," sprintf("%.3f", rand() + y); print line } }' \
    > data.csv
  for split in train test; do
    "$1" shard csv --file data.csv --split $split --classes 3 --no-header --out data --shards 2 \
      > /dev/null || fail "hpcml shard failed"
  done
}
