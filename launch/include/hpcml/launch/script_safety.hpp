// Allowlists for every value that reaches a generated batch script, and shell
// quoting for what passes them.
//
// A batch script is shell: a newline inside an `#SBATCH` value ends the comment
// and the rest of the value runs as a command; `$(...)`, backticks, `;` and `#`
// do their usual damage anywhere outside single quotes. So each field has an
// allowlist (what Slurm and the shell can take without interpretation), control
// characters are refused everywhere, and values written into the script body
// are single-quoted on top of that.
#pragma once

#include <string>
#include <string_view>

#include "hpcml/core/strings.hpp"

namespace hpcml::launch {

/// What a value is, which decides its allowlist.
enum class Field {
  kJobName,     // letters, digits, . _ + -  (1..128, not starting with '-')
  kPath,        // letters, digits, / . _ + , = @ -  and Slurm's %j %A %a %x %u %N %%
  kName,        // partition, account, qos, module, site: letters, digits, . _ + / @ : -
  kConstraint,  // Slurm feature expression: names with & | , * [ ] ( ) !
  kGres,        // gpu:a100:2 style: letters, digits, _ : . , -
  kMailUser,    // user@host
  kDirective,   // an extra sbatch option: --name or --name=value (value as kGres plus / = @ %)
  kEnvName,     // shell variable name
  kText,        // free text (environment values, sweep values, arguments): no control characters
};

/// Human-readable description of the allowlist, for error messages.
std::string_view describe(Field field);

/// Empty when `value` is acceptable for `field`, otherwise why not (one line).
std::string check_field(Field field, std::string_view value);

/// True if `value` contains an ASCII control character (0x00-0x1f, 0x7f).
bool has_control_char(std::string_view value);

/// The value single-quoted for POSIX sh: 'it'\''s'. Safe for any text without NUL.
std::string shell_quote(std::string_view value);

/// Printable form of a value for error messages: core's one helper (escaped, truncated).
using ::hpcml::printable;

}  // namespace hpcml::launch
