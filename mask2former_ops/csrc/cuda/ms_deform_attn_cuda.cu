// CUDA kernels of multi-scale deformable attention (shapes in ../ms_deform_attn.h).
//
// Thread layout, forward and backward: one thread per (n, q, m, channel group), where a channel
// group is kVec consecutive channels of one head. With kVec = 16 bytes / sizeof(value) (4 float32
// or 8 float16 / bfloat16 channels) every value read is one 16-byte load and the D / kVec threads
// of one (n, q, m) read one contiguous row of the head; the bilinear corners are computed once per
// group instead of once per channel. kVec = 1 (one thread per channel) serves float64, channel
// counts that do not divide by the vector width, and unaligned tensors. Sums accumulate in the
// opmath dtype (float32 for float16 / bfloat16).
//
// Backward: grad_value is scattered with atomics into an opmath buffer (float32 for half /
// bfloat16, cast at the end); on sm_90 and later a group adds its kVec channels with 16-byte
// vector atomics (float4), elsewhere channel by channel. The gradients of a sample's location and
// weight are sums over the D channels: the D / kVec lanes that share (n, q, m) reduce them with
// warp shuffles when D / kVec is a power of two; when those lanes are the whole head (D / kVec <=
// 32) the leader stores the sum, otherwise each segment's leader adds its part atomically.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "../bilinear.h"
#include "../ms_deform_attn.h"

namespace mask2former_ops {
namespace {

constexpr int kThreads = 256;  // multiple of the warp size (the shuffles rely on it)
constexpr int kWarpSize = 32;
constexpr int kVectorBytes = 16;  // widest global load / store of one thread

struct Sizes {
  int64_t num_values, heads, channels, queries, levels, points;
};

// kVec consecutive elements, aligned so that a load or store is a single vector instruction.
template <typename T, int kVec>
struct alignas(sizeof(T) * kVec) Pack {
  T v[kVec];
};

template <typename T, int kVec>
__device__ __forceinline__ Pack<T, kVec> load_pack(const T* ptr) {
  return *reinterpret_cast<const Pack<T, kVec>*>(ptr);
}

// dst[k] += scale * grad[k] for the kVec channels of a group (dst aligned to kVec elements).
template <int kVec, typename acc_t>
__device__ __forceinline__ void atomic_add_scaled(acc_t* dst, const acc_t scale,
                                                  const acc_t (&grad)[kVec]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr bool kFloat4 = std::is_same<acc_t, float>::value && kVec % 4 == 0;
#else
  constexpr bool kFloat4 = false;  // 16-byte atomics need sm_90
#endif
  if constexpr (kFloat4) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#pragma unroll
    for (int k = 0; k < kVec; k += 4) {
      atomicAdd(reinterpret_cast<float4*>(dst + k),
                make_float4(scale * grad[k], scale * grad[k + 1], scale * grad[k + 2],
                            scale * grad[k + 3]));
    }
#endif
  } else {
#pragma unroll
    for (int k = 0; k < kVec; ++k) atomicAdd(dst + k, scale * grad[k]);
  }
}

template <typename scalar_t, typename acc_t, int kVec>
__global__ void forward_kernel(const int64_t total, const Sizes sz,
                               const scalar_t* __restrict__ value,
                               const int64_t* __restrict__ shapes,
                               const int64_t* __restrict__ starts,
                               const acc_t* __restrict__ locations,
                               const acc_t* __restrict__ weights, scalar_t* __restrict__ output) {
  const int64_t M = sz.heads, D = sz.channels, L = sz.levels, P = sz.points;
  const int64_t row = M * D;  // stride between value positions
  const int64_t groups = D / kVec;
  for (int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; index < total;
       index += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t channel = (index % groups) * kVec;
    const int64_t nqm = index / groups;  // (n * Lq + q) * M + m
    const int64_t m = nqm % M;
    const int64_t n = nqm / (M * sz.queries);
    acc_t acc[kVec];
#pragma unroll
    for (int k = 0; k < kVec; ++k) acc[k] = 0;
    BilinearCorners<acc_t> corners;
    for (int64_t l = 0; l < L; ++l) {
      const int64_t height = shapes[2 * l], width = shapes[2 * l + 1];
      const scalar_t* level_value = value + (n * sz.num_values + starts[l]) * row + m * D + channel;
      for (int64_t p = 0; p < P; ++p) {
        const int64_t sample = (nqm * L + l) * P + p;
        if (!bilinear_corners(locations[2 * sample], locations[2 * sample + 1], height, width,
                              corners)) {
          continue;
        }
        const acc_t attn = weights[sample];
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          if (corners.position[c] < 0) continue;
          const Pack<scalar_t, kVec> v =
              load_pack<scalar_t, kVec>(level_value + corners.position[c] * row);
          const acc_t w = attn * corners.weight[c];
#pragma unroll
          for (int k = 0; k < kVec; ++k) acc[k] += w * static_cast<acc_t>(v.v[k]);
        }
      }
    }
    Pack<scalar_t, kVec> out;
#pragma unroll
    for (int k = 0; k < kVec; ++k) out.v[k] = static_cast<scalar_t>(acc[k]);
    *reinterpret_cast<Pack<scalar_t, kVec>*>(output + nqm * D + channel) = out;
  }
}

template <typename scalar_t, typename acc_t, int kVec>
__global__ void backward_kernel(const int64_t total, const Sizes sz, const int segment,
                                const bool exclusive, const scalar_t* __restrict__ value,
                                const int64_t* __restrict__ shapes,
                                const int64_t* __restrict__ starts,
                                const acc_t* __restrict__ locations,
                                const acc_t* __restrict__ weights,
                                const scalar_t* __restrict__ grad_output,
                                acc_t* __restrict__ grad_value, acc_t* __restrict__ grad_locations,
                                acc_t* __restrict__ grad_weights) {
  const int64_t M = sz.heads, D = sz.channels, L = sz.levels, P = sz.points;
  const int64_t row = M * D;
  const int64_t groups = D / kVec;
  const int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  // No early return: every lane of a warp must reach the shuffles. Lanes past the end compute
  // on thread 0's group with a zero gradient and write nothing. Because total is a multiple of
  // `groups` and segment divides it, a segment is either entirely active or entirely inactive.
  const bool active = index < total;
  const int64_t element = active ? index : 0;
  const int64_t group = element % groups;
  const int64_t channel = group * kVec;
  const int64_t nqm = element / groups;
  const int64_t m = nqm % M;
  const int64_t n = nqm / (M * sz.queries);
  acc_t grad[kVec];
  {
    const Pack<scalar_t, kVec> g = load_pack<scalar_t, kVec>(grad_output + nqm * D + channel);
#pragma unroll
    for (int k = 0; k < kVec; ++k) grad[k] = active ? static_cast<acc_t>(g.v[k]) : acc_t(0);
  }
  const bool leader = active && (group % segment == 0);

  BilinearCorners<acc_t> corners;
  for (int64_t l = 0; l < L; ++l) {
    const int64_t height = shapes[2 * l], width = shapes[2 * l + 1];
    const int64_t level_offset = (n * sz.num_values + starts[l]) * row + m * D + channel;
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
          const Pack<scalar_t, kVec> v = load_pack<scalar_t, kVec>(value + offset);
          acc_t dot = 0;  // sum over this group's channels of value * grad_output
#pragma unroll
          for (int k = 0; k < kVec; ++k) dot += static_cast<acc_t>(v.v[k]) * grad[k];
          g_weight += corners.weight[c] * dot;
          g_h += corners.dweight_dh[c] * dot;
          g_w += corners.dweight_dw[c] * dot;
          if (active) atomic_add_scaled<kVec>(grad_value + offset, attn * corners.weight[c], grad);
        }
        g_h *= attn * static_cast<acc_t>(height);  // d(pixel h)/dy = H
        g_w *= attn * static_cast<acc_t>(width);   // d(pixel w)/dx = W
      }
      // Reduce over the groups of this segment (uniform control flow for the whole warp).
      for (int offset = segment / 2; offset > 0; offset /= 2) {
        g_weight += __shfl_down_sync(0xffffffffu, g_weight, offset, segment);
        g_h += __shfl_down_sync(0xffffffffu, g_h, offset, segment);
        g_w += __shfl_down_sync(0xffffffffu, g_w, offset, segment);
      }
      if (leader && inside) {
        if (exclusive) {  // the segment is the whole head: its sum is the gradient
          grad_weights[sample] = g_weight;
          grad_locations[2 * sample] = g_w;
          grad_locations[2 * sample + 1] = g_h;
        } else {
          atomicAdd(grad_weights + sample, g_weight);
          atomicAdd(grad_locations + 2 * sample, g_w);
          atomicAdd(grad_locations + 2 * sample + 1, g_h);
        }
      }
    }
  }
}

Sizes sizes_of(const at::Tensor& value, const at::Tensor& sampling_locations) {
  return {value.size(1),           value.size(2),           value.size(3),
          sampling_locations.size(1), sampling_locations.size(3), sampling_locations.size(4)};
}

int64_t blocks_for(int64_t total) { return (total + kThreads - 1) / kThreads; }

bool aligned(const void* ptr) { return reinterpret_cast<std::uintptr_t>(ptr) % kVectorBytes == 0; }

// Channels per thread: the vector width when the channels and every tensor read or written by
// vectors allow it, else 1. `requested` > 0 forces a width (1 or the vector width), for
// benchmarks; a width the inputs do not allow is an error.
template <typename scalar_t>
int channels_per_thread(int64_t channels, std::initializer_list<const void*> pointers,
                        int64_t requested) {
  constexpr int vector_width = kVectorBytes / sizeof(scalar_t);
  bool fits = vector_width > 1 && channels % vector_width == 0;
  for (const void* ptr : pointers) fits = fits && aligned(ptr);
  if (requested > 0) {
    TORCH_CHECK(requested == 1 || (requested == vector_width && fits),
                "ms_deform_attn: channels_per_thread=", requested, " is not possible here (",
                "vector width ", vector_width, ", channels ", channels, ")");
    return static_cast<int>(requested);
  }
  return fits ? vector_width : 1;
}

}  // namespace

at::Tensor ms_deform_attn_forward_cuda(const at::Tensor& value, const at::Tensor& spatial_shapes,
                                       const at::Tensor& level_start_index,
                                       const at::Tensor& sampling_locations,
                                       const at::Tensor& attention_weights,
                                       int64_t requested_channels_per_thread) {
  const c10::cuda::CUDAGuard guard(value.device());
  const Sizes sz = sizes_of(value, sampling_locations);
  at::Tensor output =
      at::empty({value.size(0), sz.queries, sz.heads * sz.channels}, value.options());
  if (output.numel() == 0) return output;
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, value.scalar_type(), "ms_deform_attn_forward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        constexpr int kVec = kVectorBytes / sizeof(scalar_t);
        const int vec = channels_per_thread<scalar_t>(
            sz.channels, {value.data_ptr(), output.data_ptr()}, requested_channels_per_thread);
        const int64_t total = output.numel() / vec;
        // Grid-stride loop: cap the grid well inside the hardware limit.
        const int64_t blocks = std::min<int64_t>(blocks_for(total), 1 << 20);
        const auto launch = [&](auto kernel) {
          kernel<<<blocks, kThreads, 0, stream>>>(
              total, sz, value.data_ptr<scalar_t>(), spatial_shapes.data_ptr<int64_t>(),
              level_start_index.data_ptr<int64_t>(), sampling_locations.data_ptr<acc_t>(),
              attention_weights.data_ptr<acc_t>(), output.data_ptr<scalar_t>());
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        };
        if constexpr (kVec > 1) {
          if (vec == kVec) return launch(forward_kernel<scalar_t, acc_t, kVec>);
        }
        launch(forward_kernel<scalar_t, acc_t, 1>);
      });
  return output;
}

std::vector<at::Tensor> ms_deform_attn_backward_cuda(
    const at::Tensor& value, const at::Tensor& spatial_shapes, const at::Tensor& level_start_index,
    const at::Tensor& sampling_locations, const at::Tensor& attention_weights,
    const at::Tensor& grad_output, int64_t requested_channels_per_thread) {
  const c10::cuda::CUDAGuard guard(value.device());
  const Sizes sz = sizes_of(value, sampling_locations);
  // grad_value accumulates in the opmath dtype (float32 for half / bfloat16), cast at the end.
  at::Tensor grad_value = at::zeros(value.sizes(), sampling_locations.options());
  at::Tensor grad_locations = at::zeros_like(sampling_locations);
  at::Tensor grad_weights = at::zeros_like(attention_weights);
  if (grad_output.numel() > 0) {
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::kHalf, at::kBFloat16, value.scalar_type(), "ms_deform_attn_backward_cuda", [&] {
          using acc_t = at::opmath_type<scalar_t>;
          constexpr int kVec = kVectorBytes / sizeof(scalar_t);
          const int vec = channels_per_thread<scalar_t>(
              sz.channels, {value.data_ptr(), grad_output.data_ptr(), grad_value.data_ptr()},
              requested_channels_per_thread);
          const int64_t total = grad_output.numel() / vec;
          const int64_t blocks = blocks_for(total);
          TORCH_CHECK(blocks <= std::numeric_limits<int32_t>::max(),
                      "ms_deform_attn_backward_cuda: too many elements (", grad_output.numel(),
                      ")");
          const int64_t groups = sz.channels / vec;  // threads per (n, q, m)
          const bool power_of_two = (groups & (groups - 1)) == 0;
          const int segment =
              power_of_two ? static_cast<int>(std::min<int64_t>(groups, kWarpSize)) : 1;
          const bool exclusive = segment == groups;
          const auto launch = [&](auto kernel) {
            kernel<<<blocks, kThreads, 0, stream>>>(
                total, sz, segment, exclusive, value.data_ptr<scalar_t>(),
                spatial_shapes.data_ptr<int64_t>(), level_start_index.data_ptr<int64_t>(),
                sampling_locations.data_ptr<acc_t>(), attention_weights.data_ptr<acc_t>(),
                grad_output.data_ptr<scalar_t>(), grad_value.data_ptr<acc_t>(),
                grad_locations.data_ptr<acc_t>(), grad_weights.data_ptr<acc_t>());
            C10_CUDA_KERNEL_LAUNCH_CHECK();
          };
          if constexpr (kVec > 1) {
            if (vec == kVec) return launch(backward_kernel<scalar_t, acc_t, kVec>);
          }
          launch(backward_kernel<scalar_t, acc_t, 1>);
        });
  }
  return {grad_value.to(value.scalar_type()), grad_locations, grad_weights};
}

}  // namespace mask2former_ops
