// Multi-scale deformable attention kernels: declarations shared by the bindings and the backends.
//
// Shapes (Deformable DETR): N batch, S = sum_l H_l * W_l value positions, M heads, D channels per
// head, Lq queries, L levels, P points per head and level.
//   value               (N, S, M, D)        float64 / float32 / float16 / bfloat16
//   spatial_shapes      (L, 2) int64        (H_l, W_l)
//   level_start_index   (L,) int64
//   sampling_locations  (N, Lq, M, L, P, 2) float64 for a float64 value, else float32
//   attention_weights   (N, Lq, M, L, P)    same dtype as sampling_locations
//   output              (N, Lq, M * D)      dtype of value
// Bilinear sampling with zero padding; a location x in [0, 1] maps to pixel coordinate x * W - 0.5
// (grid_sample with align_corners=False). All sums accumulate in the opmath dtype.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace mask2former_ops {

// Checks devices, dtypes, shapes and contiguity; returns nothing, raises c10::Error on misuse.
void check_inputs(const at::Tensor& value, const at::Tensor& spatial_shapes,
                  const at::Tensor& level_start_index, const at::Tensor& sampling_locations,
                  const at::Tensor& attention_weights);

// `channels_per_thread`: 0 = vectors of channels, in the widest instruction set this CPU and
// build allow (AVX-512, AVX2, else the build's 16-byte vectors); 1 = one channel at a time.
at::Tensor ms_deform_attn_forward_cpu(const at::Tensor& value, const at::Tensor& spatial_shapes,
                                      const at::Tensor& level_start_index,
                                      const at::Tensor& sampling_locations,
                                      const at::Tensor& attention_weights,
                                      int64_t channels_per_thread);

// Returns {grad_value (dtype of value), grad_sampling_locations, grad_attention_weights}.
std::vector<at::Tensor> ms_deform_attn_backward_cpu(
    const at::Tensor& value, const at::Tensor& spatial_shapes, const at::Tensor& level_start_index,
    const at::Tensor& sampling_locations, const at::Tensor& attention_weights,
    const at::Tensor& grad_output, int64_t channels_per_thread);

// The instruction set the CPU kernels use for `channels_per_thread`: "avx512", "avx2", "base"
// (the build's own 16-byte vectors) or "scalar".
std::string cpu_kernel_isa(int64_t channels_per_thread);

#ifdef WITH_CUDA
// `channels_per_thread`: 0 picks the widest the inputs allow (16-byte vectors of channels when
// D divides and the tensors are aligned); 1 forces one thread per channel (for benchmarks).
at::Tensor ms_deform_attn_forward_cuda(const at::Tensor& value, const at::Tensor& spatial_shapes,
                                       const at::Tensor& level_start_index,
                                       const at::Tensor& sampling_locations,
                                       const at::Tensor& attention_weights,
                                       int64_t channels_per_thread);

std::vector<at::Tensor> ms_deform_attn_backward_cuda(
    const at::Tensor& value, const at::Tensor& spatial_shapes, const at::Tensor& level_start_index,
    const at::Tensor& sampling_locations, const at::Tensor& attention_weights,
    const at::Tensor& grad_output, int64_t channels_per_thread);
#endif

}  // namespace mask2former_ops
