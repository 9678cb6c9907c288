// Human output of a report: sections, aligned columns, the reason on every line that is not 'yes'.
// Colours only when asked (the CLI asks when stdout is a TTY and NO_COLOR is unset or empty), in the palette
// every command uses (src/style.ts).
import type { Check, Feature, Report, State, SysctlValue } from './types.js';
import { ATTACH_DEFS, FEATURE_DEFS } from './tables.js';
import { painter } from '../style.js';

export interface FormatOptions {
  color: boolean;
  /** terminal width for wrapped lists */
  width?: number;
  /** the report came from the cache: the header says when it was made instead of timing it as now */
  cached?: boolean;
}

export { useColor } from '../style.js';

export function formatReport(r: Report, opts: FormatOptions): string {
  const paint = painter(opts.color);
  const stateWord = (s: State): string => paint(s.padEnd(7), s === 'yes' ? 'green' : s === 'no' ? 'red' : 'yellow');
  const width = opts.width ?? 100;
  const out: string[] = [];
  const head = (title: string, extra = ''): void => {
    out.push('');
    out.push(paint(title, 'bold') + (extra ? `  ${paint(extra, 'dim')}` : ''));
  };
  const kv = (k: string, v: string, w = 26): void => {
    out.push(`  ${k.padEnd(w)} ${v}`);
  };
  const check = (k: string, c: Check & { since?: string }, yesText: string | undefined, w = 16): void => {
    let line = `  ${k.padEnd(w)} ${stateWord(c.state)} `;
    if (c.state === 'yes') line += yesText ?? c.reason;
    else {
      line += c.reason;
      if (c.fix) line += paint(`  → ${c.fix}`, 'cyan');
    }
    out.push(line.trimEnd());
  };
  const sysctl = (v: SysctlValue): string => (v.value === null ? paint(`unknown (${v.meaning})`, 'yellow') : `${v.value}${v.meaning ? ` (${v.meaning})` : ''}`);

  const s = r.system;
  const distro = s.distro.id ? `${s.distro.prettyName ?? s.distro.id}` : 'unknown distro';
  out.push(
    paint('wasm-bpf probe', 'bold') +
      ` — ${s.platform === 'linux' ? 'Linux' : s.platform} ${s.kernel.release} ${s.arch.normalized}, ${distro}` +
      paint(
        `  [${r.mode}${r.mode === 'fixture' ? `: ${r.root}` : ''}, ` +
          (opts.cached ? `cached answer, probed ${r.generatedAt} in ${r.durationMs} ms; --no-cache to probe again]` : `${r.durationMs} ms]`),
        'dim',
      ),
  );

  head('System');
  kv('platform', s.platform);
  kv('distro', s.distro.id ? `${s.distro.id} ${s.distro.versionId ?? '?'}${s.distro.codename ? ` (${s.distro.codename})` : ''}` : paint(`unknown (${s.distro.reason})`, 'yellow'));
  kv('arch', `${s.arch.machine}${s.arch.machine !== s.arch.normalized ? ` (${s.arch.normalized})` : ''}`);
  kv('kernel', `${s.kernel.release}${s.kernel.version ? ` (version ${s.kernel.version}, code ${s.kernel.code})` : ''}`);
  if (s.bootId) kv('boot id', s.bootId);

  const p = r.privileges;
  head('Privileges');
  kv('uid', p.uid === null ? 'unknown' : String(p.uid));
  const caps = Object.entries(p.capabilities.has)
    .map(([c, v]) => `${c} ${v === null ? paint('?', 'yellow') : v ? paint('yes', 'green') : paint('no', 'red')}`)
    .join('  ');
  kv('capabilities', `${caps}${p.capabilities.effective ? paint(`  (CapEff ${p.capabilities.effective})`, 'dim') : ''}`);
  if (p.capabilities.note) kv('', paint(p.capabilities.note, 'dim'));
  kv('unprivileged_bpf_disabled', sysctl(p.unprivilegedBpfDisabled));
  kv('bpf_jit_enable', sysctl(p.jit.enable));
  kv('bpf_jit_harden', sysctl(p.jit.harden));
  kv('bpf_jit_kallsyms', sysctl(p.jit.kallsyms));
  kv('bpf_jit_limit', sysctl(p.jit.limit));
  kv('perf_event_paranoid', sysctl(p.perfEventParanoid));
  kv('lockdown', p.lockdown.mode !== null ? `${p.lockdown.mode}${p.lockdown.source !== 'securityfs' ? paint(` (${p.lockdown.reason})`, 'dim') : ''}` : paint(`unknown (${p.lockdown.reason})`, 'yellow'));
  kv('active LSMs', p.lsms.active ? `${p.lsms.active.join(',')}${p.lsms.state !== 'yes' ? paint(` (${p.lsms.reason})`, 'yellow') : paint(` (${p.lsms.reason})`, 'dim')}` : paint(`unknown (${p.lsms.reason})`, 'yellow'));

  const k = r.kconfig;
  head('Kernel config', k.status === 'found' ? `${k.path ?? ''} (CONFIG_ omitted)` : '');
  if (k.status !== 'found') {
    check('config', k, undefined);
  } else {
    const entries = Object.entries(k.options).map(([n, v]): [string, string | null] => [n.replace(/^CONFIG_/, ''), v]);
    const shown = (v: string | null): string => {
      const val = v === null ? 'not found' : v;
      return val === 'n' ? paint('n', 'red') : val === 'y' || val === 'm' ? paint(val, 'green') : val;
    };
    const short = entries.filter(([, v]) => (v ?? '').length <= 6);
    const long = entries.filter(([, v]) => (v ?? '').length > 6);
    const nameW = Math.max(...entries.map(([n]) => n.length)) + 1;
    const cellW = nameW + 7;
    const perLine = Math.max(1, Math.floor((Math.max(width, 80) - 2) / cellW));
    for (let i = 0; i < short.length; i += perLine) {
      const cells = short.slice(i, i + perLine).map(([n, v]) => `${n.padEnd(nameW)}${shown(v)}${' '.repeat(7 - (v ?? '').length)}`);
      out.push(`  ${cells.join('').trimEnd()}`);
    }
    for (const [n, v] of long) out.push(`  ${n.padEnd(nameW)}${shown(v)}`);
  }

  head('BTF');
  check('vmlinux', r.btf.vmlinux, r.btf.vmlinux.reason);
  check('modules', r.btf.modules, r.btf.modules.reason);
  if (r.btf.btfhubPath) kv('BTFHub cache', r.btf.btfhubPath, 16);

  const table = (title: string, entries: Record<string, Feature>): void => {
    const all = Object.values(entries);
    const [first] = all;
    if (first && all.length > 1 && all.every((f) => f.state !== 'yes' && f.reason === first.reason)) {
      head(title);
      check('(all)', first, undefined);
      return;
    }
    const yes = Object.entries(entries).filter(([, f]) => f.state === 'yes');
    const inferred = yes.some(([, f]) => f.method === 'inferred');
    head(title, `${yes.length}/${Object.keys(entries).length} available${inferred ? ' (inferred from the kernel version)' : ''}`);
    if (yes.length) {
      let line = '  ';
      for (const [n] of yes) {
        if (line.length + n.length + 1 > width) {
          out.push(line.trimEnd());
          line = '  ';
        }
        line += `${paint(n, 'green')} `;
      }
      out.push(line.trimEnd());
    }
    const w = Math.max(16, ...Object.keys(entries).map((n) => n.length));
    for (const [n, f] of Object.entries(entries)) if (f.state !== 'yes') check(n, f, undefined, w);
  };
  table('Program types', r.progTypes);
  table('Map types', r.mapTypes);

  const list = (title: string, entries: Record<string, Feature>, what: Record<string, { what: string }>): void => {
    const all = Object.values(entries);
    const [first] = all;
    if (first && all.length > 1 && all.every((f) => f.state !== 'yes' && f.reason === first.reason)) {
      head(title);
      check('(all)', first, undefined);
      return;
    }
    head(title);
    const w = Math.max(...Object.keys(entries).map((n) => n.length));
    for (const [n, f] of Object.entries(entries)) {
      check(n, { ...f, reason: f.state === 'yes' ? f.reason : `${f.reason}${f.state === 'no' && !f.reason.includes('needs Linux') ? paint(` [${what[n]?.what ?? n}; Linux ${f.since}+]`, 'dim') : ''}` }, f.reason, w);
    }
  };
  list('Attach mechanisms', r.attach, ATTACH_DEFS);
  list('Features', r.features, FEATURE_DEFS);

  if (r.helpers) {
    head('Helpers', 'per program type');
    for (const [prog, table2] of Object.entries(r.helpers)) {
      const all = Object.entries(table2);
      const yes = all.filter(([, c]) => c.state === 'yes').length;
      const unk = all.filter(([, c]) => c.state === 'unknown');
      if (unk.length === all.length) {
        out.push(`  ${prog.padEnd(24)} ${stateWord('unknown')} ${all[0]?.[1].reason ?? ''}`);
        continue;
      }
      out.push(`  ${prog.padEnd(24)} ${yes}/${all.length} helpers`);
    }
  }

  head('Backends');
  for (const [n, b] of Object.entries(r.backends)) {
    check(n, b, b.reason, 10);
    if (b.kernelPath) kv('  via', `${b.kernelPath.path === 'ffi' ? 'libbpf through FFI' : 'the native addon'}: ${b.kernelPath.reason}`, 10);
  }

  const w = r.windows;
  if (w) {
    head('Windows', 'eBPF for Windows');
    check('os', w.os, w.os.reason);
    check('arch', w.arch, w.arch.reason);
    check('eBPF for Windows', w.ebpf, w.ebpf.reason);
    for (const [n, c] of Object.entries(w.ebpf.services)) check(`  ${n}`, c, c.reason);
    check('execution', w.execution, w.execution.reason);
    const list = (t: Record<string, Check>, state: State): string => Object.entries(t).filter(([, c]) => c.state === state).map(([n]) => n).join(', ') || 'none';
    kv('program types', `${paint('yes', 'green')} ${list(w.progTypes, 'yes')}; ${paint('no', 'red')} ${list(w.progTypes, 'no')}${Object.values(w.progTypes).some((c) => c.state === 'unknown') ? `; ${paint('unknown', 'yellow')} ${list(w.progTypes, 'unknown')}` : ''}`, 16);
    kv('map types', `${paint(list(w.mapTypes, 'yes') === 'none' ? 'none' : 'yes', 'green')} ${list(w.mapTypes, 'yes')}`, 16);
  }

  const u = r.userspace;
  head('Userspace backend', 'attaching in live processes');
  kv('attaches', u.attaches.length ? u.attaches.join(', ') : 'no program kind in this build', 16);
  check('arch', u.arch, u.arch.reason);
  check('agent', u.agent, u.agent.reason);
  check('ptrace', u.ptrace, u.ptrace.reason);
  check('LD_PRELOAD', u.preload, u.preload.reason);
  check('join (--pid)', u.join, u.join.reason);
  check('process_vm_readv', u.processVmReadv, u.processVmReadv.reason);
  out.push('');
  return out.join('\n');
}
