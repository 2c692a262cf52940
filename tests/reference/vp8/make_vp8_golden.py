"""Small lossy-WebP golden set for the VP8 decoder, copied into tests/data/webp (run with /usr/bin/python3;
needs Pillow 9.4 + libwebp.so.7 (ctypes) and vpxenc from Debian's vpx-tools).
Writes golden/*.webp and golden/digests.txt: "<file> <w>x<h> sha256(Pillow RGB)"
or "<file> ERROR" where Pillow refuses the file."""
import hashlib, io, os, struct, subprocess, sys
import numpy as np
from PIL import Image
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from enc import encode  # libwebp WebPEncode through ctypes: filter type, partitions, ...

FLIP_SRC, FLIP_AT, FLIP_X = os.environ.get('FLIP', 'vpx_q20_128x96:-2472:56').split(':')
FLIP_AT, FLIP_X = int(FLIP_AT), int(FLIP_X)
OUT = sys.argv[1] if len(sys.argv) > 1 else 'golden'
os.makedirs(OUT, exist_ok=True)

def synth(w, h, seed):
    r = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1),
                  (xx * 3 + yy * 5) % 256], -1)
    blobs = (np.sin(xx / 5.0 + seed) * np.cos(yy / 7.0) * 60).astype(int)[..., None]
    return Image.fromarray(np.clip(a // 2 + blobs + r.randint(0, 50, a.shape), 0, 255).astype(np.uint8))

def riff(frame):
    chunk = b'VP8 ' + struct.pack('<I', len(frame)) + frame + (b'\0' if len(frame) & 1 else b'')
    return b'RIFF' + struct.pack('<I', 4 + len(chunk)) + b'WEBP' + chunk

def vp8_of(data):
    assert data[12:16] == b'VP8 '
    return data[20:20 + struct.unpack('<I', data[16:20])[0]]

def vpx(im, *args):
    w, h = im.size
    a = np.asarray(im).astype(np.float64)
    Y = (0.257 * a[..., 0] + 0.504 * a[..., 1] + 0.098 * a[..., 2] + 16).round()
    U = -0.148 * a[..., 0] - 0.291 * a[..., 1] + 0.439 * a[..., 2] + 128
    V = 0.439 * a[..., 0] - 0.368 * a[..., 1] - 0.071 * a[..., 2] + 128
    def sub(P):
        P = np.pad(P, ((0, h & 1), (0, w & 1)), mode='edge')
        return ((P[0::2, 0::2] + P[1::2, 0::2] + P[0::2, 1::2] + P[1::2, 1::2]) / 4).round()
    raw = b''.join(np.clip(P, 0, 255).astype(np.uint8).tobytes() for P in (Y, sub(U), sub(V)))
    open('/tmp/_g.yuv', 'wb').write(raw)
    subprocess.run(['vpxenc', '--codec=vp8', '--i420', '-w', str(w), '-h', str(h), '--limit=1', '--ivf',
                    '-q', '--disable-warning-prompt', '-o', '/tmp/_g.ivf'] + list(args) + ['/tmp/_g.yuv'],
                   check=True, capture_output=True)
    d = open('/tmp/_g.ivf', 'rb').read()
    hl = struct.unpack('<H', d[6:8])[0]
    return d[hl + 12:hl + 12 + struct.unpack('<I', d[hl:hl + 4])[0]]

def pil(im, **kw):
    b = io.BytesIO(); im.save(b, 'WEBP', **kw); return b.getvalue()

files = {}
files['pil_q75_37x23'] = pil(synth(37, 23, 1))                          # default: normal filter, 4 segments
files['pil_q1_m0_1x1'] = pil(synth(1, 1, 2), quality=1, method=0)
files['pil_q100_m6_7x13'] = pil(synth(7, 13, 3), quality=100, method=6)
files['pil_q30_m2_64x48'] = pil(synth(64, 48, 4), quality=30, method=2)
files['enc_simple_81x47'] = encode(synth(81, 47, 5), 60, 4, filter_type=0, filter_strength=60)
files['enc_strong_sharp5_50x34'] = encode(synth(50, 34, 6), 40, 4, filter_type=1, filter_strength=80,
                                          filter_sharpness=5)
files['enc_nofilter_33x17'] = encode(synth(33, 17, 7), 70, 4, filter_strength=0)
files['enc_8parts_2seg_99x70'] = encode(synth(99, 70, 8), 50, 2, partitions=3, segments=2)
files['vpx_lfdelta_4parts_45x29'] = riff(vpx(synth(45, 29, 9), '--end-usage=q', '--cq-level=44', '--min-q=40', '--max-q=48',
                                             '--token-parts=2', '--sharpness=3'))
files['vpx_cbr_relseg_96x64'] = riff(vpx(synth(96, 64, 10), '--end-usage=cbr', '--target-bitrate=5'))
files['vpx_q20_128x96'] = riff(vpx(synth(128, 96, 21), '--end-usage=q', '--cq-level=20', '--min-q=16',
                                   '--max-q=24'))
# damaged: truncated token data (chunk sizes kept consistent) -> error; an odd
# chunk whose last partition needs the pad byte -> image
f = vp8_of(files['enc_simple_81x47'])
files['bad_truncated'] = riff(f[:len(f) * 2 // 3])
def pillow_ok(data):
    try:
        Image.open(io.BytesIO(data)).convert('RGB'); return True
    except Exception:
        return False
def fdd_nopad_ok(data):  # the dev driver, told to leave out the pad byte
    open('/tmp/_g.webp', 'wb').write(data)
    r = subprocess.run([os.path.join(os.path.dirname(os.path.abspath(__file__)), 'drv'), '/tmp/_g.webp',
                        '/tmp/_g.rgb'], env=dict(os.environ, NOPAD='1'), capture_output=True)
    return r.returncode == 0
# an odd-sized chunk whose last partition reads the pad byte: Pillow decodes it, and
# it fails without that byte
for name in ['pil_q75_37x23', 'enc_simple_81x47', 'pil_q30_m2_64x48', 'enc_nofilter_33x17']:
    fr = vp8_of(files[name])
    for cut in range(1, 40):
        g = fr[:len(fr) - cut]
        if len(g) & 1 and pillow_ok(riff(g)) and not fdd_nopad_ok(riff(g)):
            files['pad_needed'] = riff(g)
            break
    if 'pad_needed' in files:
        break
# coefficient overflow: 16-bit wrap in libwebp's SSE2 inverse DCT
# (the flip below was picked so that libwebp's 16-bit lanes wrap: a decoder with
# 32-bit transform arithmetic gives other pixels)
b = bytearray(vp8_of(files[FLIP_SRC]))
b[FLIP_AT] ^= FLIP_X
files['bad_flip'] = riff(bytes(b))

with open(os.path.join(OUT, 'digests.txt'), 'w') as dg:
    for name, data in files.items():
        fn = 'vp8_' + name + '.webp'
        open(os.path.join(OUT, fn), 'wb').write(data)
        try:
            im = Image.open(io.BytesIO(data)); rgb = im.convert('RGB').tobytes()
            dg.write('%s %dx%d %s\n' % (fn, im.size[0], im.size[1], hashlib.sha256(rgb).hexdigest()))
        except Exception as e:
            dg.write('%s ERROR\n' % fn)
print(len(files), sum(len(d) for d in files.values()), 'bytes')
