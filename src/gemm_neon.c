/* gemm_neon.c — AArch64 Advanced SIMD micro-kernel, 8 x 12: twenty-four
 * q-register accumulators.  vfmaq_f32 is a fused multiply-add with one
 * rounding, the same chain as fmaf in the scalar kernel. */
#include "gemm.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#define MR 8
#define NR 12

static void ukernel_neon(size_t kc, const float *Ap, const float *Bp, float *c, size_t ldc,
                         int load_c) {
    float32x4_t acc[MR][3];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < 3; j++)
            acc[i][j] = load_c ? vld1q_f32(c + i * ldc + 4 * j) : vdupq_n_f32(0.0f);
    for (size_t k = 0; k < kc; k++, Ap += MR, Bp += NR) {
        float32x4_t b0 = vld1q_f32(Bp), b1 = vld1q_f32(Bp + 4), b2 = vld1q_f32(Bp + 8);
        float32x4_t a0 = vld1q_f32(Ap), a1 = vld1q_f32(Ap + 4);
        acc[0][0] = vfmaq_laneq_f32(acc[0][0], b0, a0, 0); acc[0][1] = vfmaq_laneq_f32(acc[0][1], b1, a0, 0); acc[0][2] = vfmaq_laneq_f32(acc[0][2], b2, a0, 0);
        acc[1][0] = vfmaq_laneq_f32(acc[1][0], b0, a0, 1); acc[1][1] = vfmaq_laneq_f32(acc[1][1], b1, a0, 1); acc[1][2] = vfmaq_laneq_f32(acc[1][2], b2, a0, 1);
        acc[2][0] = vfmaq_laneq_f32(acc[2][0], b0, a0, 2); acc[2][1] = vfmaq_laneq_f32(acc[2][1], b1, a0, 2); acc[2][2] = vfmaq_laneq_f32(acc[2][2], b2, a0, 2);
        acc[3][0] = vfmaq_laneq_f32(acc[3][0], b0, a0, 3); acc[3][1] = vfmaq_laneq_f32(acc[3][1], b1, a0, 3); acc[3][2] = vfmaq_laneq_f32(acc[3][2], b2, a0, 3);
        acc[4][0] = vfmaq_laneq_f32(acc[4][0], b0, a1, 0); acc[4][1] = vfmaq_laneq_f32(acc[4][1], b1, a1, 0); acc[4][2] = vfmaq_laneq_f32(acc[4][2], b2, a1, 0);
        acc[5][0] = vfmaq_laneq_f32(acc[5][0], b0, a1, 1); acc[5][1] = vfmaq_laneq_f32(acc[5][1], b1, a1, 1); acc[5][2] = vfmaq_laneq_f32(acc[5][2], b2, a1, 1);
        acc[6][0] = vfmaq_laneq_f32(acc[6][0], b0, a1, 2); acc[6][1] = vfmaq_laneq_f32(acc[6][1], b1, a1, 2); acc[6][2] = vfmaq_laneq_f32(acc[6][2], b2, a1, 2);
        acc[7][0] = vfmaq_laneq_f32(acc[7][0], b0, a1, 3); acc[7][1] = vfmaq_laneq_f32(acc[7][1], b1, a1, 3); acc[7][2] = vfmaq_laneq_f32(acc[7][2], b2, a1, 3);
    }
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < 3; j++) vst1q_f32(c + i * ldc + 4 * j, acc[i][j]);
}

const fdd_gemm_kernel fdd_kernel_neon = {FDD_ISA_NEON, MR, NR, ukernel_neon, NULL};
#else
const fdd_gemm_kernel fdd_kernel_neon = {FDD_ISA_NEON, 8, 12, NULL, NULL};
#endif
