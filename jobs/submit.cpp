// `hpcml submit CONFIG... [--dry-run] [--site NAME] [--set k=v ...]`: writes a
// batch script into each config's run directory and submits it (one job, or
// one job array for a config with a [sweep] table). Prints one job id per line.
// Runs on the login node: no MPI.
#include <CLI/CLI.hpp>
#include <iostream>

#include "commands.hpp"
#include "hpcml/launch/submit.hpp"

namespace hpcml::jobs {

void add_submit(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "submit",
      "Write Slurm batch scripts for job configs and submit them (sweeps become job arrays; "
      "configs with slurm.dependency wait for the ones before them)");
  auto opts = std::make_shared<launch::SubmitOptions>();
  cmd->add_option("configs", opts->configs, "job config(s), submitted in this order")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_flag("--dry-run", opts->dry_run, "print the batch script(s); write and submit nothing");
  cmd->add_option("--site", opts->site,
                  "site profile: a name in configs/sites/ (or $HPCML_SITES_DIR) or a .toml path");
  cmd->add_option("--set", opts->sets, "override a config key: --set slurm.nodes=2 (repeatable)");
  cmd->add_option("--submitter", opts->submitter,
                  "auto (libslurm when built with it), libslurm or sbatch")
      ->check(one_of({"auto", "libslurm", "sbatch"}));
  cmd->add_flag("--no-submit", opts->write_only,
                "write the run directory and scripts but do not submit (submit later with sbatch)");
  cmd->add_flag("--hold", opts->hold, "submit the jobs held (release with scontrol release)");
  cmd->add_option("--hpcml", opts->hpcml,
                  "hpcml executable the jobs run (default: the site's, else this one)");
  cmd->callback([opts, &action] {
    action = [opts]() -> int {
      launch::submit_configs(*opts, std::cout, std::cerr);
      return 0;
    };
  });
}

}  // namespace hpcml::jobs
