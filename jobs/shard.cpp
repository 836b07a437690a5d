// Placeholder until the 'shard' subcommand is written.
#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "hpcml/core/error.hpp"

namespace hpcml::jobs {

void add_shard(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("shard", "(not implemented yet)");
  cmd->allow_extras();
  cmd->callback([&action] {
    action = []() -> int { HPCML_THROW(NotAvailableError, "'hpcml shard' is not implemented in this version"); };
  });
}

}  // namespace hpcml::jobs
