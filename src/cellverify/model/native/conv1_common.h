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

// Row [W, C] (channels last) -> buf[c * padded + t], zero past W.
inline void to_channels_first(const float* row, int W, int C, int padded, float* buf) {
  for (int c = 0; c < C; ++c) {
    for (int t = 0; t < W; ++t) buf[c * padded + t] = row[t * C + c];
    for (int t = W; t < padded; ++t) buf[c * padded + t] = 0.f;
  }
}

inline int padded_width(int T) { return (T + kLanes - 1) / kLanes * kLanes + kTaps - 1; }

template <int C, bool kRelu>
void forward_row(const float* buf, int padded, int T, int K, const float* w, const float* b,
                 float* y, int stride) {
  float tail[kLanes];
  for (int t0 = 0; t0 < T; t0 += kLanes) {
    v8 x[kTaps * C];
    for (int j = 0; j < kTaps; ++j)
      for (int c = 0; c < C; ++c) x[j * C + c] = load(buf + c * padded + t0 + j);
    const int n = T - t0 < kLanes ? T - t0 : kLanes;
    for (int k = 0; k < K; ++k) {
      v8 acc = b[k] - (v8){};
      for (int q = 0; q < kTaps * C; ++q) acc += w[q * K + k] * x[q];
      if (kRelu) acc = acc > 0 ? acc : 0;
      float* out = y + k * stride + t0;
      if (n == kLanes) {
        std::memcpy(out, &acc, sizeof acc);
      } else {
        std::memcpy(tail, &acc, sizeof acc);
        std::memcpy(out, tail, n * sizeof(float));
      }
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
