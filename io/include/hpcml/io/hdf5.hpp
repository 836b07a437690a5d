// RAII ownership of HDF5 handles and the one error-check macro for HDF5 calls.
//
// Thread safety: Debian's HDF5 (the MPICH flavour we link) is NOT built with
// --enable-threadsafe, so the library itself must never be entered by two
// threads at once. hpcml reads shards on a background prefetch thread while the
// main thread may open files or create datasets, therefore EVERY HDF5 call in
// hpcml -- including the H5?close calls made by the destructors below -- runs
// while holding the process-wide mutex returned by hdf5_mutex(). Take it with
// `Hdf5Lock lock;` around any sequence of HDF5 calls. The mutex is recursive so
// a function holding it may destroy handles (whose destructors lock again).
#pragma once

#include <hdf5.h>

#include <mutex>
#include <string>
#include <utility>

#include "hpcml/core/error.hpp"

namespace hpcml::io {

/// The process-wide lock that serialises every HDF5 call (see above).
std::recursive_mutex& hdf5_mutex();

/// Scoped holder of hdf5_mutex(). The first construction in a process also
/// turns off HDF5's automatic error-stack printing, so users only see our
/// one-line DataError messages.
class Hdf5Lock {
 public:
  Hdf5Lock();
  Hdf5Lock(const Hdf5Lock&) = delete;
  Hdf5Lock& operator=(const Hdf5Lock&) = delete;

 private:
  std::lock_guard<std::recursive_mutex> guard_;
};

/// The innermost message of HDF5's current error stack as ": <message>"
/// (e.g. ": truncated file: eof = 4096, ..."), or "" if the stack is empty.
/// Clears the stack. Call under Hdf5Lock right after the failing call.
std::string hdf5_error_detail();

/// Throws DataError "<context>: HDF5 call <call> failed: <HDF5's reason>" for a
/// negative herr_t/hid_t/htri_t. `context` names the file (and object)
/// involved; it is only evaluated on failure. Use under Hdf5Lock.
#define HPCML_CHECK_HDF5(call, context)                                                       \
  ([&]() {                                                                                    \
    auto hpcml_hdf5_result_ = (call);                                                         \
    if (hpcml_hdf5_result_ < 0)                                                               \
      HPCML_THROW(::hpcml::DataError, std::string(context) + ": HDF5 call " #call " failed" + \
                                          ::hpcml::io::hdf5_error_detail());                  \
    return hpcml_hdf5_result_;                                                                \
  }())

/// Owns one hid_t and closes it with `Close` on destruction. Non-copyable;
/// moving transfers ownership and leaves the source empty (id -1).
template <herr_t (*Close)(hid_t)>
class Handle {
 public:
  Handle() noexcept = default;
  /// Takes ownership of `id` (which may be negative: then the handle is empty).
  explicit Handle(hid_t id) noexcept : id_(id) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& other) noexcept : id_(other.id_) { other.id_ = H5I_INVALID_HID; }
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = other.id_;
      other.id_ = H5I_INVALID_HID;
    }
    return *this;
  }
  ~Handle() { reset(); }

  hid_t get() const noexcept { return id_; }
  explicit operator bool() const noexcept { return id_ >= 0; }
  /// Gives up ownership without closing.
  hid_t release() noexcept { return std::exchange(id_, H5I_INVALID_HID); }
  /// Closes the held id (errors on close are ignored: destructors never throw).
  void reset() noexcept {
    if (id_ >= 0) {
      try {
        Hdf5Lock lock;
        Close(id_);
      } catch (...) {
        // Only the mutex could throw (system error); nothing sensible to do here.
      }
      id_ = H5I_INVALID_HID;
    }
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

using File = Handle<H5Fclose>;
using DataSet = Handle<H5Dclose>;
using DataSpace = Handle<H5Sclose>;
using DataType = Handle<H5Tclose>;
using PropList = Handle<H5Pclose>;
using Attribute = Handle<H5Aclose>;
using Group = Handle<H5Gclose>;

}  // namespace hpcml::io
