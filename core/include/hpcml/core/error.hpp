// hpcml's one error type and the check macros for the C APIs we call.
//
// Every failure hpcml reports is an hpcml::Error (or a subclass). what() is a
// single line meant for the user: it names the file/key/rank involved and what
// was expected. The source location is kept separately for debugging.
#pragma once

#include <stdexcept>
#include <string>

namespace hpcml {

class Error : public std::runtime_error {
 public:
  Error(const std::string& message, const char* file = "", int line = 0)
      : std::runtime_error(message), file_(file), line_(line) {}
  const char* source_file() const noexcept { return file_; }
  int source_line() const noexcept { return line_; }

  /// True when every rank of the job is known to have raised this same error
  /// (see comm's agree()): the launcher then prints it once, on rank 0, and every
  /// rank exits non-zero without MPI_Abort.
  bool collective() const noexcept { return collective_; }
  void set_collective(bool value) noexcept { collective_ = value; }

 private:
  const char* file_;
  int line_;
  bool collective_ = false;
};

/// A configuration file or command-line override is wrong.
class ConfigError : public Error {
  using Error::Error;
};

/// Input data (shards, manifests, raw files) is missing, corrupt or inconsistent.
class DataError : public Error {
  using Error::Error;
};

/// A feature that is not built into this binary or not implemented yet.
class NotAvailableError : public Error {
  using Error::Error;
};

}  // namespace hpcml

#define HPCML_THROW(ErrorType, message) throw ErrorType((message), __FILE__, __LINE__)

#define HPCML_REQUIRE(cond, ErrorType, message)   \
  do {                                            \
    if (!(cond)) HPCML_THROW(ErrorType, message); \
  } while (0)
