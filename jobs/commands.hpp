// Subcommand registration: one function per subcommand file. Each adds its
// subcommand (and options) to `app` and, if that subcommand is chosen on the
// command line, CLI11 calls the callback which stores the work in `action`.
// main() runs `action` inside the common error handling (see main.cpp).
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace CLI {
class App;
class Validator;
}  // namespace CLI
namespace hpcml::analysis {
struct ReportRequest;
}

namespace hpcml::jobs {

/// The work of the chosen subcommand; returns the process exit code.
using Action = std::function<int()>;

void add_info(CLI::App& app, Action& action);    // info.cpp
void add_shard(CLI::App& app, Action& action);   // shard.cpp
void add_train(CLI::App& app, Action& action);   // train.cpp
void add_bench(CLI::App& app, Action& action);   // bench.cpp: the `bench` group
void add_submit(CLI::App& app, Action& action);  // submit.cpp
void add_sweep(CLI::App& app, Action& action);   // sweep.cpp
void add_scale(CLI::App& app, Action& action);   // scale.cpp
void add_report(CLI::App& app, Action& action);  // report.cpp

// `hpcml bench <what>`: each adds one subcommand to the `bench` group.
void add_bench_allreduce(CLI::App& bench, Action& action);  // bench_allreduce.cpp
void add_bench_synthetic(CLI::App& bench, Action& action);  // bench_synthetic.cpp
void add_bench_io(CLI::App& bench, Action& action);         // bench_io.cpp

/// CLI11's IsMember for choices, but a refused value is echoed escaped and cut
/// short (core's printable): "--mode: expected strong or weak, got 'x\\ny'" (report.cpp).
CLI::Validator one_of(const std::vector<std::string>& choices);

/// `hpcml report` arguments that reproduce make_report(request) on a study
/// directory (`hpcml scale --slurm`'s report job; report.cpp owns the options).
std::vector<std::string> report_arguments(const analysis::ReportRequest& request,
                                          const std::string& study_dir, const std::string& mode,
                                          bool no_png);

}  // namespace hpcml::jobs
