/* vp8.c — lossy WebP: a VP8 keyframe (RFC 6386) decoded to RGB exactly as
 * libwebp 1.2.4 (Pillow 9.4's decoder) gives it: libwebp's boolean decoder
 * (including when its eof flag is raised), dequantisation tables and clips,
 * integer transforms, edge rules of the intra predictors, loop filters and
 * per-segment strengths, then "fancy" chroma upsampling and the 14-bit
 * fixed-point YUV->RGB of its default RGB(A) output path.
 *
 * libwebp decodes a whole file in one call (WebPAnimDecoder -> WebPDecode):
 * any read past the end of a partition sets the reader's eof flag and the
 * decode fails with no partial image, so every eof here is an error too.
 * The data libwebp hands its VP8 decoder runs to the end of the *padded*
 * chunk, so the last token partition may read the pad byte of an odd-sized
 * chunk: callers pass that byte in len (the frame size check in the header
 * gives the same verdict either way). */
#include "image.h"

#include <string.h>

/* ------------------------------------------------------------- tables */

/* Default token probabilities (RFC 6386 13.5), [type][band][context][11]; a
 * frame starts from these, the header may replace any of them. */
static const uint8_t coef_prob0[4 * 8 * 3 * 11] = {
    128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,  128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
    128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,  253, 136, 254, 255, 228, 219, 128, 128, 128, 128, 128,
    189, 129, 242, 255, 227, 213, 255, 219, 128, 128, 128,  106, 126, 227, 252, 214, 209, 255, 255, 128, 128, 128,
      1,  98, 248, 255, 236, 226, 255, 255, 128, 128, 128,  181, 133, 238, 254, 221, 234, 255, 154, 128, 128, 128,
     78, 134, 202, 247, 198, 180, 255, 219, 128, 128, 128,    1, 185, 249, 255, 243, 255, 128, 128, 128, 128, 128,
    184, 150, 247, 255, 236, 224, 128, 128, 128, 128, 128,   77, 110, 216, 255, 236, 230, 128, 128, 128, 128, 128,
      1, 101, 251, 255, 241, 255, 128, 128, 128, 128, 128,  170, 139, 241, 252, 236, 209, 255, 255, 128, 128, 128,
     37, 116, 196, 243, 228, 255, 255, 255, 128, 128, 128,    1, 204, 254, 255, 245, 255, 128, 128, 128, 128, 128,
    207, 160, 250, 255, 238, 128, 128, 128, 128, 128, 128,  102, 103, 231, 255, 211, 171, 128, 128, 128, 128, 128,
      1, 152, 252, 255, 240, 255, 128, 128, 128, 128, 128,  177, 135, 243, 255, 234, 225, 128, 128, 128, 128, 128,
     80, 129, 211, 255, 194, 224, 128, 128, 128, 128, 128,    1,   1, 255, 128, 128, 128, 128, 128, 128, 128, 128,
    246,   1, 255, 128, 128, 128, 128, 128, 128, 128, 128,  255, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
    198,  35, 237, 223, 193, 187, 162, 160, 145, 155,  62,  131,  45, 198, 221, 172, 176, 220, 157, 252, 221,   1,
     68,  47, 146, 208, 149, 167, 221, 162, 255, 223, 128,    1, 149, 241, 255, 221, 224, 255, 255, 128, 128, 128,
    184, 141, 234, 253, 222, 220, 255, 199, 128, 128, 128,   81,  99, 181, 242, 176, 190, 249, 202, 255, 255, 128,
      1, 129, 232, 253, 214, 197, 242, 196, 255, 255, 128,   99, 121, 210, 250, 201, 198, 255, 202, 128, 128, 128,
     23,  91, 163, 242, 170, 187, 247, 210, 255, 255, 128,    1, 200, 246, 255, 234, 255, 128, 128, 128, 128, 128,
    109, 178, 241, 255, 231, 245, 255, 255, 128, 128, 128,   44, 130, 201, 253, 205, 192, 255, 255, 128, 128, 128,
      1, 132, 239, 251, 219, 209, 255, 165, 128, 128, 128,   94, 136, 225, 251, 218, 190, 255, 255, 128, 128, 128,
     22, 100, 174, 245, 186, 161, 255, 199, 128, 128, 128,    1, 182, 249, 255, 232, 235, 128, 128, 128, 128, 128,
    124, 143, 241, 255, 227, 234, 128, 128, 128, 128, 128,   35,  77, 181, 251, 193, 211, 255, 205, 128, 128, 128,
      1, 157, 247, 255, 236, 231, 255, 255, 128, 128, 128,  121, 141, 235, 255, 225, 227, 255, 255, 128, 128, 128,
     45,  99, 188, 251, 195, 217, 255, 224, 128, 128, 128,    1,   1, 251, 255, 213, 255, 128, 128, 128, 128, 128,
    203,   1, 248, 255, 255, 128, 128, 128, 128, 128, 128,  137,   1, 177, 255, 224, 255, 128, 128, 128, 128, 128,
    253,   9, 248, 251, 207, 208, 255, 192, 128, 128, 128,  175,  13, 224, 243, 193, 185, 249, 198, 255, 255, 128,
     73,  17, 171, 221, 161, 179, 236, 167, 255, 234, 128,    1,  95, 247, 253, 212, 183, 255, 255, 128, 128, 128,
    239,  90, 244, 250, 211, 209, 255, 255, 128, 128, 128,  155,  77, 195, 248, 188, 195, 255, 255, 128, 128, 128,
      1,  24, 239, 251, 218, 219, 255, 205, 128, 128, 128,  201,  51, 219, 255, 196, 186, 128, 128, 128, 128, 128,
     69,  46, 190, 239, 201, 218, 255, 228, 128, 128, 128,    1, 191, 251, 255, 255, 128, 128, 128, 128, 128, 128,
    223, 165, 249, 255, 213, 255, 128, 128, 128, 128, 128,  141, 124, 248, 255, 255, 128, 128, 128, 128, 128, 128,
      1,  16, 248, 255, 255, 128, 128, 128, 128, 128, 128,  190,  36, 230, 255, 236, 255, 128, 128, 128, 128, 128,
    149,   1, 255, 128, 128, 128, 128, 128, 128, 128, 128,    1, 226, 255, 128, 128, 128, 128, 128, 128, 128, 128,
    247, 192, 255, 128, 128, 128, 128, 128, 128, 128, 128,  240, 128, 255, 128, 128, 128, 128, 128, 128, 128, 128,
      1, 134, 252, 255, 255, 128, 128, 128, 128, 128, 128,  213,  62, 250, 255, 255, 128, 128, 128, 128, 128, 128,
     55,  93, 255, 128, 128, 128, 128, 128, 128, 128, 128,  128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
    128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,  128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
    202,  24, 213, 235, 186, 191, 220, 160, 240, 175, 255,  126,  38, 182, 232, 169, 184, 228, 174, 255, 187, 128,
     61,  46, 138, 219, 151, 178, 240, 170, 255, 216, 128,    1, 112, 230, 250, 199, 191, 247, 159, 255, 255, 128,
    166, 109, 228, 252, 211, 215, 255, 174, 128, 128, 128,   39,  77, 162, 232, 172, 180, 245, 178, 255, 255, 128,
      1,  52, 220, 246, 198, 199, 249, 220, 255, 255, 128,  124,  74, 191, 243, 183, 193, 250, 221, 255, 255, 128,
     24,  71, 130, 219, 154, 170, 243, 182, 255, 255, 128,    1, 182, 225, 249, 219, 240, 255, 224, 128, 128, 128,
    149, 150, 226, 252, 216, 205, 255, 171, 128, 128, 128,   28, 108, 170, 242, 183, 194, 254, 223, 255, 255, 128,
      1,  81, 230, 252, 204, 203, 255, 192, 128, 128, 128,  123, 102, 209, 247, 188, 196, 255, 233, 128, 128, 128,
     20,  95, 153, 243, 164, 173, 255, 203, 128, 128, 128,    1, 222, 248, 255, 216, 213, 128, 128, 128, 128, 128,
    168, 175, 246, 252, 235, 205, 255, 255, 128, 128, 128,   47, 116, 215, 255, 211, 212, 255, 255, 128, 128, 128,
      1, 121, 236, 253, 212, 214, 255, 255, 128, 128, 128,  141,  84, 213, 252, 201, 202, 255, 219, 128, 128, 128,
     42,  80, 160, 240, 162, 185, 255, 205, 128, 128, 128,    1,   1, 255, 128, 128, 128, 128, 128, 128, 128, 128,
    244,   1, 255, 128, 128, 128, 128, 128, 128, 128, 128,  238,   1, 255, 128, 128, 128, 128, 128, 128, 128, 128,
};

/* Probability that the header replaces each token probability (13.4). */
static const uint8_t coef_update_prob[4 * 8 * 3 * 11] = {
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,  176, 246, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    223, 241, 252, 255, 255, 255, 255, 255, 255, 255, 255,  249, 253, 253, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 244, 252, 255, 255, 255, 255, 255, 255, 255, 255,  234, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255,
    253, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,  255, 246, 254, 255, 255, 255, 255, 255, 255, 255, 255,
    239, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255,  254, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 248, 254, 255, 255, 255, 255, 255, 255, 255, 255,  251, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,  255, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255,
    251, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255,  254, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 254, 253, 255, 254, 255, 255, 255, 255, 255, 255,  250, 255, 254, 255, 254, 255, 255, 255, 255, 255, 255,
    254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    217, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,  225, 252, 241, 253, 255, 255, 254, 255, 255, 255, 255,
    234, 250, 241, 250, 253, 255, 253, 254, 255, 255, 255,  255, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    223, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255,  238, 253, 254, 254, 255, 255, 255, 255, 255, 255, 255,
    255, 248, 254, 255, 255, 255, 255, 255, 255, 255, 255,  249, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,  255, 253, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    247, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255,  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255,  252, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,  255, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255,
    253, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 254, 253, 255, 255, 255, 255, 255, 255, 255, 255,  250, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    186, 251, 250, 255, 255, 255, 255, 255, 255, 255, 255,  234, 251, 244, 254, 255, 255, 255, 255, 255, 255, 255,
    251, 251, 243, 253, 254, 255, 254, 255, 255, 255, 255,  255, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255,
    236, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255,  251, 253, 253, 254, 254, 255, 255, 255, 255, 255, 255,
    255, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255,  254, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,  255, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    254, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255,  254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,  254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    248, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,  250, 254, 252, 254, 255, 255, 255, 255, 255, 255, 255,
    248, 254, 249, 253, 255, 255, 255, 255, 255, 255, 255,  255, 253, 253, 255, 255, 255, 255, 255, 255, 255, 255,
    246, 253, 253, 255, 255, 255, 255, 255, 255, 255, 255,  252, 254, 251, 254, 254, 255, 255, 255, 255, 255, 255,
    255, 254, 252, 255, 255, 255, 255, 255, 255, 255, 255,  248, 254, 253, 255, 255, 255, 255, 255, 255, 255, 255,
    253, 255, 254, 254, 255, 255, 255, 255, 255, 255, 255,  255, 251, 254, 255, 255, 255, 255, 255, 255, 255, 255,
    245, 251, 254, 255, 255, 255, 255, 255, 255, 255, 255,  253, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 251, 253, 255, 255, 255, 255, 255, 255, 255, 255,  252, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255,  255, 252, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    249, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255,  255, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 253, 255, 255, 255, 255, 255, 255, 255, 255,  250, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
};

/* Keyframe 4x4 mode tree probabilities by [above mode][left mode] (11.5). */
static const uint8_t bmode_prob[10 * 10 * 9] = {
    231, 120,  48,  89, 115, 113, 120, 152, 112,  152, 179,  64, 126, 170, 118,  46,  70,  95,
    175,  69, 143,  80,  85,  82,  72, 155, 103,   56,  58,  10, 171, 218, 189,  17,  13, 152,
    114,  26,  17, 163,  44, 195,  21,  10, 173,  121,  24,  80, 195,  26,  62,  44,  64,  85,
    144,  71,  10,  38, 171, 213, 144,  34,  26,  170,  46,  55,  19, 136, 160,  33, 206,  71,
     63,  20,   8, 114, 114, 208,  12,   9, 226,   81,  40,  11,  96, 182,  84,  29,  16,  36,
    134, 183,  89, 137,  98, 101, 106, 165, 148,   72, 187, 100, 130, 157, 111,  32,  75,  80,
     66, 102, 167,  99,  74,  62,  40, 234, 128,   41,  53,   9, 178, 241, 141,  26,   8, 107,
     74,  43,  26, 146,  73, 166,  49,  23, 157,   65,  38, 105, 160,  51,  52,  31, 115, 128,
    104,  79,  12,  27, 217, 255,  87,  17,   7,   87,  68,  71,  44, 114,  51,  15, 186,  23,
     47,  41,  14, 110, 182, 183,  21,  17, 194,   66,  45,  25, 102, 197, 189,  23,  18,  22,
     88,  88, 147, 150,  42,  46,  45, 196, 205,   43,  97, 183, 117,  85,  38,  35, 179,  61,
     39,  53, 200,  87,  26,  21,  43, 232, 171,   56,  34,  51, 104, 114, 102,  29,  93,  77,
     39,  28,  85, 171,  58, 165,  90,  98,  64,   34,  22, 116, 206,  23,  34,  43, 166,  73,
    107,  54,  32,  26,  51,   1,  81,  43,  31,   68,  25, 106,  22,  64, 171,  36, 225, 114,
     34,  19,  21, 102, 132, 188,  16,  76, 124,   62,  18,  78,  95,  85,  57,  50,  48,  51,
    193, 101,  35, 159, 215, 111,  89,  46, 111,   60, 148,  31, 172, 219, 228,  21,  18, 111,
    112, 113,  77,  85, 179, 255,  38, 120, 114,   40,  42,   1, 196, 245, 209,  10,  25, 109,
     88,  43,  29, 140, 166, 213,  37,  43, 154,   61,  63,  30, 155,  67,  45,  68,   1, 209,
    100,  80,   8,  43, 154,   1,  51,  26,  71,  142,  78,  78,  16, 255, 128,  34, 197, 171,
     41,  40,   5, 102, 211, 183,   4,   1, 221,   51,  50,  17, 168, 209, 192,  23,  25,  82,
    138,  31,  36, 171,  27, 166,  38,  44, 229,   67,  87,  58, 169,  82, 115,  26,  59, 179,
     63,  59,  90, 180,  59, 166,  93,  73, 154,   40,  40,  21, 116, 143, 209,  34,  39, 175,
     47,  15,  16, 183,  34, 223,  49,  45, 183,   46,  17,  33, 183,   6,  98,  15,  32, 183,
     57,  46,  22,  24, 128,   1,  54,  17,  37,   65,  32,  73, 115,  28, 128,  23, 128, 205,
     40,   3,   9, 115,  51, 192,  18,   6, 223,   87,  37,   9, 115,  59,  77,  64,  21,  47,
    104,  55,  44, 218,   9,  54,  53, 130, 226,   64,  90,  70, 205,  40,  41,  23,  26,  57,
     54,  57, 112, 184,   5,  41,  38, 166, 213,   30,  34,  26, 133, 152, 116,  10,  32, 134,
     39,  19,  53, 221,  26, 114,  32,  73, 255,   31,   9,  65, 234,   2,  15,   1, 118,  73,
     75,  32,  12,  51, 192, 255, 160,  43,  51,   88,  31,  35,  67, 102,  85,  55, 186,  85,
     56,  21,  23, 111,  59, 205,  45,  37, 192,   55,  38,  70, 124,  73, 102,   1,  34,  98,
    125,  98,  42,  88, 104,  85, 117, 175,  82,   95,  84,  53,  89, 128, 100, 113, 101,  45,
     75,  79, 123,  47,  51, 128,  81, 171,   1,   57,  17,   5,  71, 102,  57,  53,  41,  49,
     38,  33,  13, 121,  57,  73,  26,   1,  85,   41,  10,  67, 138,  77, 110,  90,  47, 114,
    115,  21,   2,  10, 102, 255, 166,  23,   6,  101,  29,  16,  10,  85, 128, 101, 196,  26,
     57,  18,  10, 102, 102, 213,  34,  20,  43,  117,  20,  15,  36, 163, 128,  68,   1,  26,
    102,  61,  71,  37,  34,  53,  31, 243, 192,   69,  60,  71,  38,  73, 119,  28, 222,  37,
     68,  45, 128,  34,   1,  47,  11, 245, 171,   62,  17,  19,  70, 146,  85,  55,  62,  70,
     37,  43,  37, 154, 100, 163,  85, 160,   1,   63,   9,  92, 136,  28,  64,  32, 201,  85,
     75,  15,   9,   9,  64, 255, 184, 119,  16,   86,   6,  28,   5,  64, 255,  25, 248,   1,
     56,   8,  17, 132, 137, 255,  55, 116, 128,   58,  15,  20,  82, 135,  57,  26, 121,  40,
    164,  50,  31, 137, 154, 133,  25,  35, 218,   51, 103,  44, 131, 131, 123,  31,   6, 158,
     86,  40,  64, 135, 148, 224,  45, 183, 128,   22,  26,  17, 131, 240, 154,  14,   1, 209,
     45,  16,  21,  91,  64, 222,   7,   1, 197,   56,  21,  39, 155,  60, 138,  23, 102, 213,
     83,  12,  13,  54, 192, 255,  68,  47,  28,   85,  26,  85,  85, 128, 128,  32, 146, 171,
     18,  11,   7,  63, 144, 171,   4,   4, 246,   35,  27,  10, 146, 174, 171,  12,  26, 128,
    190,  80,  35,  99, 180,  80, 126,  54,  45,   85, 126,  47,  87, 176,  51,  41,  20,  32,
    101,  75, 128, 139, 118, 146, 116, 128,  85,   56,  41,  15, 176, 236,  85,  37,   9,  62,
     71,  30,  17, 119, 118, 255,  17,  18, 138,  101,  38,  60, 138,  55,  70,  43,  26, 142,
    146,  36,  19,  30, 171, 255,  97,  27,  20,  138,  45,  61,  62, 219,   1,  81, 188,  64,
     32,  41,  20, 117, 151, 142,  20,  21, 163,  112,  19,  12,  61, 195, 128,  48,   4,  24,
};
/* 7 - floor(log2(r)) for r in [1, 127]: the renormalising shift (0 for r >= 128). */
static const uint8_t norm_shift[128] = {
    0, 7, 6, 6, 5, 5, 5, 5, 4, 4, 4, 4, 4, 4, 4, 4, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

static const uint8_t dc_table[128] = {
    4,   5,   6,   7,   8,   9,   10,  10,  11,  12,  13,  14,  15,  16,  17,  17,
    18,  19,  20,  20,  21,  21,  22,  22,  23,  23,  24,  25,  25,  26,  27,  28,
    29,  30,  31,  32,  33,  34,  35,  36,  37,  37,  38,  39,  40,  41,  42,  43,
    44,  45,  46,  46,  47,  48,  49,  50,  51,  52,  53,  54,  55,  56,  57,  58,
    59,  60,  61,  62,  63,  64,  65,  66,  67,  68,  69,  70,  71,  72,  73,  74,
    75,  76,  76,  77,  78,  79,  80,  81,  82,  83,  84,  85,  86,  87,  88,  89,
    91,  93,  95,  96,  98,  100, 101, 102, 104, 106, 108, 110, 112, 114, 116, 118,
    122, 124, 126, 128, 130, 132, 134, 136, 138, 140, 143, 145, 148, 151, 154, 157};

static const uint16_t ac_table[128] = {
    4,   5,   6,   7,   8,   9,   10,  11,  12,  13,  14,  15,  16,  17,  18,  19,
    20,  21,  22,  23,  24,  25,  26,  27,  28,  29,  30,  31,  32,  33,  34,  35,
    36,  37,  38,  39,  40,  41,  42,  43,  44,  45,  46,  47,  48,  49,  50,  51,
    52,  53,  54,  55,  56,  57,  58,  60,  62,  64,  66,  68,  70,  72,  74,  76,
    78,  80,  82,  84,  86,  88,  90,  92,  94,  96,  98,  100, 102, 104, 106, 108,
    110, 112, 114, 116, 119, 122, 125, 128, 131, 134, 137, 140, 143, 146, 149, 152,
    155, 158, 161, 164, 167, 170, 173, 177, 181, 185, 189, 193, 197, 201, 205, 209,
    213, 217, 221, 225, 229, 234, 239, 245, 249, 254, 259, 264, 269, 274, 279, 284};

/* Extra bits of the DCT_CAT3..6 tokens, 0-terminated. */
static const uint8_t cat3[] = {173, 148, 140, 0};
static const uint8_t cat4[] = {176, 155, 140, 135, 0};
static const uint8_t cat5[] = {180, 157, 141, 134, 130, 0};
static const uint8_t cat6[] = {254, 254, 243, 230, 196, 177, 153, 140, 133, 130, 129, 0};
static const uint8_t *const cat3456[4] = {cat3, cat4, cat5, cat6};

/* Token index -> raster position in the 4x4 block. */
static const uint8_t zigzag[16] = {0, 1, 4, 8, 5, 2, 3, 6, 9, 12, 13, 10, 7, 11, 14, 15};
/* Token index -> probability band; the 17th entry is a sentinel. */
static const uint8_t bands[17] = {0, 1, 2, 3, 6, 4, 5, 6, 6, 6, 6, 6, 6, 6, 6, 7, 0};

/* Intra modes: 4x4 ones B_DC..B_HU are 0..9; the 16x16 / chroma DC, TM, V,
 * H modes share the numbers of B_DC, B_TM, B_VE, B_HE (they are the context
 * of neighbouring 4x4 modes); 4..6 stand for DC without top / left / both. */
enum { B_DC, B_TM, B_VE, B_HE, B_RD, B_VR, B_LD, B_VL, B_HD, B_HU };
enum { DC_NOTOP = 4, DC_NOLEFT = 5, DC_NOTOPLEFT = 6 };

/* ---------------------------------------------------- boolean decoder */

/* libwebp's reader with 56-bit refills on a 64-bit host.  The eof flag is
 * raised by the first refill with no byte left (8 zero bits are shifted in);
 * when that happens does not depend on the refill width. */
typedef struct {
    const uint8_t *buf, *end, *max; /* max: last position a 7-byte load may start + 1 */
    uint64_t value;
    uint32_t range; /* the coder's range minus 1 */
    int bits;       /* bits of value below the current window; < 0: refill */
    int eof;
} bool_dec;

static void br_load(bool_dec *br) {
    if (br->buf < br->max) {
        uint64_t v = 0;
        for (int i = 0; i < 7; i++) v = (v << 8) | br->buf[i];
        br->buf += 7;
        br->value = (br->value << 56) | v;
        br->bits += 56;
    } else if (br->buf < br->end) {
        br->value = (br->value << 8) | *br->buf++;
        br->bits += 8;
    } else if (!br->eof) {
        br->value <<= 8;
        br->bits += 8;
        br->eof = 1;
    } else {
        br->bits = 0; /* libwebp's guard against shifting by a negative count */
    }
}

static void br_init(bool_dec *br, const uint8_t *p, size_t n) {
    br->range = 254;
    br->value = 0;
    br->bits = -8;
    br->eof = 0;
    br->buf = p;
    br->end = p + n;
    br->max = n >= 8 ? p + n - 7 : p;
    br_load(br);
}

static inline int br_bit(bool_dec *br, int prob) {
    uint32_t range = br->range;
    if (br->bits < 0) br_load(br);
    int pos = br->bits;
    uint32_t split = (range * (uint32_t)prob) >> 8;
    uint32_t value = (uint32_t)(br->value >> pos);
    int bit = value > split;
    if (bit) {
        range -= split;
        br->value -= (uint64_t)(split + 1) << pos;
    } else {
        range = split + 1;
    }
    if (range < 128) {
        int shift = norm_shift[range];
        range <<= shift;
        br->bits -= shift;
    }
    br->range = range - 1;
    return bit;
}

/* libwebp's VP8GetSigned: a bit at probability 1/2 giving +v or -v. */
static inline int br_signed(bool_dec *br, int v) {
    if (br->bits < 0) br_load(br);
    int pos = br->bits;
    uint32_t split = br->range >> 1;
    uint32_t value = (uint32_t)(br->value >> pos);
    int32_t mask = (int32_t)(split - value) >> 31; /* -1 when value > split */
    br->bits -= 1;
    br->range += (uint32_t)mask;
    br->range |= 1;
    br->value -= (uint64_t)((split + 1) & (uint32_t)mask) << pos;
    return (v ^ mask) - mask;
}

static uint32_t br_value(bool_dec *br, int nbits) {
    uint32_t v = 0;
    while (nbits-- > 0) v |= (uint32_t)br_bit(br, 0x80) << nbits;
    return v;
}

static int br_signed_value(bool_dec *br, int nbits) {
    int v = (int)br_value(br, nbits);
    return br_bit(br, 0x80) ? -v : v;
}

/* ------------------------------------------------------------ decoder */

/* Two's complement wrap to 16 bits: SSE2 lanes, and libwebp's int16_t stores. */
static inline int wrap16(int v) { return (int)(((uint32_t)v + 32768u) & 0xffffu) - 32768; }

#define BPS 32 /* stride of the work area, libwebp's layout */
#define Y_OFF (BPS * 1 + 8)
#define U_OFF (Y_OFF + BPS * 16 + BPS)
#define V_OFF (U_OFF + 16)
#define WORK_SIZE (BPS * 17 + BPS * 9)

typedef struct {
    int y1[2], y2[2], uv[2]; /* DC and AC dequantisation factors */
} quant;

typedef struct {
    uint8_t limit, ilevel, inner, hev; /* limit 0: not filtered */
} finfo;

typedef struct {
    uint8_t segment, skip, is_i4x4, uvmode;
    uint8_t imodes[16]; /* imodes[0] is the 16x16 mode when !is_i4x4 */
} mb_mode;

typedef struct {
    uint8_t nz;    /* bits 0-3: Y sub-blocks, 4-5: U, 6-7: V (libwebp's layout) */
    uint8_t nz_dc; /* the Y2 block had a coefficient */
} nz_ctx;

typedef struct {
    const char *name;
    int width, height, mb_w, mb_h;
    bool_dec br;           /* partition 0: modes */
    bool_dec parts[8];     /* token partitions */
    int num_parts;
    /* segment and filter headers */
    int use_segment, update_map, absolute_delta;
    int seg_quant[4], seg_filter[4];
    uint8_t seg_probs[3];
    int filter_type; /* 0 none, 1 simple, 2 normal */
    int simple, level, sharpness, use_lf_delta;
    int ref_lf_delta[4], mode_lf_delta[4];
    quant dqm[4];
    finfo fstrengths[4][2];
    uint8_t coef[4][8][3][11];
    uint8_t (*band_ptr[4][17])[11]; /* [type][token index] -> probabilities by context */
    int use_skip_proba, skip_p;
    /* per-row state */
    uint8_t *intra_t;   /* 4 * mb_w: 4x4 modes above */
    uint8_t intra_l[4]; /* 4x4 modes to the left */
    mb_mode *modes;     /* mb_w */
    nz_ctx *nz_top;     /* mb_w */
    nz_ctx nz_left;
    finfo *fi;          /* mb_w: filter parameters of the current row */
    uint8_t *top_y, *top_u, *top_v; /* unfiltered bottom rows of the MB row above */
    uint8_t *work;      /* WORK_SIZE */
    int16_t coeffs[384];
    uint32_t non_zero_y, non_zero_uv;
    /* whole planes, padded to whole macroblocks */
    uint8_t *y, *u, *v;
    size_t ystride, uvstride;
} vp8_dec;

static int clip(int v, int m) { return v < 0 ? 0 : v > m ? m : v; }

static void parse_quant(vp8_dec *d) {
    bool_dec *br = &d->br;
    int base_q0 = (int)br_value(br, 7);
    int dqy1_dc = br_bit(br, 0x80) ? br_signed_value(br, 4) : 0;
    int dqy2_dc = br_bit(br, 0x80) ? br_signed_value(br, 4) : 0;
    int dqy2_ac = br_bit(br, 0x80) ? br_signed_value(br, 4) : 0;
    int dquv_dc = br_bit(br, 0x80) ? br_signed_value(br, 4) : 0;
    int dquv_ac = br_bit(br, 0x80) ? br_signed_value(br, 4) : 0;
    for (int i = 0; i < 4; i++) {
        int q;
        if (d->use_segment) {
            q = d->seg_quant[i];
            if (!d->absolute_delta) q += base_q0;
        } else if (i > 0) {
            d->dqm[i] = d->dqm[0];
            continue;
        } else {
            q = base_q0;
        }
        quant *m = &d->dqm[i];
        m->y1[0] = dc_table[clip(q + dqy1_dc, 127)];
        m->y1[1] = ac_table[clip(q, 127)];
        m->y2[0] = dc_table[clip(q + dqy2_dc, 127)] * 2;
        /* x * 155 / 100 as libwebp computes it */
        m->y2[1] = (ac_table[clip(q + dqy2_ac, 127)] * 101581) >> 16;
        if (m->y2[1] < 8) m->y2[1] = 8;
        m->uv[0] = dc_table[clip(q + dquv_dc, 117)];
        m->uv[1] = ac_table[clip(q + dquv_ac, 127)];
    }
}

static void parse_proba(vp8_dec *d) {
    bool_dec *br = &d->br;
    for (int t = 0; t < 4; t++) {
        for (int b = 0; b < 8; b++)
            for (int c = 0; c < 3; c++)
                for (int p = 0; p < 11; p++) {
                    int i = ((t * 8 + b) * 3 + c) * 11 + p;
                    d->coef[t][b][c][p] = br_bit(br, coef_update_prob[i]) ? (uint8_t)br_value(br, 8)
                                                                          : coef_prob0[i];
                }
        for (int n = 0; n < 17; n++) d->band_ptr[t][n] = d->coef[t][bands[n]];
    }
    d->use_skip_proba = br_bit(br, 0x80);
    if (d->use_skip_proba) d->skip_p = (int)br_value(br, 8);
}

static void precompute_filter_strengths(vp8_dec *d) {
    if (d->filter_type == 0) return;
    for (int s = 0; s < 4; s++) {
        int base = d->level;
        if (d->use_segment) {
            base = d->seg_filter[s];
            if (!d->absolute_delta) base += d->level;
        }
        for (int i4 = 0; i4 <= 1; i4++) {
            finfo *f = &d->fstrengths[s][i4];
            int level = base;
            if (d->use_lf_delta) {
                level += d->ref_lf_delta[0]; /* intra frame */
                if (i4) level += d->mode_lf_delta[0]; /* B_PRED */
            }
            level = clip(level, 63);
            if (level > 0) {
                int ilevel = level;
                if (d->sharpness > 0) {
                    ilevel >>= d->sharpness > 4 ? 2 : 1;
                    if (ilevel > 9 - d->sharpness) ilevel = 9 - d->sharpness;
                }
                if (ilevel < 1) ilevel = 1;
                f->ilevel = (uint8_t)ilevel;
                f->limit = (uint8_t)(2 * level + ilevel);
                f->hev = level >= 40 ? 2 : level >= 15 ? 1 : 0;
            } else {
                f->limit = 0;
            }
            f->inner = (uint8_t)i4;
        }
    }
}

/* Frame tag, picture header, segment / filter headers, partitions,
 * quantisers and token probabilities (RFC 6386 9.1-9.11).  The checks and
 * their order are libwebp's (VP8GetInfo, then VP8GetHeaders). */
static fdd_status parse_headers(vp8_dec *d, const uint8_t *data, size_t len, fdd_error *err) {
    const char *name = d->name;
    if (len < 10) return fdd_fail(err, FDD_E_FORMAT, "%s: truncated VP8 frame header", name);
    uint32_t bits = (uint32_t)data[0] | ((uint32_t)data[1] << 8) | ((uint32_t)data[2] << 16);
    if (data[3] != 0x9d || data[4] != 0x01 || data[5] != 0x2a)
        return fdd_fail(err, FDD_E_FORMAT, "%s: bad VP8 start code", name);
    if (bits & 1)
        return fdd_fail(err, FDD_E_FORMAT, "%s: VP8 frame is not a keyframe", name);
    if (((bits >> 1) & 7) > 3)
        return fdd_fail(err, FDD_E_FORMAT, "%s: unknown VP8 profile %u", name, (bits >> 1) & 7);
    if (!((bits >> 4) & 1))
        return fdd_fail(err, FDD_E_FORMAT, "%s: VP8 frame is not displayable", name);
    size_t part0 = bits >> 5;
    if (part0 >= len) return fdd_fail(err, FDD_E_FORMAT, "%s: bad VP8 partition 0 size", name);
    int w = ((data[7] << 8) | data[6]) & 0x3fff;
    int h = ((data[9] << 8) | data[8]) & 0x3fff;
    if (w == 0 || h == 0) return fdd_fail(err, FDD_E_FORMAT, "%s: VP8 frame of zero size", name);
    if (w != d->width || h != d->height)
        return fdd_fail(err, FDD_E_FORMAT, "%s: VP8 frame is %dx%d but the container says %dx%d",
                        name, w, h, d->width, d->height);
    d->mb_w = (w + 15) >> 4;
    d->mb_h = (h + 15) >> 4;
    data += 10;
    len -= 10;
    if (part0 > len) return fdd_fail(err, FDD_E_FORMAT, "%s: bad VP8 partition 0 size", name);
    bool_dec *br = &d->br;
    br_init(br, data, part0);
    data += part0;
    len -= part0;

    br_bit(br, 0x80); /* colour space: ignored by libwebp */
    br_bit(br, 0x80); /* clamping type: libwebp always clamps */
    d->absolute_delta = 1;
    memset(d->seg_probs, 255, sizeof d->seg_probs);
    d->use_segment = br_bit(br, 0x80);
    if (d->use_segment) {
        d->update_map = br_bit(br, 0x80);
        if (br_bit(br, 0x80)) {
            d->absolute_delta = br_bit(br, 0x80);
            for (int s = 0; s < 4; s++) d->seg_quant[s] = br_bit(br, 0x80) ? br_signed_value(br, 7) : 0;
            for (int s = 0; s < 4; s++) d->seg_filter[s] = br_bit(br, 0x80) ? br_signed_value(br, 6) : 0;
        }
        if (d->update_map)
            for (int s = 0; s < 3; s++) d->seg_probs[s] = br_bit(br, 0x80) ? (uint8_t)br_value(br, 8) : 255;
    }
    if (br->eof) return fdd_fail(err, FDD_E_FORMAT, "%s: cannot parse VP8 segment header", name);

    d->simple = br_bit(br, 0x80);
    d->level = (int)br_value(br, 6);
    d->sharpness = (int)br_value(br, 3);
    d->use_lf_delta = br_bit(br, 0x80);
    if (d->use_lf_delta && br_bit(br, 0x80)) {
        for (int i = 0; i < 4; i++)
            if (br_bit(br, 0x80)) d->ref_lf_delta[i] = br_signed_value(br, 6);
        for (int i = 0; i < 4; i++)
            if (br_bit(br, 0x80)) d->mode_lf_delta[i] = br_signed_value(br, 6);
    }
    d->filter_type = d->level == 0 ? 0 : d->simple ? 1 : 2;
    if (br->eof) return fdd_fail(err, FDD_E_FORMAT, "%s: cannot parse VP8 filter header", name);

    /* Token partitions: sizes of all but the last, then the data; a size
     * running past the chunk is cut short as libwebp does, the last one
     * must not be empty. */
    d->num_parts = 1 << br_value(br, 2);
    size_t last = (size_t)d->num_parts - 1;
    if (len < 3 * last) return fdd_fail(err, FDD_E_FORMAT, "%s: cannot parse VP8 partitions", name);
    const uint8_t *sz = data, *start = data + 3 * last;
    size_t left = len - 3 * last;
    for (size_t p = 0; p < last; p++) {
        size_t psize = (size_t)sz[0] | ((size_t)sz[1] << 8) | ((size_t)sz[2] << 16);
        if (psize > left) psize = left;
        br_init(&d->parts[p], start, psize);
        start += psize;
        left -= psize;
        sz += 3;
    }
    br_init(&d->parts[last], start, left);
    if (left == 0) return fdd_fail(err, FDD_E_FORMAT, "%s: cannot parse VP8 partitions", name);

    parse_quant(d);
    br_bit(br, 0x80); /* refresh_entropy_probs: irrelevant for a single frame */
    parse_proba(d);
    return FDD_OK;
}

/* Modes of one macroblock from partition 0 (RFC 6386 11.2-11.4, 19.3). */
static void parse_intra_mode(vp8_dec *d, int mb_x) {
    bool_dec *br = &d->br;
    uint8_t *top = d->intra_t + 4 * mb_x, *left = d->intra_l;
    mb_mode *m = &d->modes[mb_x];
    if (d->update_map)
        m->segment = (uint8_t)(!br_bit(br, d->seg_probs[0]) ? br_bit(br, d->seg_probs[1])
                                                            : br_bit(br, d->seg_probs[2]) + 2);
    else
        m->segment = 0;
    m->skip = d->use_skip_proba ? (uint8_t)br_bit(br, d->skip_p) : 0;
    m->is_i4x4 = !br_bit(br, 145);
    if (!m->is_i4x4) {
        int ymode = br_bit(br, 156) ? (br_bit(br, 128) ? B_TM : B_HE) : (br_bit(br, 163) ? B_VE : B_DC);
        m->imodes[0] = (uint8_t)ymode;
        memset(top, ymode, 4);
        memset(left, ymode, 4);
    } else {
        uint8_t *modes = m->imodes;
        for (int y = 0; y < 4; y++) {
            int ymode = left[y];
            for (int x = 0; x < 4; x++) {
                const uint8_t *p = bmode_prob + (top[x] * 10 + ymode) * 9;
                ymode = !br_bit(br, p[0])   ? B_DC
                        : !br_bit(br, p[1]) ? B_TM
                        : !br_bit(br, p[2]) ? B_VE
                        : !br_bit(br, p[3])
                            ? (!br_bit(br, p[4]) ? B_HE : !br_bit(br, p[5]) ? B_RD : B_VR)
                            : (!br_bit(br, p[6])   ? B_LD
                               : !br_bit(br, p[7]) ? B_VL
                               : !br_bit(br, p[8]) ? B_HD
                                                   : B_HU);
                top[x] = (uint8_t)ymode;
            }
            memcpy(modes, top, 4);
            modes += 4;
            left[y] = (uint8_t)ymode;
        }
    }
    m->uvmode = !br_bit(br, 142) ? B_DC : !br_bit(br, 114) ? B_VE : br_bit(br, 183) ? B_TM : B_HE;
}

/* DCT_CAT1..6 and the 2..4 literals (RFC 6386 13.2). */
static int large_value(bool_dec *br, const uint8_t *p) {
    int v;
    if (!br_bit(br, p[3])) {
        if (!br_bit(br, p[4])) v = 2;
        else v = 3 + br_bit(br, p[5]);
    } else if (!br_bit(br, p[6])) {
        if (!br_bit(br, p[7])) {
            v = 5 + br_bit(br, 159);
        } else {
            v = 7 + 2 * br_bit(br, 165);
            v += br_bit(br, 145);
        }
    } else {
        int bit1 = br_bit(br, p[8]);
        int bit0 = br_bit(br, p[9 + bit1]);
        int cat = 2 * bit1 + bit0;
        v = 0;
        for (const uint8_t *tab = cat3456[cat]; *tab; tab++) v += v + br_bit(br, *tab);
        v += 3 + (8 << cat);
    }
    return v;
}

/* Tokens of one 4x4 block from index n on, dequantised into out (raster
 * order).  Returns the index after the last non-zero token (libwebp's
 * GetCoeffs, whose value drives the contexts and the transform choice). */
static int get_coeffs(bool_dec *br, uint8_t (*const *prob)[11], int ctx, const int dq[2],
                      int n, int16_t *out) {
    const uint8_t *p = prob[n][ctx];
    for (; n < 16; n++) {
        if (!br_bit(br, p[0])) return n; /* end of block */
        while (!br_bit(br, p[1])) {      /* zero token */
            p = prob[++n][0];
            if (n == 16) return 16;
        }
        uint8_t (*p_ctx)[11] = prob[n + 1];
        int v;
        if (!br_bit(br, p[2])) {
            v = 1;
            p = p_ctx[1];
        } else {
            v = large_value(br, p);
            p = p_ctx[2];
        }
        out[zigzag[n]] = (int16_t)wrap16(br_signed(br, v) * dq[n > 0]);
    }
    return 16;
}

/* libwebp's inverse Walsh-Hadamard transform: the 16 Y DCs into out[16 * i]. */
static void transform_wht(const int16_t *in, int16_t *out) {
    int tmp[16];
    for (int i = 0; i < 4; i++) {
        int a0 = in[0 + i] + in[12 + i], a1 = in[4 + i] + in[8 + i];
        int a2 = in[4 + i] - in[8 + i], a3 = in[0 + i] - in[12 + i];
        tmp[0 + i] = a0 + a1;
        tmp[8 + i] = a0 - a1;
        tmp[4 + i] = a3 + a2;
        tmp[12 + i] = a3 - a2;
    }
    for (int i = 0; i < 4; i++) {
        int dc = tmp[0 + i * 4] + 3;
        int a0 = dc + tmp[3 + i * 4], a1 = tmp[1 + i * 4] + tmp[2 + i * 4];
        int a2 = tmp[1 + i * 4] - tmp[2 + i * 4], a3 = dc - tmp[3 + i * 4];
        out[0] = (int16_t)wrap16((a0 + a1) >> 3);
        out[16] = (int16_t)wrap16((a3 + a2) >> 3);
        out[32] = (int16_t)wrap16((a0 - a1) >> 3);
        out[48] = (int16_t)wrap16((a3 - a2) >> 3);
        out += 64;
    }
}

/* 2 bits per block: 3 = full transform, 2 = only coefficients 0, 1, 4,
 * 1 = DC only, 0 = nothing (libwebp's NzCodeBits). */
static uint32_t nz_code_bits(uint32_t nz_coeffs, int nz, int dc_nz) {
    nz_coeffs <<= 2;
    nz_coeffs |= (nz > 3) ? 3 : (nz > 1) ? 2 : (uint32_t)dc_nz;
    return nz_coeffs;
}

/* Residuals of the macroblock at mb_x into d->coeffs; returns 1 when all
 * are zero (the MB then gets no inner-edge filtering). */
static int parse_residuals(vp8_dec *d, int mb_x, bool_dec *tbr) {
    const mb_mode *m = &d->modes[mb_x];
    const quant *q = &d->dqm[m->segment];
    nz_ctx *mb = &d->nz_top[mb_x], *left = &d->nz_left;
    int16_t *dst = d->coeffs;
    uint8_t (*const *ac_proba)[11];
    uint32_t non_zero_y = 0, non_zero_uv = 0, out_t_nz, out_l_nz;
    int first;

    memset(dst, 0, 384 * sizeof *dst);
    if (!m->is_i4x4) {
        int16_t dc[16] = {0};
        int ctx = mb->nz_dc + left->nz_dc;
        int nz = get_coeffs(tbr, d->band_ptr[1], ctx, q->y2, 0, dc);
        mb->nz_dc = left->nz_dc = (uint8_t)(nz > 0);
        if (nz > 1) {
            transform_wht(dc, dst);
        } else { /* DC only: the transform reduces to this */
            int dc0 = (dc[0] + 3) >> 3;
            for (int i = 0; i < 16 * 16; i += 16) dst[i] = (int16_t)dc0;
        }
        first = 1;
        ac_proba = d->band_ptr[0];
    } else {
        first = 0;
        ac_proba = d->band_ptr[3];
    }

    uint32_t tnz = mb->nz & 0x0f, lnz = left->nz & 0x0f;
    for (int y = 0; y < 4; y++) {
        uint32_t l = lnz & 1, nz_coeffs = 0;
        for (int x = 0; x < 4; x++) {
            int ctx = (int)(l + (tnz & 1));
            int nz = get_coeffs(tbr, ac_proba, ctx, q->y1, first, dst);
            l = nz > first;
            tnz = (tnz >> 1) | (l << 7);
            nz_coeffs = nz_code_bits(nz_coeffs, nz, dst[0] != 0);
            dst += 16;
        }
        tnz >>= 4;
        lnz = (lnz >> 1) | (l << 7);
        non_zero_y = (non_zero_y << 8) | nz_coeffs;
    }
    out_t_nz = tnz;
    out_l_nz = lnz >> 4;

    for (int ch = 0; ch < 4; ch += 2) {
        uint32_t nz_coeffs = 0;
        tnz = (uint32_t)mb->nz >> (4 + ch);
        lnz = (uint32_t)left->nz >> (4 + ch);
        for (int y = 0; y < 2; y++) {
            uint32_t l = lnz & 1;
            for (int x = 0; x < 2; x++) {
                int ctx = (int)(l + (tnz & 1));
                int nz = get_coeffs(tbr, d->band_ptr[2], ctx, q->uv, 0, dst);
                l = nz > 0;
                tnz = (tnz >> 1) | (l << 3);
                nz_coeffs = nz_code_bits(nz_coeffs, nz, dst[0] != 0);
                dst += 16;
            }
            tnz >>= 2;
            lnz = (lnz >> 1) | (l << 5);
        }
        non_zero_uv |= nz_coeffs << (4 * ch);
        out_t_nz |= (tnz << 4) << ch;
        out_l_nz |= (lnz & 0xf0) << ch;
    }
    mb->nz = (uint8_t)out_t_nz;
    left->nz = (uint8_t)out_l_nz;
    d->non_zero_y = non_zero_y;
    d->non_zero_uv = non_zero_uv;
    return !(non_zero_y | non_zero_uv);
}

/* ------------------------------------------------- transforms, predictors */

static inline uint8_t clip8(int v) { return (v & ~0xff) == 0 ? (uint8_t)v : v < 0 ? 0 : 255; }

/* _mm_mulhi_epi16 */
static inline int mulhi16(int v, int k) { return (v * k) >> 16; }

/* libwebp's inverse DCT as Pillow's x86-64 build runs it (Transform_SSE2):
 * the C version's arithmetic in 16-bit lanes, with 35468 / 65536 taken as
 * 1 - 30068 / 65536.  Identical to the C version (32-bit ints) while values
 * stay in range, which they do for any encoder's output; with corrupt
 * coefficients the lanes wrap, and so do we.  The sum is saturated to 8 bits
 * after a wrapping 16-bit add to the prediction. */
static void transform_one(const int16_t *in, uint8_t *dst) {
    int t[4][4]; /* t[column][k] after the vertical pass (the transposed rows) */
    for (int i = 0; i < 4; i++) {
        int i0 = in[i], i1 = in[4 + i], i2 = in[8 + i], i3 = in[12 + i];
        int a = wrap16(i0 + i2), b = wrap16(i0 - i2);
        int c = wrap16(wrap16(i1 - i3) + wrap16(mulhi16(i1, -30068) - mulhi16(i3, 20091)));
        int d = wrap16(wrap16(i1 + i3) + wrap16(mulhi16(i1, 20091) + mulhi16(i3, -30068)));
        t[i][0] = wrap16(a + d);
        t[i][1] = wrap16(b + c);
        t[i][2] = wrap16(b - c);
        t[i][3] = wrap16(a - d);
    }
    for (int k = 0; k < 4; k++) { /* row k of the output */
        int T0 = t[0][k], T1 = t[1][k], T2 = t[2][k], T3 = t[3][k];
        int dc = wrap16(T0 + 4);
        int a = wrap16(dc + T2), b = wrap16(dc - T2);
        int c = wrap16(wrap16(T1 - T3) + wrap16(mulhi16(T1, -30068) - mulhi16(T3, 20091)));
        int d = wrap16(wrap16(T1 + T3) + wrap16(mulhi16(T1, 20091) + mulhi16(T3, -30068)));
        int out[4] = {wrap16(a + d) >> 3, wrap16(b + c) >> 3, wrap16(b - c) >> 3, wrap16(a - d) >> 3};
        uint8_t *row = dst + k * BPS;
        for (int x = 0; x < 4; x++) {
            int v = wrap16(row[x] + out[x]);
            row[x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

#define MUL1(a) ((((a) * 20091) >> 16) + (a))
#define MUL2(a) (((a) * 35468) >> 16)
#define STORE(x, y, v) dst[(x) + (y) * BPS] = clip8(dst[(x) + (y) * BPS] + ((v) >> 3))

/* Only in[0], in[1], in[4] non-zero: libwebp's TransformAC3 (C, 32-bit ints,
 * also in its SSE2 build). */
static void transform_ac3(const int16_t *in, uint8_t *dst) {
    int a = in[0] + 4;
    int c4 = MUL2(in[4]), d4 = MUL1(in[4]);
    int c1 = MUL2(in[1]), d1 = MUL1(in[1]);
    int rows[4] = {a + d4, a + c4, a - c4, a - d4};
    for (int y = 0; y < 4; y++) {
        STORE(0, y, rows[y] + d1);
        STORE(1, y, rows[y] + c1);
        STORE(2, y, rows[y] - c1);
        STORE(3, y, rows[y] - d1);
    }
}

static void transform_dc(const int16_t *in, uint8_t *dst) {
    int dc = in[0] + 4;
    for (int j = 0; j < 4; j++)
        for (int i = 0; i < 4; i++) STORE(i, j, dc);
}
#undef MUL1
#undef MUL2
#undef STORE

static void do_transform(uint32_t bits, const int16_t *src, uint8_t *dst) {
    switch (bits >> 30) {
    case 3: transform_one(src, dst); break;
    case 2: transform_ac3(src, dst); break;
    case 1: transform_dc(src, dst); break;
    default: break;
    }
}

/* One chroma plane's four blocks; libwebp never uses the AC3 shortcut here. */
static void do_uv_transform(uint32_t bits, const int16_t *src, uint8_t *dst) {
    if (!(bits & 0xff)) return;
    if (bits & 0xaa) {
        transform_one(src, dst);
        transform_one(src + 16, dst + 4);
        transform_one(src + 32, dst + 4 * BPS);
        transform_one(src + 48, dst + 4 * BPS + 4);
    } else {
        for (int i = 0; i < 4; i++)
            if (src[16 * i]) transform_dc(src + 16 * i, dst + (i & 1) * 4 + (i >> 1) * 4 * BPS);
    }
}

#define AVG3(a, b, c) ((uint8_t)(((a) + 2 * (b) + (c) + 2) >> 2))
#define AVG2(a, b) ((uint8_t)(((a) + (b) + 1) >> 1))
#define DST(x, y) dst[(x) + (y) * BPS]

static void true_motion(uint8_t *dst, int size) {
    const uint8_t *top = dst - BPS;
    int tl = top[-1];
    for (int y = 0; y < size; y++) {
        int l = dst[-1] - tl;
        for (int x = 0; x < size; x++) dst[x] = clip8(l + top[x]);
        dst += BPS;
    }
}

static void fill(uint8_t *dst, int size, int v) {
    for (int j = 0; j < size; j++) memset(dst + j * BPS, v, (size_t)size);
}

/* 16x16 luma (size 16) or 8x8 chroma (size 8) prediction; mode after the
 * DC edge substitution. */
static void predict_block(uint8_t *dst, int size, int mode) {
    int shift = size == 16 ? 4 : 3, dc;
    switch (mode) {
    case B_DC:
        dc = size;
        for (int j = 0; j < size; j++) dc += dst[-1 + j * BPS] + dst[j - BPS];
        fill(dst, size, dc >> (shift + 1));
        break;
    case DC_NOTOP:
        dc = size >> 1;
        for (int j = 0; j < size; j++) dc += dst[-1 + j * BPS];
        fill(dst, size, dc >> shift);
        break;
    case DC_NOLEFT:
        dc = size >> 1;
        for (int j = 0; j < size; j++) dc += dst[j - BPS];
        fill(dst, size, dc >> shift);
        break;
    case DC_NOTOPLEFT: fill(dst, size, 0x80); break;
    case B_TM: true_motion(dst, size); break;
    case B_VE:
        for (int j = 0; j < size; j++) memcpy(dst + j * BPS, dst - BPS, (size_t)size);
        break;
    case B_HE:
        for (int j = 0; j < size; j++) memset(dst + j * BPS, dst[j * BPS - 1], (size_t)size);
        break;
    default: break;
    }
}

static void predict4(uint8_t *dst, int mode) {
    const int I = dst[-1], J = dst[-1 + BPS], K = dst[-1 + 2 * BPS], L = dst[-1 + 3 * BPS];
    const int X = dst[-1 - BPS], A = dst[-BPS], B = dst[1 - BPS], C = dst[2 - BPS];
    const int D = dst[3 - BPS], E = dst[4 - BPS], F = dst[5 - BPS], G = dst[6 - BPS];
    const int H = dst[7 - BPS];
    switch (mode) {
    case B_DC: {
        int dc = 4;
        for (int i = 0; i < 4; i++) dc += dst[i - BPS] + dst[-1 + i * BPS];
        fill(dst, 4, dc >> 3);
        break;
    }
    case B_TM: true_motion(dst, 4); break;
    case B_VE: {
        uint8_t vals[4] = {AVG3(X, A, B), AVG3(A, B, C), AVG3(B, C, D), AVG3(C, D, E)};
        for (int i = 0; i < 4; i++) memcpy(dst + i * BPS, vals, 4);
        break;
    }
    case B_HE:
        memset(dst, AVG3(X, I, J), 4);
        memset(dst + BPS, AVG3(I, J, K), 4);
        memset(dst + 2 * BPS, AVG3(J, K, L), 4);
        memset(dst + 3 * BPS, AVG3(K, L, L), 4);
        break;
    case B_RD:
        DST(0, 3) = AVG3(J, K, L);
        DST(1, 3) = DST(0, 2) = AVG3(I, J, K);
        DST(2, 3) = DST(1, 2) = DST(0, 1) = AVG3(X, I, J);
        DST(3, 3) = DST(2, 2) = DST(1, 1) = DST(0, 0) = AVG3(A, X, I);
        DST(3, 2) = DST(2, 1) = DST(1, 0) = AVG3(B, A, X);
        DST(3, 1) = DST(2, 0) = AVG3(C, B, A);
        DST(3, 0) = AVG3(D, C, B);
        break;
    case B_LD:
        DST(0, 0) = AVG3(A, B, C);
        DST(1, 0) = DST(0, 1) = AVG3(B, C, D);
        DST(2, 0) = DST(1, 1) = DST(0, 2) = AVG3(C, D, E);
        DST(3, 0) = DST(2, 1) = DST(1, 2) = DST(0, 3) = AVG3(D, E, F);
        DST(3, 1) = DST(2, 2) = DST(1, 3) = AVG3(E, F, G);
        DST(3, 2) = DST(2, 3) = AVG3(F, G, H);
        DST(3, 3) = AVG3(G, H, H);
        break;
    case B_VR:
        DST(0, 0) = DST(1, 2) = AVG2(X, A);
        DST(1, 0) = DST(2, 2) = AVG2(A, B);
        DST(2, 0) = DST(3, 2) = AVG2(B, C);
        DST(3, 0) = AVG2(C, D);
        DST(0, 3) = AVG3(K, J, I);
        DST(0, 2) = AVG3(J, I, X);
        DST(0, 1) = DST(1, 3) = AVG3(I, X, A);
        DST(1, 1) = DST(2, 3) = AVG3(X, A, B);
        DST(2, 1) = DST(3, 3) = AVG3(A, B, C);
        DST(3, 1) = AVG3(B, C, D);
        break;
    case B_VL:
        DST(0, 0) = AVG2(A, B);
        DST(1, 0) = DST(0, 2) = AVG2(B, C);
        DST(2, 0) = DST(1, 2) = AVG2(C, D);
        DST(3, 0) = DST(2, 2) = AVG2(D, E);
        DST(0, 1) = AVG3(A, B, C);
        DST(1, 1) = DST(0, 3) = AVG3(B, C, D);
        DST(2, 1) = DST(1, 3) = AVG3(C, D, E);
        DST(3, 1) = DST(2, 3) = AVG3(D, E, F);
        DST(3, 2) = AVG3(E, F, G);
        DST(3, 3) = AVG3(F, G, H);
        break;
    case B_HU:
        DST(0, 0) = AVG2(I, J);
        DST(2, 0) = DST(0, 1) = AVG2(J, K);
        DST(2, 1) = DST(0, 2) = AVG2(K, L);
        DST(1, 0) = AVG3(I, J, K);
        DST(3, 0) = DST(1, 1) = AVG3(J, K, L);
        DST(3, 1) = DST(1, 2) = AVG3(K, L, L);
        DST(3, 2) = DST(2, 2) = DST(0, 3) = DST(1, 3) = DST(2, 3) = DST(3, 3) = (uint8_t)L;
        break;
    case B_HD:
        DST(0, 0) = DST(2, 1) = AVG2(I, X);
        DST(0, 1) = DST(2, 2) = AVG2(J, I);
        DST(0, 2) = DST(2, 3) = AVG2(K, J);
        DST(0, 3) = AVG2(L, K);
        DST(3, 0) = AVG3(A, B, C);
        DST(2, 0) = AVG3(X, A, B);
        DST(1, 0) = DST(3, 1) = AVG3(I, X, A);
        DST(1, 1) = DST(3, 2) = AVG3(J, I, X);
        DST(1, 2) = DST(3, 3) = AVG3(K, J, I);
        DST(1, 3) = AVG3(L, K, J);
        break;
    default: break;
    }
}
#undef AVG3
#undef AVG2
#undef DST

static int check_mode(int mb_x, int mb_y, int mode) {
    if (mode != B_DC) return mode;
    if (mb_x == 0) return mb_y == 0 ? DC_NOTOPLEFT : DC_NOLEFT;
    return mb_y == 0 ? DC_NOTOP : B_DC;
}

static const uint16_t kscan[16] = {
    0 + 0 * BPS, 4 + 0 * BPS, 8 + 0 * BPS, 12 + 0 * BPS, 0 + 4 * BPS,  4 + 4 * BPS,
    8 + 4 * BPS, 12 + 4 * BPS, 0 + 8 * BPS, 4 + 8 * BPS, 8 + 8 * BPS,  12 + 8 * BPS,
    0 + 12 * BPS, 4 + 12 * BPS, 8 + 12 * BPS, 12 + 12 * BPS};

/* Sets up the work area's borders for a new MB row (libwebp's
 * ReconstructRow): 129 on the left, 127 above the first row. */
static void start_row(vp8_dec *d, int mb_y) {
    uint8_t *y_dst = d->work + Y_OFF, *u_dst = d->work + U_OFF, *v_dst = d->work + V_OFF;
    for (int j = 0; j < 16; j++) y_dst[j * BPS - 1] = 129;
    for (int j = 0; j < 8; j++) u_dst[j * BPS - 1] = v_dst[j * BPS - 1] = 129;
    if (mb_y > 0) {
        y_dst[-1 - BPS] = u_dst[-1 - BPS] = v_dst[-1 - BPS] = 129;
    } else {
        memset(y_dst - BPS - 1, 127, 16 + 4 + 1);
        memset(u_dst - BPS - 1, 127, 8 + 1);
        memset(v_dst - BPS - 1, 127, 8 + 1);
    }
}

/* Predicts and adds the residue of one MB in the work area, then stores it
 * in the planes and keeps its bottom row for the next MB row. */
static void reconstruct_mb(vp8_dec *d, int mb_x, int mb_y) {
    const mb_mode *m = &d->modes[mb_x];
    uint8_t *y_dst = d->work + Y_OFF, *u_dst = d->work + U_OFF, *v_dst = d->work + V_OFF;
    if (mb_x > 0) { /* the previous MB's right columns become the left border */
        for (int j = -1; j < 16; j++) memcpy(y_dst + j * BPS - 4, y_dst + j * BPS + 12, 4);
        for (int j = -1; j < 8; j++) {
            memcpy(u_dst + j * BPS - 4, u_dst + j * BPS + 4, 4);
            memcpy(v_dst + j * BPS - 4, v_dst + j * BPS + 4, 4);
        }
    }
    uint8_t *top_y = d->top_y + 16 * mb_x, *top_u = d->top_u + 8 * mb_x, *top_v = d->top_v + 8 * mb_x;
    if (mb_y > 0) {
        memcpy(y_dst - BPS, top_y, 16);
        memcpy(u_dst - BPS, top_u, 8);
        memcpy(v_dst - BPS, top_v, 8);
    }
    uint32_t bits = d->non_zero_y;
    if (m->is_i4x4) {
        uint8_t *top_right = y_dst - BPS + 16;
        if (mb_y > 0) {
            if (mb_x >= d->mb_w - 1) memset(top_right, top_y[15], 4);
            else memcpy(top_right, top_y + 16, 4);
        }
        /* the right column of 4x4 blocks all see the MB's above-right pixels */
        for (int r = 1; r <= 3; r++) memcpy(top_right + 4 * r * BPS, top_right, 4);
        for (int n = 0; n < 16; n++, bits <<= 2) {
            uint8_t *dst = y_dst + kscan[n];
            predict4(dst, m->imodes[n]);
            do_transform(bits, d->coeffs + n * 16, dst);
        }
    } else {
        predict_block(y_dst, 16, check_mode(mb_x, mb_y, m->imodes[0]));
        if (bits != 0)
            for (int n = 0; n < 16; n++, bits <<= 2) do_transform(bits, d->coeffs + n * 16, y_dst + kscan[n]);
    }
    int uvmode = check_mode(mb_x, mb_y, m->uvmode);
    predict_block(u_dst, 8, uvmode);
    predict_block(v_dst, 8, uvmode);
    do_uv_transform(d->non_zero_uv, d->coeffs + 16 * 16, u_dst);
    do_uv_transform(d->non_zero_uv >> 8, d->coeffs + 20 * 16, v_dst);

    if (mb_y < d->mb_h - 1) {
        memcpy(top_y, y_dst + 15 * BPS, 16);
        memcpy(top_u, u_dst + 7 * BPS, 8);
        memcpy(top_v, v_dst + 7 * BPS, 8);
    }
    uint8_t *yo = d->y + (size_t)mb_y * 16 * d->ystride + (size_t)mb_x * 16;
    uint8_t *uo = d->u + (size_t)mb_y * 8 * d->uvstride + (size_t)mb_x * 8;
    uint8_t *vo = d->v + (size_t)mb_y * 8 * d->uvstride + (size_t)mb_x * 8;
    for (size_t j = 0; j < 16; j++) memcpy(yo + j * d->ystride, y_dst + j * BPS, 16);
    for (size_t j = 0; j < 8; j++) {
        memcpy(uo + j * d->uvstride, u_dst + j * BPS, 8);
        memcpy(vo + j * d->uvstride, v_dst + j * BPS, 8);
    }
}

/* ------------------------------------------------------------ loop filter */

static inline int iabs(int v) { return v < 0 ? -v : v; }
static inline int sclip1(int v) { return v < -128 ? -128 : v > 127 ? 127 : v; } /* int8 */
static inline int sclip2(int v) { return v < -16 ? -16 : v > 15 ? 15 : v; }     /* [-16, 15] */

static inline void do_filter2(uint8_t *p, ptrdiff_t step) {
    int p1 = p[-2 * step], p0 = p[-step], q0 = p[0], q1 = p[step];
    int a = 3 * (q0 - p0) + sclip1(p1 - q1);
    int a1 = sclip2((a + 4) >> 3), a2 = sclip2((a + 3) >> 3);
    p[-step] = clip8(p0 + a2);
    p[0] = clip8(q0 - a1);
}

static inline void do_filter4(uint8_t *p, ptrdiff_t step) {
    int p1 = p[-2 * step], p0 = p[-step], q0 = p[0], q1 = p[step];
    int a = 3 * (q0 - p0);
    int a1 = sclip2((a + 4) >> 3), a2 = sclip2((a + 3) >> 3), a3 = (a1 + 1) >> 1;
    p[-2 * step] = clip8(p1 + a3);
    p[-step] = clip8(p0 + a2);
    p[0] = clip8(q0 - a1);
    p[step] = clip8(q1 - a3);
}

static inline void do_filter6(uint8_t *p, ptrdiff_t step) {
    int p2 = p[-3 * step], p1 = p[-2 * step], p0 = p[-step];
    int q0 = p[0], q1 = p[step], q2 = p[2 * step];
    int a = sclip1(3 * (q0 - p0) + sclip1(p1 - q1));
    int a1 = (27 * a + 63) >> 7, a2 = (18 * a + 63) >> 7, a3 = (9 * a + 63) >> 7;
    p[-3 * step] = clip8(p2 + a3);
    p[-2 * step] = clip8(p1 + a2);
    p[-step] = clip8(p0 + a1);
    p[0] = clip8(q0 - a1);
    p[step] = clip8(q1 - a2);
    p[2 * step] = clip8(q2 - a3);
}

static inline int hev(const uint8_t *p, ptrdiff_t step, int thresh) {
    int p1 = p[-2 * step], p0 = p[-step], q0 = p[0], q1 = p[step];
    return iabs(p1 - p0) > thresh || iabs(q1 - q0) > thresh;
}

static inline int needs_filter(const uint8_t *p, ptrdiff_t step, int t) {
    int p1 = p[-2 * step], p0 = p[-step], q0 = p[0], q1 = p[step];
    return 4 * iabs(p0 - q0) + iabs(p1 - q1) <= t;
}

static inline int needs_filter2(const uint8_t *p, ptrdiff_t step, int t, int it) {
    int p3 = p[-4 * step], p2 = p[-3 * step], p1 = p[-2 * step], p0 = p[-step];
    int q0 = p[0], q1 = p[step], q2 = p[2 * step], q3 = p[3 * step];
    if (4 * iabs(p0 - q0) + iabs(p1 - q1) > t) return 0;
    return iabs(p3 - p2) <= it && iabs(p2 - p1) <= it && iabs(p1 - p0) <= it &&
           iabs(q3 - q2) <= it && iabs(q2 - q1) <= it && iabs(q1 - q0) <= it;
}

/* Simple filter across one edge of 16 pixels: hstep crosses the edge,
 * vstep runs along it. */
static void simple_filter(uint8_t *p, ptrdiff_t hstep, ptrdiff_t vstep, int thresh) {
    int thresh2 = 2 * thresh + 1;
    for (int i = 0; i < 16; i++, p += vstep)
        if (needs_filter(p, hstep, thresh2)) do_filter2(p, hstep);
}

/* Normal filter: MB edges (six taps) or inner edges (four taps). */
static void filter_loop(uint8_t *p, ptrdiff_t hstep, ptrdiff_t vstep, int size, int thresh,
                        int ithresh, int hev_thresh, int mb_edge) {
    int thresh2 = 2 * thresh + 1;
    for (; size > 0; size--, p += vstep) {
        if (!needs_filter2(p, hstep, thresh2, ithresh)) continue;
        if (hev(p, hstep, hev_thresh)) do_filter2(p, hstep);
        else if (mb_edge) do_filter6(p, hstep);
        else do_filter4(p, hstep);
    }
}

/* libwebp's DoFilter for the MB at (mb_x, mb_y), on the planes. */
static void filter_mb(vp8_dec *d, int mb_x, int mb_y) {
    const finfo *f = &d->fi[mb_x];
    int limit = f->limit, ilevel = f->ilevel, hev_t = f->hev;
    if (limit == 0) return;
    ptrdiff_t ys = (ptrdiff_t)d->ystride, uvs = (ptrdiff_t)d->uvstride;
    uint8_t *y = d->y + (size_t)mb_y * 16 * d->ystride + (size_t)mb_x * 16;
    if (d->filter_type == 1) {
        if (mb_x > 0) simple_filter(y, 1, ys, limit + 4);
        if (f->inner)
            for (int k = 1; k <= 3; k++) simple_filter(y + 4 * k, 1, ys, limit);
        if (mb_y > 0) simple_filter(y, ys, 1, limit + 4);
        if (f->inner)
            for (int k = 1; k <= 3; k++) simple_filter(y + 4 * k * ys, ys, 1, limit);
        return;
    }
    uint8_t *u = d->u + (size_t)mb_y * 8 * d->uvstride + (size_t)mb_x * 8;
    uint8_t *v = d->v + (size_t)mb_y * 8 * d->uvstride + (size_t)mb_x * 8;
    if (mb_x > 0) {
        filter_loop(y, 1, ys, 16, limit + 4, ilevel, hev_t, 1);
        filter_loop(u, 1, uvs, 8, limit + 4, ilevel, hev_t, 1);
        filter_loop(v, 1, uvs, 8, limit + 4, ilevel, hev_t, 1);
    }
    if (f->inner) {
        for (int k = 1; k <= 3; k++) filter_loop(y + 4 * k, 1, ys, 16, limit, ilevel, hev_t, 0);
        filter_loop(u + 4, 1, uvs, 8, limit, ilevel, hev_t, 0);
        filter_loop(v + 4, 1, uvs, 8, limit, ilevel, hev_t, 0);
    }
    if (mb_y > 0) {
        filter_loop(y, ys, 1, 16, limit + 4, ilevel, hev_t, 1);
        filter_loop(u, uvs, 1, 8, limit + 4, ilevel, hev_t, 1);
        filter_loop(v, uvs, 1, 8, limit + 4, ilevel, hev_t, 1);
    }
    if (f->inner) {
        for (int k = 1; k <= 3; k++) filter_loop(y + 4 * k * ys, ys, 1, 16, limit, ilevel, hev_t, 0);
        filter_loop(u + 4 * uvs, uvs, 1, 8, limit, ilevel, hev_t, 0);
        filter_loop(v + 4 * uvs, uvs, 1, 8, limit, ilevel, hev_t, 0);
    }
}

/* ----------------------------------------------------------- YUV -> RGB */

/* libwebp's VP8YUVToR/G/B: 14-bit fixed point, _mm_mulhi_epu16 style. */
static inline int mult_hi(int v, int coeff) { return (v * coeff) >> 8; }
static inline uint8_t yuv_clip(int v) { return (v & ~16383) == 0 ? (uint8_t)(v >> 6) : v < 0 ? 0 : 255; }

static inline void yuv_to_rgb(int y, int u, int v, uint8_t *rgb) {
    int yy = mult_hi(y, 19077);
    rgb[0] = yuv_clip(yy + mult_hi(v, 26149) - 14234);
    rgb[1] = yuv_clip(yy - mult_hi(u, 6419) - mult_hi(v, 13320) + 8708);
    rgb[2] = yuv_clip(yy + mult_hi(u, 33050) - 17685);
}

/* libwebp's UpsampleRgbLinePair: two output rows from the chroma rows
 * above (top_*) and below (cur_*) them, 9-3-3-1 weights computed on u and v
 * packed in one 32-bit word.  bottom may be NULL (first / last row). */
static void upsample_pair(const uint8_t *top_y, const uint8_t *bot_y, const uint8_t *top_u,
                          const uint8_t *top_v, const uint8_t *cur_u, const uint8_t *cur_v,
                          uint8_t *top_dst, uint8_t *bot_dst, int len) {
#define LOAD_UV(u, v) ((uint32_t)(u) | ((uint32_t)(v) << 16))
    int last_pair = (len - 1) >> 1;
    uint32_t tl_uv = LOAD_UV(top_u[0], top_v[0]), l_uv = LOAD_UV(cur_u[0], cur_v[0]);
    uint32_t uv0 = (3 * tl_uv + l_uv + 0x00020002u) >> 2;
    yuv_to_rgb(top_y[0], uv0 & 0xff, (int)(uv0 >> 16), top_dst);
    if (bot_y) {
        uv0 = (3 * l_uv + tl_uv + 0x00020002u) >> 2;
        yuv_to_rgb(bot_y[0], uv0 & 0xff, (int)(uv0 >> 16), bot_dst);
    }
    for (int x = 1; x <= last_pair; x++) {
        uint32_t t_uv = LOAD_UV(top_u[x], top_v[x]), uv = LOAD_UV(cur_u[x], cur_v[x]);
        uint32_t avg = tl_uv + t_uv + l_uv + uv + 0x00080008u;
        uint32_t diag_12 = (avg + 2 * (t_uv + l_uv)) >> 3;
        uint32_t diag_03 = (avg + 2 * (tl_uv + uv)) >> 3;
        uint32_t a = (diag_12 + tl_uv) >> 1, b = (diag_03 + t_uv) >> 1;
        yuv_to_rgb(top_y[2 * x - 1], a & 0xff, (int)(a >> 16), top_dst + (2 * x - 1) * 3);
        yuv_to_rgb(top_y[2 * x], b & 0xff, (int)(b >> 16), top_dst + (2 * x) * 3);
        if (bot_y) {
            a = (diag_03 + l_uv) >> 1;
            b = (diag_12 + uv) >> 1;
            yuv_to_rgb(bot_y[2 * x - 1], a & 0xff, (int)(a >> 16), bot_dst + (2 * x - 1) * 3);
            yuv_to_rgb(bot_y[2 * x], b & 0xff, (int)(b >> 16), bot_dst + (2 * x) * 3);
        }
        tl_uv = t_uv;
        l_uv = uv;
    }
    if (!(len & 1)) {
        uv0 = (3 * tl_uv + l_uv + 0x00020002u) >> 2;
        yuv_to_rgb(top_y[len - 1], uv0 & 0xff, (int)(uv0 >> 16), top_dst + (len - 1) * 3);
        if (bot_y) {
            uv0 = (3 * l_uv + tl_uv + 0x00020002u) >> 2;
            yuv_to_rgb(bot_y[len - 1], uv0 & 0xff, (int)(uv0 >> 16), bot_dst + (len - 1) * 3);
        }
    }
#undef LOAD_UV
}

/* The whole picture as libwebp's EmitFancyRGB emits it row batch by row
 * batch: row 0 alone, then pairs (2k-1, 2k) between chroma rows k-1 and k,
 * and for an even height the last row alone. */
static void emit_rgb(const vp8_dec *d, uint8_t *rgb) {
    int w = d->width, h = d->height;
    size_t rs = (size_t)w * 3;
    const uint8_t *Y = d->y, *U = d->u, *V = d->v;
    size_t ys = d->ystride, uvs = d->uvstride;
    upsample_pair(Y, NULL, U, V, U, V, rgb, NULL, w);
    size_t y = 0;
    for (; y + 2 < (size_t)h; y += 2) {
        size_t k = y >> 1;
        upsample_pair(Y + (y + 1) * ys, Y + (y + 2) * ys, U + k * uvs, V + k * uvs, U + (k + 1) * uvs,
                      V + (k + 1) * uvs, rgb + (y + 1) * rs, rgb + (y + 2) * rs, w);
    }
    if (!(h & 1)) {
        size_t k = y >> 1;
        upsample_pair(Y + (y + 1) * ys, NULL, U + k * uvs, V + k * uvs, U + k * uvs, V + k * uvs,
                      rgb + (y + 1) * rs, NULL, w);
    }
}

/* --------------------------------------------------------------- driver */

static void free_dec(vp8_dec *d) {
    fdd_free(d->intra_t);
    fdd_free(d->modes);
    fdd_free(d->nz_top);
    fdd_free(d->fi);
    fdd_free(d->top_y);
    fdd_free(d->work);
    fdd_free(d->y);
}

fdd_status fdd_vp8_decode(const uint8_t *vp8, size_t len, int width, int height, const char *name,
                          uint8_t *rgb, fdd_error *err) {
    vp8_dec dd, *d = &dd;
    memset(d, 0, sizeof *d);
    d->name = name;
    d->width = width;
    d->height = height;
    fdd_status s = parse_headers(d, vp8, len, err);
    if (s) return s;
    precompute_filter_strengths(d);

    size_t mbw = (size_t)d->mb_w, mbh = (size_t)d->mb_h; /* <= 1024 each: no overflow below */
    d->ystride = mbw * 16;
    d->uvstride = mbw * 8;
    size_t ysize = d->ystride * mbh * 16, uvsize = d->uvstride * mbh * 8;
    d->intra_t = fdd_malloc(4 * mbw);
    d->modes = fdd_calloc(mbw, sizeof *d->modes);
    d->nz_top = fdd_calloc(mbw, sizeof *d->nz_top);
    d->fi = fdd_calloc(mbw, sizeof *d->fi);
    d->top_y = fdd_calloc(mbw * 32 + 4, 1); /* y (16 / MB, +4 above-right), u, v */
    d->work = fdd_calloc(WORK_SIZE, 1);
    d->y = fdd_malloc(ysize + 2 * uvsize);
    if (!d->intra_t || !d->modes || !d->nz_top || !d->fi || !d->top_y || !d->work || !d->y) {
        free_dec(d);
        return fdd_fail(err, FDD_E_NOMEM, "%s: out of memory decoding VP8", name);
    }
    d->top_u = d->top_y + mbw * 16 + 4;
    d->top_v = d->top_u + mbw * 8;
    d->u = d->y + ysize;
    d->v = d->u + uvsize;
    memset(d->intra_t, B_DC, 4 * mbw);

    for (int mb_y = 0; mb_y < d->mb_h; mb_y++) {
        bool_dec *tbr = &d->parts[mb_y & (d->num_parts - 1)];
        for (int mb_x = 0; mb_x < d->mb_w; mb_x++) parse_intra_mode(d, mb_x);
        if (d->br.eof) {
            free_dec(d);
            return fdd_fail(err, FDD_E_FORMAT, "%s: premature end of VP8 partition 0", name);
        }
        start_row(d, mb_y);
        for (int mb_x = 0; mb_x < d->mb_w; mb_x++) {
            const mb_mode *m = &d->modes[mb_x];
            int skip = d->use_skip_proba ? m->skip : 0;
            if (!skip) {
                skip = parse_residuals(d, mb_x, tbr);
            } else {
                d->nz_left.nz = d->nz_top[mb_x].nz = 0;
                if (!m->is_i4x4) d->nz_left.nz_dc = d->nz_top[mb_x].nz_dc = 0;
                d->non_zero_y = d->non_zero_uv = 0;
            }
            if (d->filter_type > 0) {
                d->fi[mb_x] = d->fstrengths[m->segment][m->is_i4x4];
                d->fi[mb_x].inner |= (uint8_t)!skip;
            }
            if (tbr->eof) {
                free_dec(d);
                return fdd_fail(err, FDD_E_FORMAT, "%s: premature end of VP8 data", name);
            }
            reconstruct_mb(d, mb_x, mb_y);
        }
        d->nz_left.nz = d->nz_left.nz_dc = 0;
        memset(d->intra_l, B_DC, sizeof d->intra_l);
        if (d->filter_type > 0)
            for (int mb_x = 0; mb_x < d->mb_w; mb_x++) filter_mb(d, mb_x, mb_y);
    }
    emit_rgb(d, rgb);
    free_dec(d);
    return FDD_OK;
}
