#pragma once

#include <cstdint>

#include "switchyard/config/config.h"

namespace switchyard::proxy {

// Why an upstream try failed, in the terms of routes[].retries.on.
enum class RetryReason { kConnectFailure, kReset, kTimeout, kStatus };

// Whether the route's policy retries this failure (status: the response code for kStatus).
bool should_retry(const config::Retries& policy, RetryReason reason, unsigned status);

// The retry budget keeps retries from multiplying the load of an outage. A retry spends a token
// that requests earn: each request (first try) adds 0.2, so over time retries are at most 20%
// of requests, plus a saved burst (kMaxTokens per worker and cluster) for the moment when many
// in-flight requests fail at once. A cluster with fewer than kMinRetryConcurrency retries in
// flight may retry without a token, so that a quiet cluster can still retry. Finagle's budget
// (20%, rate-based) with Envoy's floor of 3; a budget on concurrent retries alone (Envoy's)
// cannot absorb one backend of three dying under load, where a third of the in-flight
// requests fail in the same instant.
constexpr int64_t kMinRetryConcurrency = 3;

class RetryBudget {
 public:
  static constexpr double kRatio = 0.2;
  static constexpr double kMaxTokens = 100;
  static constexpr double kInitialTokens = 10;

  void on_request() { tokens_ = tokens_ + kRatio > kMaxTokens ? kMaxTokens : tokens_ + kRatio; }
  // active_retries: requests of the cluster in flight that have retried (all workers).
  bool allow(int64_t active_retries) {
    if (active_retries < kMinRetryConcurrency) return true;
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
  }
  double tokens() const { return tokens_; }
  void set_tokens(double tokens) { tokens_ = tokens; }

 private:
  double tokens_ = kInitialTokens;
};

}  // namespace switchyard::proxy
