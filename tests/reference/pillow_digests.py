#!/usr/bin/python3
"""Pillow reference digests for a folder of images.

    /usr/bin/python3 tests/reference/pillow_digests.py DIR OUT.txt

Walks DIR recursively in sorted order and, for every file, writes one line:
    <relative path> <width> <height> <sha256 of Image.open(p).convert("RGB") bytes>
or, when Pillow cannot open or decode it,
    <relative path> ERROR <exception class>
tests/corpus.c compares fdd's decoders against such a file.  Paths are
written with '/' separators; a space in a path is written as %20."""
import hashlib
import os
import sys
import warnings


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    root, out = sys.argv[1], sys.argv[2]
    from PIL import Image
    warnings.simplefilter("ignore")
    paths = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in files:
            paths.append(os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/"))
    lines = []
    for rel in sorted(paths):
        name = rel.replace("%", "%25").replace(" ", "%20")
        try:
            with Image.open(os.path.join(root, rel)) as im:
                rgb = im.convert("RGB")
                line = "%s %d %d %s" % (name, rgb.width, rgb.height,
                                        hashlib.sha256(rgb.tobytes()).hexdigest())
        except Exception as e:  # any failure is a reference outcome too
            line = "%s ERROR %s" % (name, type(e).__name__)
        lines.append(line)
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("%d files, %d decoded" % (len(lines), sum(" ERROR " not in l for l in lines)))


if __name__ == "__main__":
    main()
