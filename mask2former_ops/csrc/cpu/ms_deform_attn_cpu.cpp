// CPU kernels of multi-scale deformable attention (shapes in ../ms_deform_attn.h).
//
// Forward: parallel over (n, q); each (n, q, m) gathers its L * P * 4 bilinear taps, then
// accumulates its D channels over them in the opmath dtype, a few vectors of channels at a time
// (value rows are D contiguous elements). Backward: parallel over (n, m), so every task owns the
// slice grad_value[n, :, m, :] and needs no atomics; that is N * M tasks (8 heads x the batch),
// plenty for a few threads but it caps the speed-up on many-core machines.
//
// The kernel bodies (ms_deform_attn_cpu_kernel.h) are compiled here once per instruction set and
// chosen at run time, so one build runs on every x86-64 CPU and uses the widest vectors it has:
//   "avx512"  64-byte vectors, AVX-512 F/BW/VL/DQ + FMA (GCC on x86 only)
//   "avx2"    32-byte vectors, AVX2 + FMA (GCC on x86 only)
//   "base"    16-byte vectors of the build's own target (SSE2 on x86-64, NEON on aarch64)
//   "scalar"  one channel at a time (channels_per_thread=1: the self check's fallback layout)
// The vectorised layout takes the widest that torch's own CPU dispatch chose
// (at::get_cpu_capability(): the CPU's features, lowered by ATEN_CPU_CAPABILITY=avx2/default).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "../bilinear.h"
#include "../ms_deform_attn.h"

#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
#define M2F_X86_TARGETS 1
#else
#define M2F_X86_TARGETS 0
#endif

namespace mask2former_ops {
namespace {

struct Sizes {
  int64_t batch, num_values, heads, channels, queries, levels, points;
};

Sizes sizes_of(const at::Tensor& value, const at::Tensor& sampling_locations) {
  return {value.size(0), value.size(1), value.size(2), value.size(3),
          sampling_locations.size(1), sampling_locations.size(3), sampling_locations.size(4)};
}

// Pointers of one call (the backward's outputs are null in the forward and the reverse).
template <typename scalar_t, typename acc_t>
struct KernelArgs {
  Sizes sz;
  const scalar_t* value;
  const int64_t* shapes;
  const int64_t* starts;
  const acc_t* locations;
  const acc_t* weights;
  scalar_t* output;
  const scalar_t* grad_output;
  acc_t* grad_value;
  acc_t* grad_locations;
  acc_t* grad_weights;
};

namespace scalar_isa {
constexpr int kVectorBytes = 0;
#include "ms_deform_attn_cpu_kernel.h"
}  // namespace scalar_isa

namespace base_isa {
constexpr int kVectorBytes = 16;
#include "ms_deform_attn_cpu_kernel.h"
}  // namespace base_isa

#if M2F_X86_TARGETS
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2_isa {
constexpr int kVectorBytes = 32;
#include "ms_deform_attn_cpu_kernel.h"
}  // namespace avx2_isa
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma,avx512f,avx512bw,avx512vl,avx512dq")
namespace avx512_isa {
constexpr int kVectorBytes = 64;
#include "ms_deform_attn_cpu_kernel.h"
}  // namespace avx512_isa
#pragma GCC pop_options
#endif

enum class Isa { kScalar, kBase, kAvx2, kAvx512 };

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kBase:
      return "base";
    default:
      return "scalar";
  }
}

// The widest instruction set compiled here that torch's CPU dispatch allows (decided once).
Isa vector_isa() {
  static const Isa isa = [] {
#if M2F_X86_TARGETS
    const std::string capability = at::get_cpu_capability();
    if (capability == "AVX512") return Isa::kAvx512;
    if (capability == "AVX2") return Isa::kAvx2;
#endif
    return Isa::kBase;
  }();
  return isa;
}

// channels_per_thread as in the CUDA kernels: 0 = the vectorised layout, 1 = one channel at a time.
Isa isa_for(int64_t channels_per_thread) {
  TORCH_CHECK(channels_per_thread == 0 || channels_per_thread == 1,
              "ms_deform_attn: the CPU kernels take channels_per_thread=0 (vectors of channels) "
              "or 1 (one channel at a time), got ",
              channels_per_thread);
  return channels_per_thread == 1 ? Isa::kScalar : vector_isa();
}

template <typename scalar_t, typename acc_t>
using RangeFn = void (*)(const KernelArgs<scalar_t, acc_t>&, int64_t, int64_t);

template <typename scalar_t, typename acc_t>
RangeFn<scalar_t, acc_t> forward_range_for(Isa isa) {
  switch (isa) {
#if M2F_X86_TARGETS
    case Isa::kAvx512:
      return &avx512_isa::forward_range<scalar_t, acc_t>;
    case Isa::kAvx2:
      return &avx2_isa::forward_range<scalar_t, acc_t>;
#endif
    case Isa::kBase:
      return &base_isa::forward_range<scalar_t, acc_t>;
    default:
      return &scalar_isa::forward_range<scalar_t, acc_t>;
  }
}

template <typename scalar_t, typename acc_t>
RangeFn<scalar_t, acc_t> backward_range_for(Isa isa) {
  switch (isa) {
#if M2F_X86_TARGETS
    case Isa::kAvx512:
      return &avx512_isa::backward_range<scalar_t, acc_t>;
    case Isa::kAvx2:
      return &avx2_isa::backward_range<scalar_t, acc_t>;
#endif
    case Isa::kBase:
      return &base_isa::backward_range<scalar_t, acc_t>;
    default:
      return &scalar_isa::backward_range<scalar_t, acc_t>;
  }
}

}  // namespace

std::string cpu_kernel_isa(int64_t channels_per_thread) {
  return isa_name(isa_for(channels_per_thread));
}

at::Tensor ms_deform_attn_forward_cpu(const at::Tensor& value, const at::Tensor& spatial_shapes,
                                      const at::Tensor& level_start_index,
                                      const at::Tensor& sampling_locations,
                                      const at::Tensor& attention_weights,
                                      int64_t channels_per_thread) {
  const Isa isa = isa_for(channels_per_thread);
  const Sizes sz = sizes_of(value, sampling_locations);
  at::Tensor output = at::empty({sz.batch, sz.queries, sz.heads * sz.channels}, value.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, value.scalar_type(), "ms_deform_attn_forward_cpu", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const KernelArgs<scalar_t, acc_t> args{sz,
                                               value.data_ptr<scalar_t>(),
                                               spatial_shapes.data_ptr<int64_t>(),
                                               level_start_index.data_ptr<int64_t>(),
                                               sampling_locations.data_ptr<acc_t>(),
                                               attention_weights.data_ptr<acc_t>(),
                                               output.data_ptr<scalar_t>(),
                                               nullptr,
                                               nullptr,
                                               nullptr,
                                               nullptr};
        const RangeFn<scalar_t, acc_t> range = forward_range_for<scalar_t, acc_t>(isa);
        // Small chunks: one (n, q) is M * L * P * 4 taps of D channels.
        const int64_t work = sz.heads * sz.levels * sz.points * sz.channels;
        const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, work));
        at::parallel_for(0, sz.batch * sz.queries, grain,
                         [&](int64_t begin, int64_t end) { range(args, begin, end); });
      });
  return output;
}

std::vector<at::Tensor> ms_deform_attn_backward_cpu(
    const at::Tensor& value, const at::Tensor& spatial_shapes, const at::Tensor& level_start_index,
    const at::Tensor& sampling_locations, const at::Tensor& attention_weights,
    const at::Tensor& grad_output, int64_t channels_per_thread) {
  const Isa isa = isa_for(channels_per_thread);
  const Sizes sz = sizes_of(value, sampling_locations);
  // grad_value accumulates in the opmath dtype (float32 for half / bfloat16), cast at the end.
  at::Tensor grad_value = at::zeros(value.sizes(), sampling_locations.options());
  at::Tensor grad_locations = at::zeros_like(sampling_locations);
  at::Tensor grad_weights = at::zeros_like(attention_weights);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, value.scalar_type(), "ms_deform_attn_backward_cpu", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const KernelArgs<scalar_t, acc_t> args{sz,
                                               value.data_ptr<scalar_t>(),
                                               spatial_shapes.data_ptr<int64_t>(),
                                               level_start_index.data_ptr<int64_t>(),
                                               sampling_locations.data_ptr<acc_t>(),
                                               attention_weights.data_ptr<acc_t>(),
                                               nullptr,
                                               grad_output.data_ptr<scalar_t>(),
                                               grad_value.data_ptr<acc_t>(),
                                               grad_locations.data_ptr<acc_t>(),
                                               grad_weights.data_ptr<acc_t>()};
        const RangeFn<scalar_t, acc_t> range = backward_range_for<scalar_t, acc_t>(isa);
        at::parallel_for(0, sz.batch * sz.heads, 1,
                         [&](int64_t begin, int64_t end) { range(args, begin, end); });
      });
  return {grad_value.to(value.scalar_type()), grad_locations, grad_weights};
}

}  // namespace mask2former_ops
