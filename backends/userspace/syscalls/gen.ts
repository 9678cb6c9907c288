// Generates the built-in syscall tables (tables/x86_64.ts, tables/arm64.ts): every syscall's number, name and
// arguments and every covered event's context layout. x86_64 from this host's tracefs, arm64 from the formats
// saved from the arm64 guest (data/arm64-6.1.formats); numbers from the uapi unistd headers (+ NEWER below).
// Regenerate: `node --import=tsx backends/userspace/syscalls/gen.ts [x86_64|arm64]`; test/syscall-tables.test.ts
// fails when a committed table differs from what this writes.
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { categoryOf, parseFormats, type EventFormat } from './format.js';
import { compact, syscallEventFields, type Arch, type SyscallTable } from './table.js';
import { coveredEvents, readEventFormat, tracefsRoot } from './tracefs.js';
import { hostArch } from './host.js';

/** tracefs names whose unistd name differs (SYSCALL_DEFINE(newfstat) is __NR_fstat, ...) */
export const ALIASES: Readonly<Record<string, string>> = {
  newfstat: 'fstat',
  newlstat: 'lstat',
  newstat: 'stat',
  newuname: 'uname',
  umount: 'umount2',
  sendfile64: 'sendfile',
  arm64_personality: 'personality',
};

/**
 * Syscalls newer than the installed headers (Debian 12's are 6.1), from the kernel's syscall tables
 * (arch/x86/entry/syscalls/syscall_64.tbl, scripts/syscall.tbl): since 424 every arch shares the numbers.
 * A header that has one must agree.
 */
export const NEWER: Readonly<Record<Arch, Readonly<Record<string, number>>>> = (() => {
  const common: Record<string, number> = {
    cachestat: 451, fchmodat2: 452, map_shadow_stack: 453, futex_wake: 454, futex_wait: 455, futex_requeue: 456,
    statmount: 457, listmount: 458, lsm_get_self_attr: 459, lsm_set_self_attr: 460, lsm_list_modules: 461,
    mseal: 462, setxattrat: 463, getxattrat: 464, listxattrat: 465, removexattrat: 466, open_tree_attr: 467,
    file_getattr: 468, file_setattr: 469,
  };
  return { x86_64: { ...common, uretprobe: 335, uprobe: 336 }, arm64: common };
})();

export const HEADERS: Readonly<Record<Arch, string>> = {
  x86_64: '/usr/include/x86_64-linux-gnu/asm/unistd_64.h',
  arm64: '/usr/include/asm-generic/unistd.h',
};

export const ARM64_FORMATS = fileURLToPath(new URL('./data/arm64-6.1.formats', import.meta.url));
export const ARM64_KERNEL = '6.1.0-57-arm64';

export function tableModule(arch: Arch): string {
  return fileURLToPath(new URL(`./tables/${arch}.ts`, import.meta.url));
}

/** `#define __NR_name N`, `__NR3264_name N` and `__NR_name __NR3264_other` (the 64-bit reading of asm-generic) */
export function parseUnistd(text: string): Map<string, number> {
  const direct = new Map<string, number>();
  const n3264 = new Map<string, number>();
  const set = (m: Map<string, number>, name: string, nr: number): void => {
    const had = m.get(name);
    if (had !== undefined && had !== nr) throw new Error(`unistd header defines ${name} as ${had} and ${nr}`);
    m.set(name, nr);
  };
  for (const m of text.matchAll(/^#define __NR(3264)?_([a-z0-9_]+)\s+(\d+)\s*$/gm)) set(m[1] ? n3264 : direct, m[2]!, Number(m[3]));
  for (const m of text.matchAll(/^#define __NR_([a-z0-9_]+)\s+__NR3264_([a-z0-9_]+)\s*$/gm)) {
    const nr = n3264.get(m[2]!);
    if (nr !== undefined) set(direct, m[1]!, nr);
  }
  for (const [name, nr] of n3264) if (!direct.has(name)) direct.set(name, nr);
  return direct;
}

export function numbers(arch: Arch, header: string): Map<string, number> {
  const nrs = parseUnistd(header);
  for (const [name, nr] of Object.entries(NEWER[arch])) {
    const had = nrs.get(name);
    if (had !== undefined && had !== nr) throw new Error(`${arch}: the header numbers ${name} ${had}, NEWER says ${nr}: fix NEWER`);
    nrs.set(name, nr);
  }
  return nrs;
}

const eq = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/** the table from a set of event formats (keys 'category/name') and the numbers */
export function buildTable(arch: Arch, kernel: string, source: string, events: Map<string, EventFormat>, nrs: Map<string, number>): SyscallTable {
  let header: string[] | undefined;
  const syscalls: Record<string, [number, ...string[]]> = {};
  const others: Record<string, string[]> = {};
  const keys = [...events.keys()].sort();
  for (const key of keys) {
    const ev = events.get(key)!;
    const fields = ev.fields.map(compact);
    const common = fields.filter((f) => / common_[a-z_]+;/.test(f));
    header ??= common;
    if (!eq(common, header)) throw new Error(`${key}: common header ${common.join(' | ')} differs from ${header.join(' | ')}`);
    const rest = fields.slice(common.length);
    const m = /^syscalls\/sys_(enter|exit)_(.+)$/.exec(key);
    if (!m) {
      others[key] = rest;
      continue;
    }
    const [, dir, name] = m as unknown as [string, string, string];
    if (dir === 'exit') continue;
    const args = ev.fields.slice(common.length + 1).map((f) => f.decl);
    if (!eq(rest, syscallEventFields(args, false))) throw new Error(`${key} breaks the syscall event rule: ${rest.join(' | ')}`);
    const exit = events.get(`syscalls/sys_exit_${name}`);
    if (!exit) throw new Error(`${key} has no sys_exit_${name}`);
    if (!eq(exit.fields.map(compact).slice(common.length), syscallEventFields([], true))) throw new Error(`syscalls/sys_exit_${name} breaks the syscall event rule`);
    const nr = nrs.get(ALIASES[name] ?? name) ?? nrs.get(name);
    if (nr === undefined) throw new Error(`${arch}: no number for syscall '${name}' (not in the unistd header, not in NEWER)`);
    syscalls[name] = [nr, ...args];
  }
  for (const key of keys) {
    const m = /^syscalls\/sys_exit_(.+)$/.exec(key);
    if (m && !syscalls[m[1]!]) throw new Error(`${key} has no sys_enter_${m[1]}`);
  }
  if (!header) throw new Error(`${arch}: no events`);
  return { arch, kernel, source, header, syscalls, events: others };
}

/** this host's tracefs, every covered event */
export function hostEvents(root: string): Map<string, EventFormat> {
  const out = new Map<string, EventFormat>();
  for (const key of coveredEvents(root)) {
    const [cat, name] = key.split('/') as [string, string];
    const ev = readEventFormat(root, cat, name);
    if (ev) out.set(key, ev);
  }
  return out;
}

/** formats saved from a guest (data/*.formats), keyed by their category */
export function savedEvents(text: string): Map<string, EventFormat> {
  const out = new Map<string, EventFormat>();
  for (const ev of parseFormats(text)) out.set(`${categoryOf(ev.name)}/${ev.name}`, ev);
  return out;
}

/** the table of an arch from its sources on this machine */
export function sourceTable(arch: Arch): SyscallTable {
  const header = fs.readFileSync(HEADERS[arch], 'utf8');
  if (arch === 'arm64') {
    return buildTable(arch, ARM64_KERNEL, `tracefs of the arm64 guest (${ARM64_KERNEL}: data/arm64-6.1.formats) + ${HEADERS.arm64} (64-bit) + NEWER`, savedEvents(fs.readFileSync(ARM64_FORMATS, 'utf8')), numbers(arch, header));
  }
  if (hostArch() !== arch) throw new Error(`the ${arch} table is generated on an ${arch} host (from its tracefs)`);
  const root = tracefsRoot();
  if (!root) throw new Error('tracefs is not mounted or not readable: mount -t tracefs nodev /sys/kernel/tracing (as root)');
  return buildTable(arch, os.release(), `tracefs of this host (${os.release()}) + ${HEADERS[arch]} + NEWER`, hostEvents(root), numbers(arch, header));
}

const q = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

export function generate(table: SyscallTable): string {
  const lines = [
    `// The built-in ${table.arch} syscall table: generated by \`node --import=tsx backends/userspace/syscalls/gen.ts ${table.arch}\`; do not edit.`,
    `// Numbers, arguments and context layouts of Linux ${table.kernel}; layout.ts prefers the running kernel's tracefs.`,
    `import type { SyscallTable } from '../table.js';`,
    '',
    'export const TABLE: SyscallTable = {',
    `  arch: ${q(table.arch)},`,
    `  kernel: ${q(table.kernel)},`,
    `  source: ${q(table.source)},`,
    `  header: [${table.header.map(q).join(', ')}],`,
    '  syscalls: {',
    ...Object.entries(table.syscalls).map(([name, [nr, ...args]]) => `    ${name}: [${[String(nr), ...args.map(q)].join(', ')}],`),
    '  },',
    '  events: {',
    ...Object.entries(table.events).map(([key, fields]) => `    ${q(key)}: [${fields.map(q).join(', ')}],`),
    '  },',
    '};',
    '',
  ];
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arches = (process.argv[2] ? [process.argv[2]] : ['x86_64', 'arm64']) as Arch[];
  for (const arch of arches) {
    fs.mkdirSync(new URL('./tables/', import.meta.url), { recursive: true });
    fs.writeFileSync(tableModule(arch), generate(sourceTable(arch)));
    process.stdout.write(`wrote ${tableModule(arch)}\n`);
  }
}
