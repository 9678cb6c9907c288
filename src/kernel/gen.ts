// Generates src/kernel/uapi.ts, the one source of kernel constants, from the uapi headers installed on
// this machine (linux/bpf.h, btf.h, perf_event.h, capability.h, if_link.h, asm-generic/errno*.h). Regenerate: `node --import=tsx src/kernel/gen.ts`;
// test/kernel-constants.test.ts fails when the committed module differs from what this writes.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** the header texts the module is generated from */
export interface UapiHeaders {
  /** e.g. '6.1.192' (linux/version.h) */
  version: string;
  bpf: string;
  errnoBase: string;
  errno: string;
  btf: string;
  perf: string;
  capability: string;
  ifLink: string;
}

export function readHeaders(root = '/usr/include'): UapiHeaders {
  const read = (p: string): string => fs.readFileSync(path.join(root, p), 'utf8');
  const v = read('linux/version.h');
  const part = (n: string): string => new RegExp(`#define LINUX_VERSION_${n} (\\d+)`).exec(v)?.[1] ?? '?';
  return {
    version: `${part('MAJOR')}.${part('PATCHLEVEL')}.${part('SUBLEVEL')}`,
    bpf: read('linux/bpf.h'),
    errnoBase: read('asm-generic/errno-base.h'),
    errno: read('asm-generic/errno.h'),
    btf: read('linux/btf.h'),
    perf: read('linux/perf_event.h'),
    capability: read('linux/capability.h'),
    ifLink: read('linux/if_link.h'),
  };
}

/**
 * Values newer than the installed headers (Debian 12's are 6.1) that the code uses. Each is checked
 * against the headers when they have it: a newer header must agree, and then takes over.
 */
const NEWER = {
  PROG_TYPE: { NETFILTER: [32, '6.4'] },
  MAP_TYPE: { CGRP_STORAGE: [32, '6.2'], ARENA: [33, '6.9'] },
  ATTACH_TYPE: { STRUCT_OPS: [44, '6.4'], NETFILTER: [45, '6.4'], TCX_INGRESS: [46, '6.6'], TCX_EGRESS: [47, '6.6'], TRACE_UPROBE_MULTI: [48, '6.6'] },
  HELPER: { cgrp_storage_get: [210, '6.2'], cgrp_storage_delete: [211, '6.2'] },
  BPF_F: { LINK: [1 << 13, '6.4'] },
} satisfies Record<string, Record<string, [number, string]>>;

/**
 * Kernel-internal errnos (include/linux/errno.h, not in uapi) that bpf() returns to user space: typed by
 * hand. ENOTSUPP is what map and program operations answer for "not supported" inside the kernel.
 */
const KERNEL_ERRNO: Record<string, number> = { ENOTSUPP: 524 };

function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/[^\n]*/g, ' ');
}

/** the members of `enum <name> { ... }`: implicit increments, `= N` and `= OTHER` aliases; no sentinels (__X, MAX_X, X_MAX) */
export function parseEnum(src: string, name: string, prefix: string): Map<string, number> {
  const m = new RegExp(`enum ${name}\\s*\\{([^}]*)\\}`).exec(stripComments(src));
  if (!m) throw new Error(`enum ${name} not found`);
  const out = new Map<string, number>();
  const all = new Map<string, number>();
  let next = 0;
  for (const raw of m[1]!.split(',')) {
    const item = raw.trim();
    if (!item) continue;
    const [, id, expr] = /^(\w+)\s*(?:=\s*(.+))?$/.exec(item) ?? [];
    if (!id) throw new Error(`enum ${name}: cannot read '${item}'`);
    const v = expr === undefined ? next : all.has(expr.trim()) ? all.get(expr.trim())! : Number(expr.trim());
    if (!Number.isInteger(v)) throw new Error(`enum ${name}: cannot evaluate '${item}'`);
    all.set(id, v);
    next = v + 1;
    if (id.startsWith('__') || id.startsWith('MAX_') || id.endsWith('_MAX') || !id.startsWith(prefix)) continue;
    out.set(id.slice(prefix.length), v);
  }
  return out;
}

/** __BPF_FUNC_MAPPER's FN(name) or FN(name, id, ...) entries, by id */
export function parseHelpers(src: string): Map<string, number> {
  const m = /#define ___?BPF_FUNC_MAPPER\(FN[^)]*\)((?:[^\n]*\\\n)+[^\n]*)/.exec(src);
  if (!m) throw new Error('__BPF_FUNC_MAPPER not found');
  const out = new Map<string, number>();
  let next = 0;
  for (const f of stripComments(m[1]!).matchAll(/\bFN\(\s*(\w+)\s*(?:,\s*(\d+))?/g)) {
    const id = f[2] === undefined ? next : Number(f[2]);
    out.set(f[1]!, id);
    next = id + 1;
  }
  return out;
}

/** BPF_F_* (or another prefix's) constants, as #defines or enum members: `(1U << n)`, `0xfULL`, `N`, `(-1L)`, `OTHER`, `A | B`; no X_MAX */
export function parseFlags(src: string, prefix = 'BPF_F_'): Map<string, number> {
  const out = new Map<string, number>();
  const text = stripComments(src).replace(/\\\n/g, ' '); // a #define continued on the next line
  const evaluate = (expr: string): number | undefined => {
    const e = expr.trim().replace(/^\((.*)\)$/, '$1').trim();
    if (e.startsWith(prefix) && /^\w+$/.test(e)) return out.get(e.slice(prefix.length));
    if (e.includes('|')) {
      const parts = e.split('|').map(evaluate);
      return parts.every((p) => p !== undefined) ? parts.reduce((a, p) => a! + p! - (a! & p!), 0) : undefined;
    }
    const shift = /^(0x[0-9a-fA-F]+|\d+)U?L{0,2}\s*<<\s*(\d+)$/.exec(e);
    if (shift) return Number(BigInt(shift[1]!) << BigInt(shift[2]!));
    const lit = /^(-?(?:0x[0-9a-fA-F]+|\d+))U?L{0,2}$/.exec(e);
    if (lit) return Number(BigInt(lit[1]!));
    return undefined;
  };
  const re = new RegExp(`(?:#define\\s+(${prefix}\\w+)[ \\t]+([^\\n]+)|\\b(${prefix}\\w+)\\s*=\\s*([^,}\\n]+))`, 'g');
  for (const d of text.matchAll(re)) {
    const name = d[1] ?? d[3]!;
    if (name.endsWith('_MAX')) continue; // a sentinel (BTF_KIND_MAX = NR_BTF_KINDS - 1)
    const v = evaluate(d[2] ?? d[4]!);
    if (v === undefined) throw new Error(`cannot evaluate ${name}`);
    const key = name.slice(prefix.length);
    if (out.has(key) && out.get(key) !== v) throw new Error(`${name} defined twice`);
    out.set(key, v);
  }
  return out;
}

/** every E* of errno-base.h + errno.h (aliases such as EWOULDBLOCK resolved), then the kernel's own */
export function parseErrno(...srcs: string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const src of srcs) {
    for (const d of src.matchAll(/^#define\s+(E[A-Z0-9]+)\s+(\d+|E[A-Z0-9]+)\b/gm)) {
      const v = /^\d+$/.test(d[2]!) ? Number(d[2]) : out.get(d[2]!);
      if (v === undefined) throw new Error(`${d[1]}: unknown alias ${d[2]}`);
      out.set(d[1]!, v);
    }
  }
  for (const [n, v] of Object.entries(KERNEL_ERRNO)) if (!out.has(n)) out.set(n, v);
  return out;
}

/** the header's entries, then NEWER's that it lacks (marked); a disagreement is an error */
function withNewer(table: Map<string, number>, newer: Record<string, [number, string]>, what: string): Map<string, number | [number, string]> {
  const out = new Map<string, number | [number, string]>(table);
  for (const [name, [id, since]] of Object.entries(newer)) {
    const have = table.get(name);
    if (have !== undefined && have !== id) throw new Error(`${what} ${name}: the headers say ${have}, NEWER says ${id}`);
    if (have === undefined) out.set(name, [id, since]);
  }
  return out;
}

function objectLiteral(name: string, doc: string, entries: Map<string, number | [number, string]>, hex = false): string {
  const lines = [`/** ${doc} */`, `export const ${name} = {`];
  for (const [k, e] of entries) {
    const [v, since] = typeof e === 'number' ? [e, undefined] : e;
    const num = hex && v > 9 ? `0x${v.toString(16)}` : String(v);
    lines.push(`  ${k}: ${num},${since ? ` // Linux ${since}: newer than these headers (src/kernel/gen.ts NEWER)` : ''}`);
  }
  lines.push('} as const;', '');
  return lines.join('\n');
}

export function generate(h: UapiHeaders): string {
  const helpers = withNewer(parseHelpers(h.bpf), NEWER.HELPER, 'helper');
  const byId: string[] = [];
  for (const [n, e] of helpers) byId[typeof e === 'number' ? e : e[0]] = n;
  const errno = parseErrno(h.errnoBase, h.errno);
  const errnoByValue = new Map<number, string>();
  // the first name defined for a value (EAGAIN, not its alias EWOULDBLOCK)
  for (const [n, v] of errno) if (!errnoByValue.has(v)) errnoByValue.set(v, n);
  const update = new Map([...parseEnum(h.bpf.replace(/enum\s*\{(\s*BPF_ANY)/, 'enum bpf_update_flags {$1'), 'bpf_update_flags', 'BPF_')].filter(([n]) => !n.startsWith('F_')));
  return [
    `// Kernel constants: generated by \`node --import=tsx src/kernel/gen.ts\` from the uapi headers of Linux`,
    `// ${h.version} (/usr/include/linux/bpf.h, btf.h, perf_event.h, capability.h, if_link.h, asm-generic/errno-base.h, errno.h); do not edit.`,
    '',
    `/** the linux-libc-dev headers this was generated from */`,
    `export const UAPI_VERSION = '${h.version}';`,
    '',
    objectLiteral('BPF_CMD', 'enum bpf_cmd (BPF_MAP_CREATE -> MAP_CREATE)', parseEnum(h.bpf, 'bpf_cmd', 'BPF_')),
    objectLiteral('PROG_TYPE', 'enum bpf_prog_type (BPF_PROG_TYPE_KPROBE -> KPROBE)', withNewer(parseEnum(h.bpf, 'bpf_prog_type', 'BPF_PROG_TYPE_'), NEWER.PROG_TYPE, 'prog type')),
    objectLiteral('MAP_TYPE', 'enum bpf_map_type (BPF_MAP_TYPE_RINGBUF -> RINGBUF)', withNewer(parseEnum(h.bpf, 'bpf_map_type', 'BPF_MAP_TYPE_'), NEWER.MAP_TYPE, 'map type')),
    objectLiteral('ATTACH_TYPE', 'enum bpf_attach_type (BPF_TRACE_FENTRY -> TRACE_FENTRY)', withNewer(parseEnum(h.bpf, 'bpf_attach_type', 'BPF_'), NEWER.ATTACH_TYPE, 'attach type')),
    objectLiteral('LINK_TYPE', 'enum bpf_link_type (BPF_LINK_TYPE_PERF_EVENT -> PERF_EVENT)', parseEnum(h.bpf, 'bpf_link_type', 'BPF_LINK_TYPE_')),
    objectLiteral('BPF_UPDATE', 'BPF_MAP_UPDATE_ELEM flags (BPF_ANY, BPF_NOEXIST, BPF_EXIST; BPF_F_LOCK is BPF_F.LOCK)', update),
    objectLiteral('BPF_F', 'every BPF_F_* flag (BPF_F_SLEEPABLE -> SLEEPABLE); values >= 2^32 are exact but not for JS bitwise operators', withNewer(parseFlags(h.bpf), NEWER.BPF_F, 'flag'), true),
    objectLiteral('BPF_PSEUDO', 'BPF_PSEUDO_* (src_reg of ld_imm64 and call instructions: BPF_PSEUDO_MAP_FD -> MAP_FD)', parseFlags(h.bpf, 'BPF_PSEUDO_')),
    objectLiteral('BPF_RB', 'BPF_RB_* (ring buffer output flags and bpf_ringbuf_query fields: BPF_RB_NO_WAKEUP -> NO_WAKEUP)', parseFlags(h.bpf, 'BPF_RB_')),
    objectLiteral('HELPER', 'enum bpf_func_id, from __BPF_FUNC_MAPPER (BPF_FUNC_map_lookup_elem -> map_lookup_elem)', helpers),
    `/** helper names by id */`,
    `export const HELPER_NAME: readonly string[] = [`,
    ...Array.from({ length: Math.ceil(byId.length / 8) }, (_, i) => `  ${byId.slice(i * 8, i * 8 + 8).map((n) => `'${n}',`).join(' ')}`),
    '];',
    '',
    objectLiteral('BTF_KIND', 'BTF_KIND_* (linux/btf.h: BTF_KIND_STRUCT -> STRUCT)', parseFlags(h.btf, 'BTF_KIND_')),
    objectLiteral('PERF_TYPE', 'enum perf_type_id (linux/perf_event.h: PERF_TYPE_SOFTWARE -> SOFTWARE)', parseEnum(h.perf, 'perf_type_id', 'PERF_TYPE_')),
    objectLiteral('PERF_COUNT_SW', 'enum perf_sw_ids (PERF_COUNT_SW_CPU_CLOCK -> CPU_CLOCK)', parseEnum(h.perf, 'perf_sw_ids', 'PERF_COUNT_SW_')),
    objectLiteral('CAP', 'capability numbers (linux/capability.h: CAP_BPF -> BPF)', parseFlags(h.capability, 'CAP_')),
    objectLiteral('XDP_FLAGS', 'XDP attach flags (linux/if_link.h: XDP_FLAGS_SKB_MODE -> SKB_MODE)', parseFlags(h.ifLink, 'XDP_FLAGS_'), true),
    objectLiteral('ERRNO', 'every errno (asm-generic/errno-base.h, errno.h; aliases resolved) and the kernel-internal ones bpf() returns', errno),
    `/** errno names by value (the first name defined for it: EAGAIN, not EWOULDBLOCK) */`,
    `export const ERRNO_NAME: Readonly<Record<number, string>> = {`,
    ...[...errnoByValue].sort((a, b) => a[0] - b[0]).map(([v, n]) => `  ${v}: '${n}',`),
    '};',
    '',
  ].join('\n');
}

export const UAPI_MODULE = fileURLToPath(new URL('./uapi.ts', import.meta.url));

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const root = process.argv[2] ?? '/usr/include';
  fs.writeFileSync(UAPI_MODULE, generate(readHeaders(root)));
  process.stdout.write(`wrote ${UAPI_MODULE} from ${root}\n`);
}
