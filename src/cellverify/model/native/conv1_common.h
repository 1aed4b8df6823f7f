// What conv1's native kernels share (conv_rows.cc, conv_spans.cc): vectors
// of 8 time positions, a row transposed to channels first, and one output
// row computed from it.  docs/design.md, "Native conv1".

#pragma once

#include <algorithm>
#include <cstring>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"

namespace cellverify {
namespace {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;

constexpr int kTaps = 3;        // conv1's width along time
constexpr int kLanes = 8;       // time positions per vector
constexpr int kMaxChannels = 8; // input channels with a compiled kernel
constexpr int64_t kShards = 8;  // fixed, for a thread-independent sum

typedef float v8 __attribute__((vector_size(32)));

inline v8 load(const float* p) {
  v8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Row [W, C] (channels last) -> buf[c * padded + t], zero past W. Read in
// order, C known at compile time: the loads stream and the stores unroll.
template <int C>
inline void to_channels_first(const float* row, int W, int padded, float* buf) {
  for (int t = 0; t < W; ++t)
    for (int c = 0; c < C; ++c) buf[c * padded + t] = row[t * C + c];
  for (int c = 0; c < C; ++c) std::fill(buf + c * padded + W, buf + (c + 1) * padded, 0.f);
}

inline int padded_width(int T) { return (T + kLanes - 1) / kLanes * kLanes + kTaps - 1; }

// Up to kBlock output channels at a time, their weights broadcast into
// vectors once per row: the block's sums are independent chains of FMAs
// that overlap (one channel at a time waited on each FMA's latency), and
// each FMA reads its weight vector from L1 in the same instruction. Each
// output is still its bias plus the products in tap-channel order.
constexpr int kBlock = 5;

template <int C, int B, bool kRelu>
void forward_block(const float* buf, int padded, int T, int K, const float* w, const float* b,
                   float* y, int stride) {
  constexpr int Q = kTaps * C;
  v8 wv[Q][B];
  for (int q = 0; q < Q; ++q)
    for (int i = 0; i < B; ++i) wv[q][i] = w[q * K + i] - (v8){};
  float tail[kLanes];
  for (int t0 = 0; t0 < T; t0 += kLanes) {
    v8 x[Q];
    for (int j = 0; j < kTaps; ++j)
      for (int c = 0; c < C; ++c) x[j * C + c] = load(buf + c * padded + t0 + j);
    v8 acc[B];
    for (int i = 0; i < B; ++i) acc[i] = b[i] - (v8){};
    for (int q = 0; q < Q; ++q)
      for (int i = 0; i < B; ++i) acc[i] += wv[q][i] * x[q];
    const int n = T - t0 < kLanes ? T - t0 : kLanes;
    for (int i = 0; i < B; ++i) {
      v8 a = acc[i];
      if (kRelu) a = a > 0 ? a : 0;
      float* out = y + i * stride + t0;
      if (n == kLanes) {
        std::memcpy(out, &a, sizeof a);
      } else {
        std::memcpy(tail, &a, sizeof a);
        std::memcpy(out, tail, n * sizeof(float));
      }
    }
  }
}

template <int C, bool kRelu>
void forward_row(const float* buf, int padded, int T, int K, const float* w, const float* b,
                 float* y, int stride) {
  for (int k0 = 0; k0 < K; k0 += kBlock) {
    const float *wk = w + k0, *bk = b + k0;
    float* yk = y + k0 * stride;
    switch (std::min(kBlock, K - k0)) {
      case 1: forward_block<C, 1, kRelu>(buf, padded, T, K, wk, bk, yk, stride); break;
      case 2: forward_block<C, 2, kRelu>(buf, padded, T, K, wk, bk, yk, stride); break;
      case 3: forward_block<C, 3, kRelu>(buf, padded, T, K, wk, bk, yk, stride); break;
      case 4: forward_block<C, 4, kRelu>(buf, padded, T, K, wk, bk, yk, stride); break;
      case 5: forward_block<C, 5, kRelu>(buf, padded, T, K, wk, bk, yk, stride); break;
    }
  }
}

// The shards' partial sums ([kShards][weights + K], in float64) added in
// shard order, as the filter's gradient (the first `weights`) and the bias's.
inline void write_shard_sums(const std::vector<double>& partial, int weights, int K, Tensor* dw,
                             Tensor* db) {
  float *dwp = dw->flat<float>().data(), *dbp = db->flat<float>().data();
  const int size = weights + K;
  for (int i = 0; i < size; ++i) {
    double total = 0;
    for (int64_t s = 0; s < kShards; ++s) total += partial[s * size + i];
    if (i < weights)
      dwp[i] = static_cast<float>(total);
    else
      dbp[i - weights] = static_cast<float>(total);
  }
}

// Calls F::template run<C>(args...) for C = 1..kMaxChannels.
#define CELLVERIFY_DISPATCH(C_, CALL) \
  switch (C_) {                       \
    case 1: CALL(1); break;           \
    case 2: CALL(2); break;           \
    case 3: CALL(3); break;           \
    case 4: CALL(4); break;           \
    case 5: CALL(5); break;           \
    case 6: CALL(6); break;           \
    case 7: CALL(7); break;           \
    case 8: CALL(8); break;           \
  }

}  // namespace
}  // namespace cellverify
