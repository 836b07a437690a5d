// Placeholder until the 'submit' subcommand is written.
#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "hpcml/core/error.hpp"

namespace hpcml::jobs {

void add_submit(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("submit", "(not implemented yet)");
  cmd->allow_extras();
  cmd->callback([&action] {
    action = []() -> int { HPCML_THROW(NotAvailableError, "'hpcml submit' is not implemented in this version"); };
  });
}

}  // namespace hpcml::jobs
