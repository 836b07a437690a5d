// Attribute helpers shared by the shard writer and reader. Callers hold Hdf5Lock.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hpcml/io/hdf5.hpp"

namespace hpcml::io {

void write_int_attribute(hid_t obj, const char* name, std::int64_t value, const std::string& ctx);
void write_int_array_attribute(hid_t obj, const char* name, const std::vector<std::int64_t>& values,
                               const std::string& ctx);
void write_string_attribute(hid_t obj, const char* name, const std::string& value,
                            const std::string& ctx);

/// Reads an integer scalar or 1-D integer array attribute (converted to int64).
/// Throws DataError naming ctx and the attribute if it is missing or not integer.
std::vector<std::int64_t> read_int_attribute(hid_t obj, const char* name, const std::string& ctx);

}  // namespace hpcml::io
