// The typed configuration of `hpcml train`, read from a ConfigDoc.
// docs/config-reference.md lists every key with its default and meaning.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "hpcml/core/backend.hpp"
#include "hpcml/core/config_doc.hpp"

namespace hpcml {

/// One entry of model.layers.
struct LayerSpec {
  std::string type;              // dense | conv2d | maxpool2d | relu | flatten | dropout
  std::int64_t units = 0;        // dense: outputs
  std::int64_t filters = 0;      // conv2d: output channels
  std::int64_t kernel = 3;       // conv2d: window k x k
  std::int64_t stride = 1;       // conv2d
  std::int64_t padding = 0;      // conv2d: zeros around the image
  std::int64_t size = 2;         // maxpool2d: window and stride
  double rate = 0.5;             // dropout: probability of dropping
  std::string describe() const;  // "conv2d 5x5x32 s1 p2", "dense 128", "relu", ...
};

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
    // [[model.layers]]: the layer list (replaces hidden); the classifier
    // (dense to the data's classes) follows it.
    std::vector<LayerSpec> layers;
    // A sample's shape [height, width, channels] (channels-last); empty = flat.
    std::vector<std::int64_t> input_shape;
  } model;
  struct Optimizer {
    std::string name = "sgd";  // sgd | adam | adamw | lars | lamb (core/optimizer.hpp)
    double lr = 0.05;
    double momentum = 0.9;
    double weight_decay = 5e-4;              // L2 on weights (not biases)
    std::string schedule = "cosine";         // constant | cosine | step | poly
    double warmup_epochs = 0.0;              // linear warmup from 0, in epochs (fractions allowed)
    std::int64_t warmup_steps = 0;           // the same in optimizer steps (excludes warmup_epochs)
    std::string scale_rule = "none";         // none | linear | sqrt: lr is for base_batch
    std::int64_t base_batch = 256;           // the global batch optimizer.lr was tuned for
    std::vector<std::int64_t> decay_epochs;  // schedule "step": milestones (epochs)
    double decay_factor = 0.1;               // schedule "step": lr multiplied at each
    double power = 2.0;                      // schedule "poly": (1 - t)^power
    bool nesterov = false;                   // sgd: Nesterov momentum
    double beta1 = 0.9, beta2 = 0.999;       // adam, adamw, lamb: moment decay rates
    double eps = 1e-8;                       // adam, adamw, lamb
    double lars_eta = 0.001;                 // lars: trust coefficient
    bool exclude_bias = true;                // lars, lamb: biases keep trust ratio 1
  } optimizer;
  struct Train {
    int epochs = 10;
    int batch_size =
        128;  // per rank and micro-batch; global batch = batch_size * accumulate * ranks
    int accumulate =
        1;  // micro-batches whose gradients are summed before one all-reduce and update
    std::uint64_t seed = 42;
    std::int64_t max_steps = 0;  // stop after this many optimizer steps in total (0 = no limit)
    bool evaluate = true;        // evaluate on the test split after each epoch
    // GEMM arithmetic: fp32 | bf16 | fp16 (low-precision GEMM inputs, fp32
    // accumulation and master weights; bf16/fp16 need a device backend).
    std::string precision = "fp32";
    bool tf32 = false;  // fp32 only: allow TF32 tensor-core GEMMs (device backends)
    // fp16 only: dynamic loss scaling. The initial scale, and the number of
    // good steps (finite gradients) after which the scale doubles.
    double loss_scale = 65536.0;
    std::int64_t loss_scale_window = 2000;
  } train;
  struct Parallel {
    std::string backend = "omp";  // reference | omp
    int threads = 0;              // per rank; 0 = SLURM_CPUS_PER_TASK, OMP_NUM_THREADS, 1
    bool gpu_sharing = false;     // cuda: allow more ranks than GPUs on a node
    // Update each fusion bucket's tensors as soon as its means are final
    // (Collectives::finish_gradients_each); false = wait for all, then one
    // optimizer step. Same bits either way.
    bool overlap_update = true;
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

/// The GemmPrecision of train.precision and train.tf32 (fp32 + tf32 = tf32).
GemmPrecision gemm_precision(const TrainConfig::Train& t);

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
