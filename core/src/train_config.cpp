#include "hpcml/core/train_config.hpp"

#include <cctype>
#include <limits>

namespace hpcml {

TrainConfig read_train_config(ConfigDoc& doc) {
  TrainConfig c;
  c.data.path = doc.get_string("data.path", c.data.path);
  if (c.data.path.empty()) doc.fail("data.path", "expected a directory path, got an empty string");
  c.data.train_split = doc.get_string("data.train_split", c.data.train_split);
  c.data.test_split = doc.get_string("data.test_split", c.data.test_split);
  c.data.verify = doc.get_bool("data.verify", c.data.verify);
  c.data.prefetch = static_cast<int>(doc.get_int_or_auto("data.prefetch", c.data.prefetch, 0, 64,
                                                         TrainConfig::Data::kAutoPrefetch));

  c.model.hidden = doc.get_int_list("model.hidden", c.model.hidden, 1);
  for (auto h : c.model.hidden) {
    if (h > 1 << 20)
      doc.fail("model.hidden", "layer width " + std::to_string(h) + " exceeds 1048576");
  }
  c.model.activation = doc.get_choice("model.activation", c.model.activation, {"relu"});

  c.optimizer.lr = doc.get_double("optimizer.lr", c.optimizer.lr, 0.0, 1e3);
  if (c.optimizer.lr <= 0) doc.fail("optimizer.lr", "expected a learning rate > 0, got 0");
  c.optimizer.momentum = doc.get_double("optimizer.momentum", c.optimizer.momentum, 0.0, 0.999999);
  c.optimizer.weight_decay =
      doc.get_double("optimizer.weight_decay", c.optimizer.weight_decay, 0.0, 1.0);
  c.optimizer.schedule =
      doc.get_choice("optimizer.schedule", c.optimizer.schedule, {"constant", "cosine"});
  c.optimizer.warmup_epochs =
      doc.get_double("optimizer.warmup_epochs", c.optimizer.warmup_epochs, 0.0, 1e6);

  c.train.epochs = static_cast<int>(doc.get_int("train.epochs", c.train.epochs, 1, 1000000));
  c.train.batch_size =
      static_cast<int>(doc.get_int("train.batch_size", c.train.batch_size, 1, 1 << 24));
  c.train.seed = static_cast<std::uint64_t>(
      doc.get_int("train.seed", static_cast<std::int64_t>(c.train.seed), 0));
  c.train.max_steps = doc.get_int("train.max_steps", c.train.max_steps, 0);
  c.train.evaluate = doc.get_bool("train.evaluate", c.train.evaluate);

  c.parallel.backend = doc.get_string("parallel.backend", c.parallel.backend);
  c.parallel.threads =
      static_cast<int>(doc.get_int("parallel.threads", c.parallel.threads, 0, 4096));

  c.checkpoint.every_steps = doc.get_int("checkpoint.every_steps", c.checkpoint.every_steps, 0);
  c.checkpoint.every_minutes =
      doc.get_double("checkpoint.every_minutes", c.checkpoint.every_minutes, 0.0, 1e7);
  c.checkpoint.keep =
      static_cast<int>(doc.get_int("checkpoint.keep", c.checkpoint.keep, 1, 1000000));
  c.checkpoint.dir = doc.get_string("checkpoint.dir", c.checkpoint.dir);
  c.checkpoint.async = doc.get_bool("checkpoint.async", c.checkpoint.async);

  c.run.dir = doc.get_string("run.dir", c.run.dir);
  if (c.run.dir.empty()) doc.fail("run.dir", "expected a directory path, got an empty string");
  c.run.name = doc.get_string("run.name", c.run.name);
  for (char ch : c.run.name) {
    bool ok = std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.';
    if (!ok)
      doc.fail("run.name",
               "may contain only letters, digits, '-', '_' and '.', got '" + c.run.name + "'");
  }
  if (c.run.name == "." || c.run.name == "..")
    doc.fail("run.name", "'" + c.run.name + "' is not a run name");
  c.run.progress = doc.get_choice("run.progress", c.run.progress, {"auto", "always", "never"});
  return c;
}

PrefetchChoice choose_prefetch(int prefetch, int threads_per_rank, int hardware_threads,
                               int local_size, int node_cpus) {
  PrefetchChoice c;
  if (prefetch == TrainConfig::Data::kAutoPrefetch) {
    const bool spare =
        hardware_threads > threads_per_rank && node_cpus > local_size * threads_per_rank;
    c.depth = spare ? 2 : 0;
    c.description = spare ? "reader thread 2 batches ahead (prefetch auto: spare core)"
                          : "reads on the training thread (prefetch auto: no spare core)";
  } else {
    c.depth = static_cast<std::size_t>(prefetch);
    c.description = c.depth ? "reader thread " + std::to_string(c.depth) + " batches ahead"
                            : "reads on the training thread (prefetch 0)";
  }
  return c;
}

}  // namespace hpcml
