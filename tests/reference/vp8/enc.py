# libwebp encoder via ctypes, for options Pillow does not expose
import ctypes as C
lib = C.CDLL('libwebp.so.7')
ABI = 0x020f
class Config(C.Structure):
    _fields_ = [(n, t) for n, t in [('lossless', C.c_int), ('quality', C.c_float), ('method', C.c_int), ('image_hint', C.c_int),
        ('target_size', C.c_int), ('target_PSNR', C.c_float), ('segments', C.c_int), ('sns_strength', C.c_int),
        ('filter_strength', C.c_int), ('filter_sharpness', C.c_int), ('filter_type', C.c_int), ('autofilter', C.c_int),
        ('alpha_compression', C.c_int), ('alpha_filtering', C.c_int), ('alpha_quality', C.c_int), ('pass_', C.c_int),
        ('show_compressed', C.c_int), ('preprocessing', C.c_int), ('partitions', C.c_int), ('partition_limit', C.c_int),
        ('emulate_jpeg_size', C.c_int), ('thread_level', C.c_int), ('low_memory', C.c_int), ('near_lossless', C.c_int),
        ('exact', C.c_int), ('use_delta_palette', C.c_int), ('use_sharp_yuv', C.c_int), ('qmin', C.c_int), ('qmax', C.c_int)]]
WRITER = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_size_t, C.c_void_p)
class Picture(C.Structure):
    _fields_ = [('use_argb', C.c_int), ('colorspace', C.c_int), ('width', C.c_int), ('height', C.c_int),
        ('y', C.c_void_p), ('u', C.c_void_p), ('v', C.c_void_p), ('y_stride', C.c_int), ('uv_stride', C.c_int),
        ('a', C.c_void_p), ('a_stride', C.c_int), ('pad1', C.c_uint32 * 2), ('argb', C.c_void_p), ('argb_stride', C.c_int),
        ('pad2', C.c_uint32 * 3), ('writer', C.c_void_p), ('custom_ptr', C.c_void_p), ('extra_info_type', C.c_int),
        ('extra_info', C.c_void_p), ('stats', C.c_void_p), ('error_code', C.c_int), ('progress_hook', C.c_void_p),
        ('user_data', C.c_void_p), ('pad3', C.c_uint32 * 3), ('pad4', C.c_void_p), ('pad5', C.c_void_p),
        ('pad6', C.c_uint32 * 8), ('memory_', C.c_void_p), ('memory_argb_', C.c_void_p), ('pad7', C.c_void_p * 2)]
class MemWriter(C.Structure):
    _fields_ = [('mem', C.c_void_p), ('size', C.c_size_t), ('max_size', C.c_size_t), ('pad', C.c_uint32)]

def encode(im, quality=75, method=4, **opts):
    im = im.convert('RGB')
    cfg = Config()
    assert lib.WebPConfigInitInternal(C.byref(cfg), 0, C.c_float(quality), ABI)
    cfg.method = method
    for k, v in opts.items(): setattr(cfg, k, v)
    assert lib.WebPValidateConfig(C.byref(cfg)), opts
    pic = Picture()
    assert lib.WebPPictureInitInternal(C.byref(pic), ABI)
    pic.width, pic.height = im.size
    data = im.tobytes()
    assert lib.WebPPictureImportRGB(C.byref(pic), data, im.size[0] * 3)
    wr = MemWriter()
    lib.WebPMemoryWriterInit(C.byref(wr))
    pic.writer = C.cast(lib.WebPMemoryWrite, C.c_void_p)
    pic.custom_ptr = C.cast(C.byref(wr), C.c_void_p)
    ok = lib.WebPEncode(C.byref(cfg), C.byref(pic))
    out = C.string_at(wr.mem, wr.size)
    lib.WebPMemoryWriterClear(C.byref(wr))
    lib.WebPPictureFree(C.byref(pic))
    assert ok, pic.error_code
    return out
