#!/usr/bin/env python3
"""Copy kernel modules and everything they depend on into an initramfs directory.

    kmods.py MODDIR OUTDIR MODULE...

MODDIR is a kernel's /lib/modules/<version> (with modules.dep; run depmod -b first if the .deb did
not ship it). Each MODULE (name as in lsmod: dashes and underscores are the same) is looked up in
MODDIR/modules.dep; modules listed in modules.builtin are part of the kernel image and skipped.
Every module of the closure lands in OUTDIR as a plain .ko (.ko.xz/.ko.zst/.ko.gz are unpacked,
busybox insmod cannot), and OUTDIR/order lists them one a line, dependencies first, the order the
guest's /init insmods them in. Prints one line per requested module to stderr: module, built-in or
missing; exits 1 if a requested module is neither a module nor built in.
"""
import gzip
import lzma
import os
import shutil
import subprocess
import sys


def name_of(path):
    base = os.path.basename(path)
    return base[:base.index('.ko')].replace('-', '_')


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    moddir, outdir, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
    deps = {}  # name -> (relative path, [dependency paths])
    with open(os.path.join(moddir, 'modules.dep')) as f:
        for line in f:
            path, _, rest = line.partition(':')
            if path.strip():
                deps[name_of(path.strip())] = (path.strip(), rest.split())
    builtin = set()
    bfile = os.path.join(moddir, 'modules.builtin')
    if os.path.exists(bfile):
        with open(bfile) as f:
            builtin = {name_of(l.strip()) for l in f if '.ko' in l}

    order, seen = [], set()

    def visit(name):
        if name in seen:
            return
        seen.add(name)
        path, dlist = deps[name]
        for d in dlist:  # modules.dep lists direct and indirect dependencies
            dn = name_of(d)
            if dn in deps:
                visit(dn)
        order.append(path)

    bad = 0
    for w in wanted:
        n = w.replace('-', '_')
        if n in deps:
            visit(n)
            print(f'kmods: {w}: module', file=sys.stderr)
        elif n in builtin:
            print(f'kmods: {w}: built-in', file=sys.stderr)
        else:
            print(f'kmods: {w}: MISSING (neither module nor built-in)', file=sys.stderr)
            bad = 1

    os.makedirs(outdir, exist_ok=True)
    names = []
    for path in order:
        src = os.path.join(moddir, path)
        dst = os.path.join(outdir, name_of(path) + '.ko')
        if path.endswith('.ko'):
            shutil.copyfile(src, dst)
        elif path.endswith('.ko.xz'):
            with lzma.open(src) as i, open(dst, 'wb') as o:
                shutil.copyfileobj(i, o)
        elif path.endswith('.ko.gz'):
            with gzip.open(src) as i, open(dst, 'wb') as o:
                shutil.copyfileobj(i, o)
        elif path.endswith('.ko.zst'):
            with open(dst, 'wb') as o:
                subprocess.run(['zstd', '-dc', src], stdout=o, check=True)
        else:
            sys.exit(f'kmods: unknown module format: {path}')
        names.append(os.path.basename(dst))
    with open(os.path.join(outdir, 'order'), 'w') as f:
        f.write(''.join(n + '\n' for n in names))
    print('kmods: load order: ' + (' '.join(names) or '(none)'), file=sys.stderr)
    return bad


if __name__ == '__main__':
    sys.exit(main())
