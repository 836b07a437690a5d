// Placeholder until 'hpcml bench allreduce' is written.
#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "hpcml/core/error.hpp"

namespace hpcml::jobs {

void add_bench_allreduce(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("allreduce", "(not implemented yet)");
  cmd->allow_extras();
  cmd->callback([&action] {
    action = []() -> int {
      HPCML_THROW(NotAvailableError, "'hpcml bench allreduce' is not implemented in this version");
    };
  });
}

}  // namespace hpcml::jobs
