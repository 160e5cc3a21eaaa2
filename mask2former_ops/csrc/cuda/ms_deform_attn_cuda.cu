// CUDA kernels of multi-scale deformable attention (shapes in ../ms_deform_attn.h).
//
// Forward: one thread per output element (n, q, m, d); consecutive threads are consecutive
// channels of one (n, q, m), so value reads are coalesced. Accumulates in the opmath dtype.
// Backward: one thread per (n, q, m, d). grad_value is scattered with atomicAdd into an opmath
// buffer (float32 for half / bfloat16 values, cast at the end). The gradients of the sampling
// location and attention weight are sums over the D channels: when D is a power of two, the
// `segment` = min(D, 32) lanes of a warp that share (n, q, m) reduce them with shuffles and one
// lane adds the result; otherwise every thread adds its share atomically.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <limits>

#include "../bilinear.h"
#include "../ms_deform_attn.h"

namespace mask2former_ops {
namespace {

constexpr int kThreads = 256;  // multiple of the warp size (the shuffles rely on it)
constexpr int kWarpSize = 32;

struct Sizes {
  int64_t num_values, heads, channels, queries, levels, points;
};

template <typename scalar_t, typename acc_t>
__global__ void forward_kernel(const int64_t total, const Sizes sz,
                               const scalar_t* __restrict__ value,
                               const int64_t* __restrict__ shapes,
                               const int64_t* __restrict__ starts,
                               const acc_t* __restrict__ locations,
                               const acc_t* __restrict__ weights, scalar_t* __restrict__ output) {
  const int64_t M = sz.heads, D = sz.channels, L = sz.levels, P = sz.points;
  const int64_t row = M * D;
  for (int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; index < total;
       index += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t d = index % D;
    const int64_t nqm = index / D;  // (n * Lq + q) * M + m
    const int64_t m = nqm % M;
    const int64_t n = nqm / (M * sz.queries);
    acc_t acc = 0;
    BilinearCorners<acc_t> corners;
    for (int64_t l = 0; l < L; ++l) {
      const int64_t height = shapes[2 * l], width = shapes[2 * l + 1];
      const scalar_t* level_value = value + (n * sz.num_values + starts[l]) * row + m * D + d;
      for (int64_t p = 0; p < P; ++p) {
        const int64_t sample = (nqm * L + l) * P + p;
        if (!bilinear_corners(locations[2 * sample], locations[2 * sample + 1], height, width,
                              corners)) {
          continue;
        }
        const acc_t attn = weights[sample];
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          if (corners.position[c] >= 0) {
            acc += attn * corners.weight[c] *
                   static_cast<acc_t>(level_value[corners.position[c] * row]);
          }
        }
      }
    }
    output[index] = static_cast<scalar_t>(acc);
  }
}

template <typename scalar_t, typename acc_t>
__global__ void backward_kernel(const int64_t total, const Sizes sz, const int segment,
                                const scalar_t* __restrict__ value,
                                const int64_t* __restrict__ shapes,
                                const int64_t* __restrict__ starts,
                                const acc_t* __restrict__ locations,
                                const acc_t* __restrict__ weights,
                                const scalar_t* __restrict__ grad_output,
                                acc_t* __restrict__ grad_value, acc_t* __restrict__ grad_locations,
                                acc_t* __restrict__ grad_weights) {
  const int64_t M = sz.heads, D = sz.channels, L = sz.levels, P = sz.points;
  const int64_t row = M * D;
  const int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  // No early return: every lane of a warp must reach the shuffles. Lanes past the end compute
  // on element 0 with a zero gradient and write nothing. Because total is a multiple of D and
  // segment divides D, a segment is either entirely active or entirely inactive.
  const bool active = index < total;
  const int64_t element = active ? index : 0;
  const int64_t d = element % D;
  const int64_t nqm = element / D;
  const int64_t m = nqm % M;
  const int64_t n = nqm / (M * sz.queries);
  const acc_t grad = active ? static_cast<acc_t>(grad_output[element]) : static_cast<acc_t>(0);
  const bool leader = active && (d % segment == 0);

  BilinearCorners<acc_t> corners;
  for (int64_t l = 0; l < L; ++l) {
    const int64_t height = shapes[2 * l], width = shapes[2 * l + 1];
    const int64_t level_offset = (n * sz.num_values + starts[l]) * row + m * D + d;
    for (int64_t p = 0; p < P; ++p) {
      const int64_t sample = (nqm * L + l) * P + p;
      const bool inside = bilinear_corners(locations[2 * sample], locations[2 * sample + 1],
                                           height, width, corners);
      const acc_t attn = weights[sample];
      acc_t g_weight = 0, g_h = 0, g_w = 0;
      if (inside) {
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          if (corners.position[c] < 0) continue;
          const int64_t offset = level_offset + corners.position[c] * row;
          const acc_t v = static_cast<acc_t>(value[offset]);
          g_weight += corners.weight[c] * v;
          g_h += corners.dweight_dh[c] * v;
          g_w += corners.dweight_dw[c] * v;
          if (active) atomicAdd(grad_value + offset, attn * corners.weight[c] * grad);
        }
        g_weight *= grad;
        g_h *= grad * attn * static_cast<acc_t>(height);  // d(pixel h)/dy = H
        g_w *= grad * attn * static_cast<acc_t>(width);   // d(pixel w)/dx = W
      }
      // Reduce over the channels of this segment (uniform control flow for the whole warp).
      for (int offset = segment / 2; offset > 0; offset /= 2) {
        g_weight += __shfl_down_sync(0xffffffffu, g_weight, offset, segment);
        g_h += __shfl_down_sync(0xffffffffu, g_h, offset, segment);
        g_w += __shfl_down_sync(0xffffffffu, g_w, offset, segment);
      }
      if (leader && inside) {
        atomicAdd(grad_weights + sample, g_weight);
        atomicAdd(grad_locations + 2 * sample, g_w);
        atomicAdd(grad_locations + 2 * sample + 1, g_h);
      }
    }
  }
}

Sizes sizes_of(const at::Tensor& value, const at::Tensor& sampling_locations) {
  return {value.size(1),           value.size(2),           value.size(3),
          sampling_locations.size(1), sampling_locations.size(3), sampling_locations.size(4)};
}

int64_t blocks_for(int64_t total) { return (total + kThreads - 1) / kThreads; }

}  // namespace

at::Tensor ms_deform_attn_forward_cuda(const at::Tensor& value, const at::Tensor& spatial_shapes,
                                       const at::Tensor& level_start_index,
                                       const at::Tensor& sampling_locations,
                                       const at::Tensor& attention_weights) {
  const c10::cuda::CUDAGuard guard(value.device());
  const Sizes sz = sizes_of(value, sampling_locations);
  at::Tensor output =
      at::empty({value.size(0), sz.queries, sz.heads * sz.channels}, value.options());
  const int64_t total = output.numel();
  if (total == 0) return output;
  // Grid-stride loop: cap the grid well inside the hardware limit.
  const int64_t blocks = std::min<int64_t>(blocks_for(total), 1 << 20);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, value.scalar_type(), "ms_deform_attn_forward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        forward_kernel<scalar_t, acc_t><<<blocks, kThreads, 0, stream>>>(
            total, sz, value.data_ptr<scalar_t>(), spatial_shapes.data_ptr<int64_t>(),
            level_start_index.data_ptr<int64_t>(), sampling_locations.data_ptr<acc_t>(),
            attention_weights.data_ptr<acc_t>(), output.data_ptr<scalar_t>());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
  return output;
}

std::vector<at::Tensor> ms_deform_attn_backward_cuda(
    const at::Tensor& value, const at::Tensor& spatial_shapes, const at::Tensor& level_start_index,
    const at::Tensor& sampling_locations, const at::Tensor& attention_weights,
    const at::Tensor& grad_output) {
  const c10::cuda::CUDAGuard guard(value.device());
  const Sizes sz = sizes_of(value, sampling_locations);
  // grad_value accumulates in the opmath dtype (float32 for half / bfloat16), cast at the end.
  at::Tensor grad_value = at::zeros(value.sizes(), sampling_locations.options());
  at::Tensor grad_locations = at::zeros_like(sampling_locations);
  at::Tensor grad_weights = at::zeros_like(attention_weights);
  const int64_t total = grad_output.numel();
  if (total > 0) {
    const int64_t blocks = blocks_for(total);
    TORCH_CHECK(blocks <= std::numeric_limits<int32_t>::max(),
                "ms_deform_attn_backward_cuda: too many elements (", total, ")");
    const int64_t D = sz.channels;
    const bool power_of_two = (D & (D - 1)) == 0;
    const int segment = power_of_two ? static_cast<int>(std::min<int64_t>(D, kWarpSize)) : 1;
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::kHalf, at::kBFloat16, value.scalar_type(), "ms_deform_attn_backward_cuda", [&] {
          using acc_t = at::opmath_type<scalar_t>;
          backward_kernel<scalar_t, acc_t><<<blocks, kThreads, 0, stream>>>(
              total, sz, segment, value.data_ptr<scalar_t>(), spatial_shapes.data_ptr<int64_t>(),
              level_start_index.data_ptr<int64_t>(), sampling_locations.data_ptr<acc_t>(),
              attention_weights.data_ptr<acc_t>(), grad_output.data_ptr<scalar_t>(),
              grad_value.data_ptr<acc_t>(), grad_locations.data_ptr<acc_t>(),
              grad_weights.data_ptr<acc_t>());
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
  }
  return {grad_value.to(value.scalar_type()), grad_locations, grad_weights};
}

}  // namespace mask2former_ops
