// The typed configuration of `hpcml train`, read from a ConfigDoc.
// docs/config-reference.md lists every key with its default and meaning.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "hpcml/core/config_doc.hpp"

namespace hpcml {

struct TrainConfig {
  struct Data {
    std::string path = "data/fashion-mnist";  // directory holding manifest.json
    std::string train_split = "train";
    std::string test_split = "test";
    bool verify = true;  // check every shard's checksum, NaN/Inf and labels at start
    // Batches read ahead by a background reader thread; 0 = read on the
    // training thread; kAutoPrefetch = a thread only when a spare core exists.
    static constexpr int kAutoPrefetch = -1;
    int prefetch = kAutoPrefetch;
  } data;
  struct Model {
    std::vector<std::int64_t> hidden{512, 256};
    std::string activation = "relu";
  } model;
  struct Optimizer {
    double lr = 0.05;
    double momentum = 0.9;
    double weight_decay = 5e-4;       // L2 on weights (not biases)
    std::string schedule = "cosine";  // constant | cosine
    double warmup_epochs = 0.0;       // linear warmup from 0, in epochs (fractions allowed)
  } optimizer;
  struct Train {
    int epochs = 10;
    int batch_size = 128;  // per rank; global batch = batch_size * ranks
    std::uint64_t seed = 42;
    std::int64_t max_steps = 0;  // stop after this many optimizer steps in total (0 = no limit)
    bool evaluate = true;        // evaluate on the test split after each epoch
  } train;
  struct Parallel {
    std::string backend = "omp";  // reference | omp
    int threads = 0;              // per rank; 0 = SLURM_CPUS_PER_TASK, OMP_NUM_THREADS, 1
  } parallel;
  struct Checkpoint {
    std::int64_t every_steps = 0;  // write every N optimizer steps; 0 = off
    double every_minutes = 0;      // write every N minutes of wall time (rank 0's clock); 0 = off
    int keep = 2;                  // newest checkpoints kept in `dir`
    std::string dir;               // "" = <run dir>/checkpoints
    bool async = true;             // write on a background thread from a snapshot
  } checkpoint;
  struct Run {
    std::string dir = "runs";
    std::string name;               // "" = <config stem>-<UTC timestamp>[-<slurm job id>]
    std::string progress = "auto";  // auto (only on a terminal) | always | never
  } run;
};

/// How batches are read: the reader thread's depth (0 = read on the training
/// thread) and a line for the log saying why.
struct PrefetchChoice {
  std::size_t depth = 0;
  std::string description;
};

/// Resolves data.prefetch (a depth, or Data::kAutoPrefetch) for a rank of
/// `threads_per_rank` compute threads that may run on `hardware_threads` CPUs,
/// with `local_size` ranks on a node of `node_cpus` CPUs. Auto gives 2
/// batches ahead only when a core is left for the reader thread: with every
/// core busy computing it just time-slices with training, at moments that
/// differ from rank to rank, and the ranks wait for each other at every
/// all-reduce.
PrefetchChoice choose_prefetch(int prefetch, int threads_per_rank, int hardware_threads,
                               int local_size, int node_cpus);

/// Reads and validates every training key (defaults filled in). Does not call
/// check_unknown(): the caller does, after other layers have read their keys.
TrainConfig read_train_config(ConfigDoc& doc);

}  // namespace hpcml
