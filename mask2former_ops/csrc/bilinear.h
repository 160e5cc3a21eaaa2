// Bilinear sampling coefficients shared by the CPU and CUDA kernels.
//
// A normalised location (x, y) in [0, 1] maps to the pixel coordinate (x * W - 0.5, y * H - 0.5)
// (pixel centres at (i + 0.5) / size, grid_sample's align_corners=False). The four neighbouring
// pixels get the usual bilinear weights; pixels outside the map read as zero (zero padding).
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define M2F_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define M2F_HOST_DEVICE inline
#endif

namespace mask2former_ops {

template <typename acc_t>
struct BilinearCorners {
  // Flattened position h * W + w of each corner inside its level, or -1 when outside the map.
  // Order: (h0, w0), (h0, w0 + 1), (h0 + 1, w0), (h0 + 1, w0 + 1).
  int64_t position[4];
  acc_t weight[4];
  // Derivatives of each weight with respect to the pixel coordinates h and w.
  acc_t dweight_dh[4];
  acc_t dweight_dw[4];
};

M2F_HOST_DEVICE float floor_value(float v) { return floorf(v); }
M2F_HOST_DEVICE double floor_value(double v) { return floor(v); }

// Fills `corners` for the normalised location (x, y) on a height x width map. Returns false when
// the location is so far outside that all four corners are outside (or x, y is NaN); then
// `corners` is left unset and the sample is zero with zero gradient.
template <typename acc_t>
M2F_HOST_DEVICE bool bilinear_corners(acc_t x, acc_t y, int64_t height, int64_t width,
                                      BilinearCorners<acc_t>& corners) {
  const acc_t h = y * static_cast<acc_t>(height) - static_cast<acc_t>(0.5);
  const acc_t w = x * static_cast<acc_t>(width) - static_cast<acc_t>(0.5);
  if (!(h > static_cast<acc_t>(-1) && w > static_cast<acc_t>(-1) &&
        h < static_cast<acc_t>(height) && w < static_cast<acc_t>(width))) {
    return false;
  }
  const acc_t h0f = floor_value(h);
  const acc_t w0f = floor_value(w);
  const int64_t h0 = static_cast<int64_t>(h0f);
  const int64_t w0 = static_cast<int64_t>(w0f);
  const acc_t lh = h - h0f, lw = w - w0f;  // distances to the top-left corner, in [0, 1)
  const acc_t hh = static_cast<acc_t>(1) - lh, hw = static_cast<acc_t>(1) - lw;

  const bool top = h0 >= 0, bottom = h0 + 1 < height;
  const bool left = w0 >= 0, right = w0 + 1 < width;
  corners.position[0] = (top && left) ? h0 * width + w0 : -1;
  corners.position[1] = (top && right) ? h0 * width + w0 + 1 : -1;
  corners.position[2] = (bottom && left) ? (h0 + 1) * width + w0 : -1;
  corners.position[3] = (bottom && right) ? (h0 + 1) * width + w0 + 1 : -1;

  corners.weight[0] = hh * hw;
  corners.weight[1] = hh * lw;
  corners.weight[2] = lh * hw;
  corners.weight[3] = lh * lw;
  corners.dweight_dh[0] = -hw;
  corners.dweight_dh[1] = -lw;
  corners.dweight_dh[2] = hw;
  corners.dweight_dh[3] = lw;
  corners.dweight_dw[0] = -hh;
  corners.dweight_dw[1] = hh;
  corners.dweight_dw[2] = -lh;
  corners.dweight_dw[3] = lh;
  return true;
}

}  // namespace mask2former_ops
