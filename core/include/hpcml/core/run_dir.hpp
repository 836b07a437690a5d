// Run directories and the files written into them.
//
// One place creates the directory a run, a benchmark, a submitted job or a
// scaling study writes into, and one place writes its small files (config.toml,
// summary.json, study.json, scripts). Both are plain POSIX, no MPI: the caller
// decides which rank writes (rank 0 everywhere in hpcml) and broadcasts the path.
#pragma once

#include <string>

namespace hpcml {

/// Creates `<parent>/<name>` (creating `parent` first when needed) and returns
/// its path. When the name is taken it tries `<name>-2`, `<name>-3`, ... :
/// every attempt is one mkdir(2), so two processes started at once with the
/// same name never share a directory. `what` names the setting in errors
/// (for example "run.dir"). Throws ConfigError with the path and the reason.
std::string create_unique_dir(const std::string& parent, const std::string& name,
                              const std::string& what = "run.dir");

/// Creates `path` (and its parents) unless it exists as a directory; true when
/// this call made it. Throws ConfigError naming the path and the reason.
bool create_dir_if_missing(const std::string& path, const std::string& what = "run.dir");

/// A file name made from free text: every character other than letters,
/// digits, '-', '_' and '.' becomes '_' (used for default run names).
std::string sanitize_file_name(const std::string& text);

/// Writes `text` to `path` so that a reader sees either the old file or the
/// whole new one: it writes `path.tmp.<pid>`, checks every write, fsyncs,
/// renames over `path` and fsyncs the directory. `executable` adds the
/// owner's and group's execute bits. Throws Error naming the path and the
/// reason (a full disk, a missing directory) and leaves no temporary behind.
void write_file_atomic(const std::string& path, const std::string& text, bool executable = false);

/// An exclusive lock on a run directory, held while the object lives: flock(2)
/// on `<dir>/.lock`, which records the holder's pid and host. Two runs (two
/// `--resume auto` of one run.name, or a resume while the run still trains)
/// never write into one directory: the second gets an Error naming the
/// directory and the holder. The kernel drops the lock when the process ends,
/// however it ends (kill -9 included); the file stays. On network file systems
/// flock is as good as their lock support (Lustre: mount with -o flock).
class RunDirLock {
 public:
  RunDirLock() = default;
  /// Takes the lock or throws Error: "run directory DIR is in use by another
  /// run (pid P on host H holds DIR/.lock)".
  explicit RunDirLock(const std::string& dir);
  ~RunDirLock();
  RunDirLock(RunDirLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  RunDirLock& operator=(RunDirLock&& other) noexcept;
  RunDirLock(const RunDirLock&) = delete;
  RunDirLock& operator=(const RunDirLock&) = delete;
  bool held() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace hpcml
