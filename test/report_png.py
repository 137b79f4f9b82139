"""report_png.py: the colours of a screenshot at given points, for
report.test (Python standard library only: Debian's /usr/bin/python3).

    python3 test/report_png.py FILE.png X,Y [X,Y ...]

prints "WIDTH HEIGHT" on the first line, then "R G B" for each point (a
point outside the image prints "outside"). Reads 8-bit RGB or RGBA PNGs,
not interlaced: what Chromium's --screenshot writes. Rows are decoded
only down to the lowest point asked for.
"""
import struct
import sys
import zlib


def read_png(path, max_row):
    data = open(path, 'rb').read()
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        raise SystemExit('report_png: %s: not a PNG file' % path)
    pos, idat = 8, []
    width = height = bpp = None
    while pos < len(data):
        n, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b'IHDR':
            width, height, depth, ctype, _, _, interlace = struct.unpack('>IIBBBBB', body)
            if depth != 8 or interlace != 0 or ctype not in (2, 6):
                raise SystemExit('report_png: %s: depth %d, colour type %d, interlace %d: '
                                 'not a PNG this reads' % (path, depth, ctype, interlace))
            bpp = 3 if ctype == 2 else 4
        elif kind == b'IDAT':
            idat.append(body)
        elif kind == b'IEND':
            break
    raw = zlib.decompressobj()
    stride = width * bpp
    want = min(height, max_row + 1)
    buf = raw.decompress(b''.join(idat), want * (stride + 1))
    rows = []
    prev = bytearray(stride)
    for y in range(want):
        off = y * (stride + 1)
        f = buf[off]
        line = bytearray(buf[off + 1:off + 1 + stride])
        if f == 1:
            for x in range(bpp, stride):
                line[x] = (line[x] + line[x - bpp]) & 255
        elif f == 2:
            line = bytearray(map(lambda a, b: (a + b) & 255, line, prev))
        elif f == 3:
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0
                line[x] = (line[x] + ((a + prev[x]) >> 1)) & 255
        elif f == 4:
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0
                b = prev[x]
                c = prev[x - bpp] if x >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pr) & 255
        elif f != 0:
            raise SystemExit('report_png: %s: row %d has filter %d' % (path, y, f))
        rows.append(line)
        prev = line
    return width, height, bpp, rows


def main(argv):
    if len(argv) < 2:
        raise SystemExit('usage: report_png.py FILE.png X,Y ...')
    points = [tuple(int(float(v)) for v in p.split(',')) for p in argv[2:]]
    lowest = max([y for _, y in points] + [0])
    width, height, bpp, rows = read_png(argv[1], lowest)
    print(width, height)
    for x, y in points:
        if 0 <= x < width and 0 <= y < min(height, len(rows)):
            px = rows[y][x * bpp:x * bpp + 3]
            print(px[0], px[1], px[2])
        else:
            print('outside')


if __name__ == '__main__':
    main(sys.argv)
