#include "hpcml/core/lr_schedule.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "hpcml/core/error.hpp"

namespace hpcml {

namespace {

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::size_t epochs_to_steps(double epochs, std::size_t steps_per_epoch) {
  return static_cast<std::size_t>(std::llround(epochs * static_cast<double>(steps_per_epoch)));
}

}  // namespace

double scaled_learning_rate(const std::string& rule, double lr, std::size_t global_batch,
                            std::size_t base_batch) {
  if (rule == "none") return lr;
  HPCML_REQUIRE(base_batch > 0, ConfigError, "optimizer.base_batch: must be >= 1");
  const double k = static_cast<double>(global_batch) / static_cast<double>(base_batch);
  if (rule == "linear") return lr * k;
  if (rule == "sqrt") return lr * std::sqrt(k);
  HPCML_THROW(ConfigError,
              "optimizer.scale_rule: unknown rule '" + rule + "' (choices: none, linear, sqrt)");
}

LrSchedule::LrSchedule(const TrainConfig::Optimizer& opt, std::size_t global_batch,
                       std::size_t steps_per_epoch, std::size_t total_steps)
    : opt_(opt),
      global_batch_(global_batch),
      total_steps_(total_steps),
      warmup_steps_(opt.warmup_steps > 0 ? static_cast<std::size_t>(opt.warmup_steps)
                                         : epochs_to_steps(opt.warmup_epochs, steps_per_epoch)),
      peak_(scaled_learning_rate(opt.scale_rule, opt.lr, global_batch,
                                 static_cast<std::size_t>(opt.base_batch))) {
  for (double e : opt.decay_epochs) milestones_.push_back(epochs_to_steps(e, steps_per_epoch));
}

double LrSchedule::lr(std::size_t step) const {
  if (step < warmup_steps_)
    return peak_ * static_cast<double>(step + 1) / static_cast<double>(warmup_steps_);
  const std::string& s = opt_.schedule;
  if (s == "step") {
    double v = peak_;
    for (std::size_t m : milestones_)
      if (step >= m) v *= opt_.decay_factor;
    return v;
  }
  if ((s == "cosine" || s == "poly") && total_steps_ > warmup_steps_) {
    const double t = std::min(1.0, static_cast<double>(step - warmup_steps_) /
                                       static_cast<double>(total_steps_ - warmup_steps_));
    if (s == "cosine") return peak_ * 0.5 * (1.0 + std::cos(3.141592653589793 * t));
    return peak_ * std::pow(1.0 - t, opt_.power);
  }
  return peak_;
}

std::string LrSchedule::describe() const {
  std::string d = number(opt_.lr);
  if (opt_.scale_rule != "none") {
    const double k = peak_ / opt_.lr;
    d += " x " + number(k) + " (" + opt_.scale_rule + ": global batch " +
         std::to_string(global_batch_) + " / base " + std::to_string(opt_.base_batch) +
         ") = " + number(peak_);
  } else {
    d += " (not scaled: global batch " + std::to_string(global_batch_) + ")";
  }
  d += "; warmup " + (warmup_steps_ > 0 ? std::to_string(warmup_steps_) + " steps" : "none");
  const std::string& s = opt_.schedule;
  if (s == "cosine") {
    d += "; cosine to 0 at step " + std::to_string(total_steps_);
  } else if (s == "poly") {
    d += "; polynomial (power " + number(opt_.power) + ") to 0 at step " +
         std::to_string(total_steps_);
  } else if (s == "step") {
    d += "; x " + number(opt_.decay_factor) + " at step";
    for (std::size_t i = 0; i < milestones_.size(); ++i)
      d += (i ? ", " : " ") + std::to_string(milestones_[i]);
    if (milestones_.empty()) d += "s (none given: constant)";
  } else {
    d += "; constant";
  }
  return d;
}

}  // namespace hpcml
