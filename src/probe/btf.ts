// Where vmlinux BTF comes from (libbpf's search order), module BTF, and a fast scan of raw BTF for the
// few type ids the live probes need (a kernel function for fentry, an LSM hook, ...). The scan walks the
// type section once reading only each type's header, so it costs a few ms on a 5 MB vmlinux BTF
// instead of the ~60 ms of a full parse (src/object/btf.ts) plus a name index.
import os from 'node:os';
import path from 'node:path';
import type { BtfCandidate, BtfSection } from './types.js';
import type { Kconfig } from './kconfig.js';
import { errCode, type SystemView } from './system.js';

const BTF_MAGIC = 0xeb9f;

/** libbpf's btf__load_vmlinux_btf() locations after sysfs (%1$s = release). */
export function libbpfDiskPaths(release: string): string[] {
  return [
    `/boot/vmlinux-${release}`,
    `/lib/modules/${release}/vmlinux-${release}`,
    `/lib/modules/${release}/build/vmlinux`,
    `/usr/lib/modules/${release}/kernel/vmlinux`,
    `/usr/lib/debug/boot/vmlinux-${release}`,
    `/usr/lib/debug/boot/vmlinux-${release}.debug`,
    `/usr/lib/debug/lib/modules/${release}/vmlinux`,
  ];
}

export const SYSFS_VMLINUX = '/sys/kernel/btf/vmlinux';

export class BtfScanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BtfScanError';
  }
}

interface RawHeader {
  le: boolean;
  typeStart: number;
  typeEnd: number;
  strStart: number;
  strEnd: number;
}

/** Checks the header of raw BTF; throws BtfScanError saying what is wrong. */
export function rawBtfHeader(b: Uint8Array): RawHeader {
  if (b.length < 24) throw new BtfScanError(`too short for a BTF header (${b.length} bytes)`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let le: boolean;
  if (dv.getUint16(0, true) === BTF_MAGIC) le = true;
  else if (dv.getUint16(0, false) === BTF_MAGIC) le = false;
  else throw new BtfScanError(`bad magic 0x${dv.getUint16(0, true).toString(16).padStart(4, '0')} (BTF starts with 0xeb9f)`);
  if (b[2] !== 1) throw new BtfScanError(`unsupported BTF version ${b[2]}`);
  const hdrLen = dv.getUint32(4, le);
  const typeOff = dv.getUint32(8, le);
  const typeLen = dv.getUint32(12, le);
  const strOff = dv.getUint32(16, le);
  const strLen = dv.getUint32(20, le);
  if (hdrLen < 24 || hdrLen > b.length) throw new BtfScanError(`bad header length ${hdrLen}`);
  const data = b.length - hdrLen;
  if (typeOff + typeLen > data || strOff + strLen > data) throw new BtfScanError('type or string section extends past the end of the file');
  return { le, typeStart: hdrLen + typeOff, typeEnd: hdrLen + typeOff + typeLen, strStart: hdrLen + strOff, strEnd: hdrLen + strOff + strLen };
}

export type ScanKind = 'STRUCT' | 'ENUM' | 'FUNC' | 'TYPEDEF';
const KIND_NO: Record<ScanKind, number> = { STRUCT: 4, ENUM: 6, TYPEDEF: 8, FUNC: 12 };

export interface ScanHit {
  id: number;
  /** STRUCT: member names in order; ENUM: [name, value] pairs */
  members?: string[];
  values?: Array<[string, number]>;
}

/**
 * Finds types by (kind, name) in raw BTF in one pass. Returns a map keyed `KIND:name`. Members (STRUCT) and
 * enumerators (ENUM) are decoded for the hits only. Throws BtfScanError on malformed input.
 */
export function scanBtf(b: Uint8Array, queries: ReadonlyArray<{ kind: ScanKind; name: string }>): Map<string, ScanHit> {
  const h = rawBtfHeader(b);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const strAt = (off: number): string => {
    const p = h.strStart + off;
    if (p >= h.strEnd) throw new BtfScanError(`string offset ${off} outside the string section`);
    const e = buf.indexOf(0, p);
    return buf.toString('latin1', p, e < 0 || e > h.strEnd ? h.strEnd : e);
  };
  // name offset of each wanted name ("\0name\0" inside the string section; BTF strings are deduplicated)
  const wanted = new Map<number, Array<{ kind: number; key: string }>>();
  for (const q of queries) {
    const needle = Buffer.from(`\0${q.name}\0`, 'latin1');
    const at = buf.indexOf(needle, h.strStart);
    if (at < 0 || at + needle.length > h.strEnd) continue;
    const off = at + 1 - h.strStart;
    const list = wanted.get(off) ?? [];
    list.push({ kind: KIND_NO[q.kind], key: `${q.kind}:${q.name}` });
    wanted.set(off, list);
  }
  const out = new Map<string, ScanHit>();
  if (wanted.size === 0) return out;
  const le = h.le;
  const total = [...wanted.values()].reduce((n, l) => n + l.length, 0);
  // Fast path: little-endian data at a 4-byte aligned address is read through a Uint32Array.
  const aligned = le && (b.byteOffset + h.typeStart) % 4 === 0 && os.endianness() === 'LE';
  const words = aligned ? new Uint32Array(b.buffer, b.byteOffset + h.typeStart, (h.typeEnd - h.typeStart) >>> 2) : undefined;
  const word = (p: number): number => (words ? words[(p - h.typeStart) >>> 2]! : dv.getUint32(p, le));
  let p = h.typeStart;
  let id = 1;
  while (p < h.typeEnd) {
    if (p + 12 > h.typeEnd) throw new BtfScanError(`type ${id} extends past the type section`);
    const nameOff = word(p);
    const info = word(p + 4);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    const data = p + 12;
    let extra: number;
    switch (kind) {
      case 1: case 14: case 17: extra = 4; break;
      case 2: case 7: case 8: case 9: case 10: case 11: case 12: case 16: case 18: extra = 0; break;
      case 3: extra = 12; break;
      case 4: case 5: case 15: case 19: extra = 12 * vlen; break;
      case 6: case 13: extra = 8 * vlen; break;
      default: throw new BtfScanError(`type ${id}: unknown BTF kind ${kind}`);
    }
    if (data + extra > h.typeEnd) throw new BtfScanError(`type ${id} extends past the type section`);
    if (nameOff !== 0) {
      const hits = wanted.get(nameOff);
      if (hits) {
        for (const w of hits) {
          if (w.kind !== kind || out.has(w.key)) continue;
          const hit: ScanHit = { id };
          if (kind === 4) hit.members = Array.from({ length: vlen }, (_, k) => strAt(dv.getUint32(data + 12 * k, le)));
          if (kind === 6) hit.values = Array.from({ length: vlen }, (_, k) => [strAt(dv.getUint32(data + 8 * k, le)), dv.getInt32(data + 8 * k + 4, le)] as [string, number]);
          out.set(w.key, hit);
        }
        if (out.size === total) return out;
      }
    }
    p = data + extra;
    id++;
  }
  return out;
}

/** The .BTF section of an ELF file (vmlinux), or null if it has none. Reads only the headers and that section. */
export function elfBtfSection(sys: SystemView, file: string): Buffer | null {
  const eh = sys.readHead(file, 64);
  if (eh.length < 52 || eh.readUInt32BE(0) !== 0x7f454c46) throw new BtfScanError('not an ELF file');
  const is64 = eh[4] === 2;
  const le = eh[5] === 1;
  const u16 = (b: Buffer, o: number): number => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (b: Buffer, o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const u64 = (b: Buffer, o: number): number => Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
  const shoff = is64 ? u64(eh, 0x28) : u32(eh, 0x20);
  const shentsize = u16(eh, is64 ? 0x3a : 0x2e);
  const shnum = u16(eh, is64 ? 0x3c : 0x30);
  const shstrndx = u16(eh, is64 ? 0x3e : 0x32);
  if (shnum === 0 || shentsize < (is64 ? 64 : 40) || shstrndx >= shnum) throw new BtfScanError('no section headers');
  const sh = sys.readHead(file, shnum * shentsize, shoff);
  if (sh.length < shnum * shentsize) throw new BtfScanError('section headers truncated');
  const secOff = (i: number): number => (is64 ? u64(sh, i * shentsize + 0x18) : u32(sh, i * shentsize + 0x10));
  const secSize = (i: number): number => (is64 ? u64(sh, i * shentsize + 0x20) : u32(sh, i * shentsize + 0x14));
  const names = sys.readHead(file, Math.min(secSize(shstrndx), 1 << 20), secOff(shstrndx));
  for (let i = 0; i < shnum; i++) {
    const n = u32(sh, i * shentsize);
    if (n >= names.length) continue;
    const e = names.indexOf(0, n);
    if (names.toString('latin1', n, e < 0 ? names.length : e) !== '.BTF') continue;
    const size = secSize(i);
    if (size > 256 << 20) throw new BtfScanError(`.BTF section of ${size} bytes`);
    const bytes = sys.readHead(file, size, secOff(i));
    if (bytes.length < size) throw new BtfScanError('.BTF section truncated');
    rawBtfHeader(bytes);
    return bytes;
  }
  return null;
}

interface Inspected extends BtfCandidate {
  /** raw BTF bytes of a usable candidate */
  bytes?: Buffer;
}

function inspect(sys: SystemView, p: string): Inspected {
  let head: Buffer;
  try {
    head = sys.readHead(p, 4);
  } catch (err) {
    const code = errCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return { path: p, status: 'absent' };
    return { path: p, status: 'unreadable', detail: code };
  }
  try {
    if (head.length >= 4 && head.readUInt32BE(0) === 0x7f454c46) {
      const bytes = elfBtfSection(sys, p);
      return bytes ? { path: p, status: 'elf', bytes } : { path: p, status: 'elf-no-btf', detail: 'ELF without a .BTF section' };
    }
    const bytes = sys.readFile(p);
    rawBtfHeader(bytes);
    return { path: p, status: 'raw', bytes };
  } catch (err) {
    if (!(err instanceof BtfScanError)) return { path: p, status: 'unreadable', detail: errCode(err) };
    return { path: p, status: 'malformed', detail: err.message };
  }
}

export interface BtfOptions {
  /** an explicit vmlinux BTF file (libbpf's btf_custom_path) */
  customPath?: string;
  /** directory of the BTFHub-style cache (see btfhubPath) */
  cacheDir?: string | undefined;
}

/** `<cacheDir>/btfhub/<distro id>/<version id>/<arch>/<release>.btf` (BTFHub archive layout, unpacked) */
export function btfhubPath(cacheDir: string | undefined, distro: string | null, versionId: string | null, arch: string, release: string): string | null {
  if (!cacheDir || !distro || !versionId) return null;
  return path.posix.join(cacheDir.split(path.sep).join('/'), 'btfhub', distro, versionId, arch, `${release}.btf`);
}

export interface KernelBtf {
  /** the running kernel's own BTF (sysfs): the type ids fentry/lsm/tp_btf/struct_ops loads must name */
  bytes: Buffer | undefined;
  /** why there is none */
  reason: string;
}

/**
 * The BTF section of the report, plus the kernel's own BTF for the live probes' type ids (a custom or
 * BTFHub file serves CO-RE only: BPF trampolines need the BTF the kernel itself carries).
 */
export function readBtf(
  sys: SystemView,
  release: string,
  kc: Kconfig,
  opts: BtfOptions & { hubPath: string | null },
): { section: BtfSection; kernel: KernelBtf } {
  const searched: BtfCandidate[] = [];
  let sysfs: Inspected | undefined;
  const usable = (c: Inspected): boolean => c.status === 'raw' || c.status === 'elf';
  const record = (c: Inspected): Inspected => {
    searched.push({ path: c.path, status: c.status, ...(c.detail ? { detail: c.detail } : {}) });
    return c;
  };
  const pick = (source: BtfSection['vmlinux']['source'], c: Inspected): BtfSection['vmlinux'] => ({
    source,
    path: c.path,
    malformed: false,
    searched,
    state: 'yes',
    reason: `${source === 'sysfs' ? 'sysfs' : source === 'custom' ? 'custom path' : source === 'btfhub' ? 'BTFHub cache' : 'on disk'}: ${c.path}${c.status === 'elf' ? ' (ELF .BTF section)' : ''}`,
    method: 'file',
  });
  let vmlinux: BtfSection['vmlinux'] | undefined;
  let firstBad: Inspected | undefined;
  if (opts.customPath) {
    const c = record(inspect(sys, opts.customPath));
    if (usable(c)) vmlinux = pick('custom', c);
    else {
      vmlinux = {
        source: 'custom', path: c.path, malformed: c.status === 'malformed' || c.status === 'elf-no-btf', searched,
        state: 'no', reason: `custom BTF ${c.path}: ${c.status}${c.detail ? ` (${c.detail})` : ''}`, method: 'file',
      };
    }
  }
  if (!vmlinux) {
    const candidates: Array<[BtfSection['vmlinux']['source'], string]> = [
      ['sysfs', SYSFS_VMLINUX],
      ...libbpfDiskPaths(release).map((p): ['disk', string] => ['disk', p]),
      ...(opts.hubPath ? [['btfhub', opts.hubPath] as ['btfhub', string]] : []),
    ];
    for (const [source, p] of candidates) {
      const c = record(inspect(sys, p));
      if (source === 'sysfs') sysfs = c;
      if (usable(c)) {
        vmlinux = pick(source, c);
        break;
      }
      if (c.status !== 'absent') firstBad ??= c;
    }
  }
  if (!vmlinux) {
    const cfg = kc.on('CONFIG_DEBUG_INFO_BTF');
    vmlinux = firstBad
      ? {
          source: 'none', path: firstBad.path, malformed: firstBad.status !== 'unreadable', searched, state: 'no', method: 'file',
          reason: `${firstBad.path} is ${firstBad.status === 'unreadable' ? 'unreadable' : 'not usable BTF'}${firstBad.detail ? ` (${firstBad.detail})` : ''}`,
          fix: 'pass a vmlinux BTF file (BTFHub) with --btf',
        }
      : {
          source: 'none', path: null, malformed: false, searched, state: 'no', method: 'file',
          reason: `no vmlinux BTF (${cfg === false ? 'CONFIG_DEBUG_INFO_BTF is not set' : 'not in sysfs nor in any of libbpf\'s paths'})`,
          fix: 'use a kernel built with CONFIG_DEBUG_INFO_BTF, or fetch this kernel\'s BTF from BTFHub and pass it with --btf',
        };
  }
  let count = 0;
  let modules: BtfSection['modules'];
  try {
    count = sys.readdir('/sys/kernel/btf').filter((n) => n !== 'vmlinux').length;
    const cfg = kc.on('CONFIG_DEBUG_INFO_BTF_MODULES');
    modules =
      count > 0
        ? { count, state: 'yes', reason: `${count} module${count === 1 ? '' : 's'} with BTF in /sys/kernel/btf`, method: 'file' }
        : cfg === true
          ? { count, state: 'yes', reason: 'CONFIG_DEBUG_INFO_BTF_MODULES=y (no module loaded now)', method: 'file' }
          : { count, state: 'no', reason: cfg === false ? 'CONFIG_DEBUG_INFO_BTF_MODULES is not set' : 'no module BTF in /sys/kernel/btf', method: 'file' };
  } catch (err) {
    const code = errCode(err);
    modules = { count, state: 'no', reason: code === 'ENOENT' ? 'no module BTF (no /sys/kernel/btf)' : `/sys/kernel/btf: ${code}`, method: 'file' };
  }
  sysfs ??= inspect(sys, SYSFS_VMLINUX);
  const kernel: KernelBtf =
    sysfs.status === 'raw' && sysfs.bytes
      ? { bytes: sysfs.bytes, reason: SYSFS_VMLINUX }
      : {
          bytes: undefined,
          reason:
            sysfs.status === 'absent'
              ? `the kernel has no BTF of its own (no ${SYSFS_VMLINUX}${kc.on('CONFIG_DEBUG_INFO_BTF') === false ? ': CONFIG_DEBUG_INFO_BTF is not set' : ''})`
              : `${SYSFS_VMLINUX} is ${sysfs.status}${sysfs.detail ? ` (${sysfs.detail})` : ''}`,
        };
  return { section: { vmlinux, modules, btfhubPath: opts.hubPath }, kernel };
}
