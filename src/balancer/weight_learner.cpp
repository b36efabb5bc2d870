#include "weight_learner.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace switchyard::balancer {
namespace {

using Vec = std::array<double, 3>;
using Mat = std::array<Vec, 3>;

Vec as_vec(const ResourceWeights& w) { return {w.cpu, w.memory, w.connections}; }
ResourceWeights as_weights(const Vec& v) { return {v[0], v[1], v[2]}; }

// Solves A x = y for the k x k leading block picked by `index` (Gaussian elimination with
// partial pivoting; k <= 3). False when singular.
bool solve(const Mat& a, const Vec& y, const std::array<int, 3>& index, int k, Vec* x) {
  double m[3][4];
  for (int r = 0; r < k; ++r) {
    for (int c = 0; c < k; ++c) m[r][c] = a[index[r]][index[c]];
    m[r][3] = y[index[r]];
  }
  for (int col = 0; col < k; ++col) {
    int pivot = col;
    for (int r = col + 1; r < k; ++r) {
      if (std::abs(m[r][col]) > std::abs(m[pivot][col])) pivot = r;
    }
    if (std::abs(m[pivot][col]) < 1e-12) return false;
    for (int c = 0; c < 4; ++c) std::swap(m[col][c], m[pivot][c]);
    for (int r = 0; r < k; ++r) {
      if (r == col) continue;
      const double f = m[r][col] / m[col][col];
      for (int c = col; c < 4; ++c) m[r][c] -= f * m[col][c];
    }
  }
  *x = Vec{0, 0, 0};
  for (int r = 0; r < k; ++r) (*x)[index[r]] = m[r][3] / m[r][r];
  return true;
}

}  // namespace

ResourceWeights bound_shares(ResourceWeights w, double lo, double hi) {
  Vec v = as_vec(w);
  std::array<bool, 3> fixed{};
  for (int round = 0; round < 6; ++round) {
    double fixed_sum = 0;
    double free_sum = 0;
    int free_count = 0;
    for (int i = 0; i < 3; ++i) {
      if (fixed[i]) {
        fixed_sum += v[i];
      } else {
        free_sum += v[i];
        ++free_count;
      }
    }
    if (free_count == 0) break;
    const double room = 1 - fixed_sum;
    for (int i = 0; i < 3; ++i) {
      if (!fixed[i]) v[i] = free_sum > 0 ? v[i] * room / free_sum : room / free_count;
    }
    // Pin the shares above hi first (what they give up goes to the others), then, once none
    // is above, those below lo; pinning both at once could leave the sum short of 1.
    bool changed = false;
    for (int i = 0; i < 3; ++i) {
      if (!fixed[i] && v[i] > hi) {
        v[i] = hi;
        fixed[i] = changed = true;
      }
    }
    if (!changed) {
      for (int i = 0; i < 3; ++i) {
        if (!fixed[i] && v[i] < lo) {
          v[i] = lo;
          fixed[i] = changed = true;
        }
      }
    }
    if (!changed) break;
  }
  return as_weights(v);
}

WeightFit fit_weights(std::span<const WeightSample> samples, const LearnerConfig& cfg) {
  WeightFit out;
  out.weights = cfg.static_weights;
  const size_t n = samples.size();
  if (n < 3) return out;
  // Means, then the centred covariance of the signals (c) and with the latency (cy).
  Vec mean{0, 0, 0};
  double mean_y = 0;
  for (const auto& s : samples) {
    mean[0] += s.cpu;
    mean[1] += s.memory;
    mean[2] += s.connections;
    mean_y += s.latency_ms;
  }
  const double inv = 1.0 / static_cast<double>(n);
  for (auto& m : mean) m *= inv;
  mean_y *= inv;
  Mat c{};
  Vec cy{0, 0, 0};
  double vy = 0;
  for (const auto& s : samples) {
    const Vec d{s.cpu - mean[0], s.memory - mean[1], s.connections - mean[2]};
    const double dy = s.latency_ms - mean_y;
    for (int i = 0; i < 3; ++i) {
      for (int j = 0; j < 3; ++j) c[i][j] += d[i] * d[j];
      cy[i] += d[i] * dy;
    }
    vy += dy * dy;
  }
  for (auto& row : c) {
    for (auto& x : row) x *= inv;
  }
  for (auto& x : cy) x *= inv;
  vy *= inv;
  if (vy <= 1e-9) return out;  // the latency does not move: nothing to learn
  // The signals that move, and of their subsets the best fit with no negative coefficient.
  std::array<bool, 3> moves{};
  for (int i = 0; i < 3; ++i) moves[i] = c[i][i] >= kMinSpread * kMinSpread;
  double best_rss = vy;
  Vec best{0, 0, 0};
  for (int mask = 1; mask < 8; ++mask) {
    std::array<int, 3> index{};
    int k = 0;
    bool usable = true;
    for (int i = 0; i < 3; ++i) {
      if ((mask & (1 << i)) == 0) continue;
      if (!moves[i]) usable = false;
      index[k++] = i;
    }
    if (!usable) continue;
    Vec b;
    if (!solve(c, cy, index, k, &b)) continue;
    bool nonnegative = true;
    for (int i = 0; i < 3; ++i) nonnegative = nonnegative && b[i] >= 0;
    if (!nonnegative) continue;
    // Residual variance: vy - 2 b.cy + b' C b.
    double bcy = 0;
    double bcb = 0;
    for (int i = 0; i < 3; ++i) {
      bcy += b[i] * cy[i];
      for (int j = 0; j < 3; ++j) bcb += b[i] * c[i][j] * b[j];
    }
    const double rss = vy - 2 * bcy + bcb;
    if (rss < best_rss - 1e-12) {
      best_rss = rss;
      best = b;
    }
  }
  const double total = best[0] + best[1] + best[2];
  if (total <= 0) return out;
  out.ok = true;
  out.r2 = std::clamp(1 - best_rss / vy, 0.0, 1.0);
  const double scale =
      cfg.static_weights.cpu + cfg.static_weights.memory + cfg.static_weights.connections;
  ResourceWeights shares =
      bound_shares(as_weights({best[0] / total, best[1] / total, best[2] / total}), cfg.min_weight,
                   cfg.max_weight);
  out.weights = {shares.cpu * scale, shares.memory * scale, shares.connections * scale};
  return out;
}

void WeightLearner::add(const WeightSample& s) {
  if (samples_.size() >= kMaxSamples) samples_.pop_front();
  samples_.push_back(s);
}

void WeightLearner::update(int64_t now_ns, const LearnerConfig& cfg, LearnedWeights& out) {
  if (!started_) {
    started_ = true;
    current_ = cfg.static_weights;
    last_ns_ = now_ns;
  } else if (now_ns - last_ns_ < 500'000'000) {
    return;
  }
  while (!samples_.empty() && samples_.front().at_ns < now_ns - cfg.window_ns) {
    samples_.pop_front();
  }
  // deque is not contiguous: copy into a scratch vector the fit can span (control thread).
  std::vector<WeightSample> window(samples_.begin(), samples_.end());
  const WeightFit fit = fit_weights(window, cfg);
  double confidence = 0;
  if (fit.ok && window.size() >= cfg.min_samples) {
    confidence = std::min(1.0, fit.r2 / kTrustedR2);
  }
  const Vec from = as_vec(cfg.static_weights);
  const Vec to = as_vec(fit.weights);
  Vec target;
  for (int i = 0; i < 3; ++i) target[i] = from[i] + confidence * (to[i] - from[i]);
  const double dt = static_cast<double>(now_ns - last_ns_);
  const double step =
      cfg.smoothing_ns <= 0 ? 1.0 : 1.0 - std::exp(-dt / static_cast<double>(cfg.smoothing_ns));
  Vec cur = as_vec(current_);
  for (int i = 0; i < 3; ++i) cur[i] += step * (target[i] - cur[i]);
  current_ = as_weights(cur);
  last_ns_ = now_ns;
  out.cpu.store(current_.cpu, std::memory_order_relaxed);
  out.memory.store(current_.memory, std::memory_order_relaxed);
  out.connections.store(current_.connections, std::memory_order_relaxed);
  out.r2.store(fit.ok ? fit.r2 : 0, std::memory_order_relaxed);
  out.samples.store(static_cast<uint32_t>(window.size()), std::memory_order_relaxed);
  out.confidence.store(confidence, std::memory_order_relaxed);
}

}  // namespace switchyard::balancer
