// Checkpoints: the training state in one HDF5 file per save, written
// atomically, read back with every check a resume needs (docs/checkpoints.md).
//
//   <dir>/ckpt-<global step, 12 digits>.h5
//     /parameters  float32 [P]  chunked, Fletcher32   (Model::parameters())
//     /momentum    float32 [P]  chunked, Fletcher32   (SgdMomentum::velocity(), the full vector)
//     attributes on /: the position (global_step = LR schedule position,
//     epoch, step_in_epoch = sampler position), what gives it meaning (seed,
//     ranks, local_batch, global_batch, steps_per_epoch, total_steps,
//     warmup_steps), the fields a resume checks (layers, dataset_digest),
//     config_hash, restarts, run_dir, params_digest, momentum_digest,
//     format, format_version, hpcml_version.
//
// Who writes: rank 0 alone, after the momentum is gathered to it (a sharded
// update leaves each rank current only in its own ranges: gather_momentum()).
// The file is a few MB for the models hpcml trains, so one writer costs less
// than opening a file collectively; a collective parallel-HDF5 write is not built.
// Asynchronous saves (checkpoint.async) write on a background thread of rank 0
// from a host snapshot taken at the step boundary (Checkpointer).
#pragma once

#include <mpi.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "hpcml/core/metrics_sink.hpp"
#include "hpcml/core/train_state.hpp"

namespace hpcml::io {

inline constexpr const char* kCheckpointFormat = "hpcml-checkpoint";
/// Readers accept versions up to this one.
inline constexpr int kCheckpointFormatVersion = 1;

/// What a checkpoint records besides the TrainState.
struct CheckpointInfo {
  std::vector<std::int64_t> layers;  ///< model shape: features, hidden..., classes
  std::string dataset_digest;        ///< manifest_digest() of the training split
  std::string config_hash;           ///< digest of the effective config (informational)
  int restarts = 0;                  ///< resumes of the run before this checkpoint was written
  std::string run_dir;               ///< the run directory that wrote it
  std::string model;                 ///< Model::describe(): the layers (checked on resume)
  bool layer_list = false;           ///< a [[model.layers]] model: 'layers' is only
                                     ///< [features, classes], the parameter count is recorded
  std::string optimizer = "sgd";     ///< optimizer.name; "momentum" holds its state
                                     ///< (optimizer_slots(optimizer) x parameters)
  std::string hpcml_version;         ///< set by write_checkpoint()
  int format_version = kCheckpointFormatVersion;
};

/// A checkpoint read and verified by read_checkpoint().
struct LoadedCheckpoint {
  std::string path;
  OwnedTrainState state;  ///< momentum is the full vector (momentum_ranges empty)
  CheckpointInfo info;
  std::string params_digest, momentum_digest;  ///< as stored, and equal to the data's
};

/// "ckpt-<global_step zero-padded to 12 digits>.h5"
std::string checkpoint_file_name(std::size_t global_step);

/// The identity of split `split` of the shard directory `dir`: a digest of
/// manifest.json's bytes and the split name. Throws DataError if unreadable.
std::string manifest_digest(const std::string& dir, const std::string& split);

/// What a write cost.
struct CheckpointWrite {
  std::size_t bytes = 0;  ///< file size
  double seconds = 0;     ///< create, write, fsync file and directory, rename
};

/// Writes `state` with the full `momentum` vector to `path`: first
/// `<path>.tmp`, then fsync of the file, rename over `path`, fsync of the
/// directory; a reader never sees a partial file under `path`, and a crash
/// leaves at most a `.tmp` (which list_checkpoints() ignores). Not collective.
/// Throws Error naming the file on any failure, and removes the `.tmp`.
CheckpointWrite write_checkpoint(const std::string& path, const TrainState& state,
                                 std::span<const float> momentum, CheckpointInfo info);

/// Reads and verifies a checkpoint: the format and every attribute present,
/// dataset shapes agreeing with each other and with `layers`, Fletcher32 of
/// every chunk, the digests of parameters and momentum, a consistent
/// position. Throws DataError "<path>: <what is wrong>" (one line).
LoadedCheckpoint read_checkpoint(const std::string& path);

/// The ckpt-*.h5 files in `dir`, newest (highest step) first; temporaries and
/// other names are ignored. An absent directory gives {}.
std::vector<std::string> list_checkpoints(const std::string& dir);

/// The newest checkpoint in `dir` that read_checkpoint() accepts; every one
/// skipped adds a line to `skipped` (the file and the reason). nullopt: none.
std::optional<LoadedCheckpoint> newest_valid_checkpoint(const std::string& dir,
                                                        std::vector<std::string>& skipped);

/// Collective over `comm`: the full momentum vector on rank 0 ({} elsewhere).
/// When the ranks' momentum_ranges are set (sharded update), each range comes
/// from its owner (MPI_Gatherv); otherwise rank 0's own vector is complete.
std::vector<float> gather_momentum(MPI_Comm comm, const TrainState& state);

/// checkpoint.* keys (TrainConfig::Checkpoint), with the directory resolved.
struct CheckpointOptions {
  std::size_t every_steps = 0;  ///< 0 = off
  double every_minutes = 0;     ///< 0 = off
  int keep = 2;
  std::string dir;  ///< where ckpt-*.h5 go (created on first save)
  /// Write on a background thread (checkpoint.async): the training thread
  /// only gathers the momentum and copies the state into a host snapshot.
  /// false here (a library caller gets the plain synchronous save); the
  /// checkpoint.async key defaults to true (docs/checkpoints.md says why).
  bool async = false;
};

/// The StepHook that writes checkpoints: every `every_steps` steps, every
/// `every_minutes` minutes (rank 0's clock, agreed through the trainer's stop
/// agreement, so all ranks save at the same step), and when training ends
/// (finished, train.max_steps or a stop signal). Keeps the newest `keep`.
/// Every rank must add it to its trainer; saves are collective.
///
/// Asynchronous (`options.async`): a save gathers the momentum, copies the
/// state into a host snapshot on rank 0 and returns; a background thread
/// writes the file (the same atomic temp-name, fsync, rename) and prunes.
/// At most one write is in flight: a save due while one runs waits for it
/// (CheckpointMetrics::waited_s). A background failure is raised on every
/// rank at the next save or stop agreement (every 8 steps: request() asks for
/// it), naming the file; the save at the end of training (after_training) is
/// synchronous and waits for the writer, so a finished or stopped run has
/// its last checkpoint on disk before the summary is written.
class Checkpointer final : public StepHook {
 public:
  /// `on_written` (rank 0 only; may be empty) gets the cost of each save,
  /// on the training thread, once the file is complete.
  Checkpointer(MPI_Comm comm, CheckpointOptions options, CheckpointInfo info,
               std::function<void(const CheckpointMetrics&)> on_written);
  /// Waits for a write in flight (its outcome is lost if not yet collected).
  ~Checkpointer() override;
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  void after_step(const TrainState& state) override;
  /// True exactly when after_step() saves (every_steps), so a trainer on a
  /// device backend copies the tensors to the host only for those steps.
  bool needs_tensors(const TrainState& state) override;
  bool request(const TrainState& state) override;
  void on_request(const TrainState& state) override;
  void after_training(const TrainState& state, const TrainSummary& summary) override;

  /// Collective: gathers the momentum, writes on rank 0 (in the background
  /// when async), prunes to `keep`. A failure on rank 0 is thrown on every
  /// rank (agreed). Saving the same step twice writes once.
  void save(const TrainState& state, const std::string& reason);

  /// Collective: waits for a write in flight, reports it, and throws its
  /// failure (if any) on every rank.
  void finish_writes();

  /// Path of the last checkpoint started ("" if none).
  const std::string& last_path() const { return last_path_; }

 private:
  struct Snapshot;  // the state copied for a write, and what the write cost

  void save_impl(const TrainState& state, const std::string& reason, bool background);
  // Rank 0, training thread: waits for the writer; returns seconds waited.
  double join_writer();
  // Rank 0, training thread: passes a finished write's metrics on, or
  // rethrows its failure.
  void collect_written();

  MPI_Comm comm_;
  int rank_ = 0;
  CheckpointOptions options_;
  CheckpointInfo info_;
  std::function<void(const CheckpointMetrics&)> on_written_;
  double last_save_s_ = 0;  // steady-clock seconds of the start or the last save
  bool saved_any_ = false;
  std::size_t last_step_ = 0;
  std::string last_path_;
  // Rank 0 only: the snapshot (buffers reused between saves), the writer
  // thread, whether it has finished, and its failure.
  std::unique_ptr<Snapshot> snapshot_;
  std::thread writer_;
  std::atomic<bool> writer_done_{false};
  std::exception_ptr write_error_;   // set by the writer, read after join
  std::exception_ptr report_error_;  // a failure to report a finished write
  bool pending_report_ = false;      // a write finished (joined) not yet reported
};

}  // namespace hpcml::io
