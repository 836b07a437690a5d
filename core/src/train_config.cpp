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
  auto layer_docs = doc.get_table_array("model.layers");
  if (!layer_docs.empty() && doc.has("model.hidden"))
    doc.fail("model.hidden", "give the model as model.hidden or as [[model.layers]], not both");
  for (auto& l : layer_docs) {
    LayerSpec s;
    auto require = [&l](const char* key, const char* what) {
      if (!l.has(key)) l.fail(key, std::string("missing: ") + what);
    };
    require("type", "the layer's type (dense, conv2d, maxpool2d, relu, flatten, dropout)");
    s.type =
        l.get_choice("type", "", {"dense", "conv2d", "maxpool2d", "relu", "flatten", "dropout"});
    if (s.type == "dense") {
      require("units", "a dense layer's output width");
      s.units = l.get_int("units", 0, 1, 1 << 20);
    } else if (s.type == "conv2d") {
      require("filters", "a conv2d layer's output channels");
      s.filters = l.get_int("filters", 0, 1, 65536);
      s.kernel = l.get_int("kernel", s.kernel, 1, 64);
      s.stride = l.get_int("stride", s.stride, 1, 64);
      s.padding = l.get_int("padding", s.padding, 0, 63);
    } else if (s.type == "maxpool2d") {
      s.size = l.get_int("size", s.size, 1, 64);
    } else if (s.type == "dropout") {
      s.rate = l.get_double("rate", s.rate, 0.0, 0.999);
    }
    l.check_unknown();
    c.model.layers.push_back(s);
  }
  c.model.input_shape = doc.get_int_list("model.input_shape", c.model.input_shape, 1);
  if (!c.model.input_shape.empty() && c.model.input_shape.size() != 3)
    doc.fail("model.input_shape", "expected [height, width, channels], got " +
                                      std::to_string(c.model.input_shape.size()) + " values");

  c.optimizer.name =
      doc.get_choice("optimizer.name", c.optimizer.name, {"sgd", "adam", "adamw", "lars", "lamb"});
  c.optimizer.lr = doc.get_double("optimizer.lr", c.optimizer.lr, 0.0, 1e3);
  if (c.optimizer.lr <= 0) doc.fail("optimizer.lr", "expected a learning rate > 0, got 0");
  c.optimizer.momentum = doc.get_double("optimizer.momentum", c.optimizer.momentum, 0.0, 0.999999);
  c.optimizer.weight_decay =
      doc.get_double("optimizer.weight_decay", c.optimizer.weight_decay, 0.0, 1.0);
  c.optimizer.schedule = doc.get_choice("optimizer.schedule", c.optimizer.schedule,
                                        {"constant", "cosine", "step", "poly"});
  c.optimizer.warmup_epochs =
      doc.get_double("optimizer.warmup_epochs", c.optimizer.warmup_epochs, 0.0, 1e6);
  c.optimizer.warmup_steps =
      doc.get_int("optimizer.warmup_steps", c.optimizer.warmup_steps, 0, std::int64_t{1} << 40);
  if (c.optimizer.warmup_steps > 0 && c.optimizer.warmup_epochs > 0)
    doc.fail("optimizer.warmup_steps",
             "give the warmup in epochs (optimizer.warmup_epochs) or in steps, not both");
  c.optimizer.scale_rule =
      doc.get_choice("optimizer.scale_rule", c.optimizer.scale_rule, {"none", "linear", "sqrt"});
  c.optimizer.base_batch =
      doc.get_int("optimizer.base_batch", c.optimizer.base_batch, 1, std::int64_t{1} << 40);
  c.optimizer.decay_epochs =
      doc.get_int_list("optimizer.decay_epochs", c.optimizer.decay_epochs, 1);
  for (std::size_t i = 1; i < c.optimizer.decay_epochs.size(); ++i) {
    if (c.optimizer.decay_epochs[i] <= c.optimizer.decay_epochs[i - 1])
      doc.fail("optimizer.decay_epochs",
               "milestones must increase, got " + std::to_string(c.optimizer.decay_epochs[i - 1]) +
                   " then " + std::to_string(c.optimizer.decay_epochs[i]));
  }
  if (c.optimizer.schedule == "step" && c.optimizer.decay_epochs.empty())
    doc.fail("optimizer.decay_epochs", "schedule \"step\" needs at least one milestone epoch");
  c.optimizer.decay_factor =
      doc.get_double("optimizer.decay_factor", c.optimizer.decay_factor, 0.0, 1.0);
  if (c.optimizer.decay_factor <= 0)
    doc.fail("optimizer.decay_factor", "expected a factor in (0, 1], got 0");
  c.optimizer.power = doc.get_double("optimizer.power", c.optimizer.power, 0.0, 100.0);
  c.optimizer.nesterov = doc.get_bool("optimizer.nesterov", c.optimizer.nesterov);
  if (c.optimizer.nesterov && c.optimizer.name != "sgd")
    doc.fail("optimizer.nesterov", "only optimizer.name = \"sgd\" has Nesterov momentum, not \"" +
                                       c.optimizer.name + "\"");
  c.optimizer.beta1 = doc.get_double("optimizer.beta1", c.optimizer.beta1, 0.0, 0.999999);
  c.optimizer.beta2 = doc.get_double("optimizer.beta2", c.optimizer.beta2, 0.0, 0.999999999);
  c.optimizer.eps = doc.get_double("optimizer.eps", c.optimizer.eps, 1e-30, 1.0);
  c.optimizer.lars_eta = doc.get_double("optimizer.lars_eta", c.optimizer.lars_eta, 1e-9, 1e3);
  c.optimizer.exclude_bias = doc.get_bool("optimizer.exclude_bias", c.optimizer.exclude_bias);

  c.train.epochs = static_cast<int>(doc.get_int("train.epochs", c.train.epochs, 1, 1000000));
  c.train.batch_size =
      static_cast<int>(doc.get_int("train.batch_size", c.train.batch_size, 1, 1 << 24));
  c.train.accumulate =
      static_cast<int>(doc.get_int("train.accumulate", c.train.accumulate, 1, 1 << 16));
  if (static_cast<std::int64_t>(c.train.batch_size) * c.train.accumulate > (1 << 24))
    doc.fail("train.accumulate", "train.batch_size x train.accumulate = " +
                                     std::to_string(static_cast<std::int64_t>(c.train.batch_size) *
                                                    c.train.accumulate) +
                                     " rows per rank and step exceeds 16777216");
  c.train.seed = static_cast<std::uint64_t>(
      doc.get_int("train.seed", static_cast<std::int64_t>(c.train.seed), 0));
  c.train.max_steps = doc.get_int("train.max_steps", c.train.max_steps, 0);
  c.train.evaluate = doc.get_bool("train.evaluate", c.train.evaluate);
  c.train.precision =
      doc.get_choice("train.precision", c.train.precision, {"fp32", "bf16", "fp16"});
  c.train.tf32 = doc.get_bool("train.tf32", c.train.tf32);
  if (c.train.tf32 && c.train.precision != "fp32")
    doc.fail("train.tf32",
             "TF32 applies to train.precision = \"fp32\" only, not \"" + c.train.precision + "\"");
  c.train.loss_scale = doc.get_double("train.loss_scale", c.train.loss_scale, 1.0, 0x1p64);
  c.train.loss_scale_window =
      doc.get_int("train.loss_scale_window", c.train.loss_scale_window, 1, std::int64_t{1} << 40);
  for (const char* key : {"train.loss_scale", "train.loss_scale_window"}) {
    if (doc.has(key) && c.train.precision != "fp16")
      doc.fail(key, std::string("loss scaling is for train.precision = \"fp16\" only, not \"") +
                        c.train.precision + "\"");
  }

  c.parallel.backend = doc.get_string("parallel.backend", c.parallel.backend);
  c.parallel.threads =
      static_cast<int>(doc.get_int("parallel.threads", c.parallel.threads, 0, 4096));
  c.parallel.gpu_sharing = doc.get_bool("parallel.gpu_sharing", c.parallel.gpu_sharing);
  c.parallel.overlap_update = doc.get_bool("parallel.overlap_update", c.parallel.overlap_update);

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

GemmPrecision gemm_precision(const TrainConfig::Train& t) {
  if (t.precision == "bf16") return GemmPrecision::kBf16;
  if (t.precision == "fp16") return GemmPrecision::kFp16;
  return t.tf32 ? GemmPrecision::kTf32 : GemmPrecision::kFp32;
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
