// Placeholder until 'hpcml bench synthetic' is written.
#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "hpcml/core/error.hpp"

namespace hpcml::jobs {

void add_bench_synthetic(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("synthetic", "(not implemented yet)");
  cmd->allow_extras();
  cmd->callback([&action] {
    action = []() -> int {
      HPCML_THROW(NotAvailableError, "'hpcml bench synthetic' is not implemented in this version");
    };
  });
}

}  // namespace hpcml::jobs
