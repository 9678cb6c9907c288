// The Windows report (./types.ts) from the commands' outputs and the file probes: pure, so recorded
// outputs (test fixtures) give the same answers a Windows host would.
import type { Check } from '../types.js';
import type { CommandRecord, ServiceCheck, WindowsReport, WindowsService } from './types.js';
import { parseRegQuery, parseScQuery, regNumber, regValue } from './parse.js';
import type { Outputs } from './commands.js';
import { SERVICES } from './commands.js';
import { WIN_MAP_TYPE, WIN_PROG_TYPE } from '../../kernel/ebpf-windows.js';

/** Windows Server 2022's build: eBPF for Windows needs it or Windows 11 (22000) or later */
export const MIN_BUILD = 20348;

/** program type names as extensions register them (ebpf_program_info_t's name) -> eBPF for Windows' bpf_prog_type */
export const REGISTERED_PROG_TYPES: Readonly<Record<string, number>> = {
  xdp: WIN_PROG_TYPE.XDP,
  bind: WIN_PROG_TYPE.BIND,
  sock_addr: WIN_PROG_TYPE.CGROUP_SOCK_ADDR,
  sockops: WIN_PROG_TYPE.SOCK_OPS,
  netevent: WIN_PROG_TYPE.NETEVENT,
  process: WIN_PROG_TYPE.PROCESS,
};

export interface WindowsInputs {
  outputs: Outputs;
  records: CommandRecord[];
  /** the first ebpfapi.dll found (a path of the viewed system), or null */
  ebpfapi: string | null;
  /** where it was looked for */
  ebpfapiSearched: string[];
}

const text = (o: Outputs, id: string): string | undefined => {
  const x = o[id];
  return x && 'text' in x ? x.text : undefined;
};
const why = (o: Outputs, id: string): string => {
  const x = o[id];
  return x && 'error' in x ? x.error : 'not run';
};

function osCheck(o: Outputs): WindowsReport['os'] {
  const t = text(o, 'current-version');
  const none = { productName: null, build: null, ubr: null, displayVersion: null, edition: null };
  if (t === undefined) return { state: 'unknown', reason: `the Windows version is unknown: ${why(o, 'current-version')}`, method: 'none', ...none };
  const keys = parseRegQuery(t);
  const str = (n: string): string | null => regValue(keys, n)?.data ?? null;
  const buildText = str('CurrentBuildNumber') ?? str('CurrentBuild');
  const build = buildText && /^\d+$/.test(buildText) ? Number(buildText) : null;
  // Windows 11 still says "Windows 10" in ProductName; the build tells them apart
  const productName = str('ProductName');
  const info = { productName, build, ubr: regNumber(regValue(keys, 'UBR')), displayVersion: str('DisplayVersion'), edition: str('EditionID') };
  if (build === null) return { state: 'unknown', reason: 'CurrentBuildNumber is missing from the registry answer', method: 'file', ...info };
  const name = build >= 22000 && productName?.startsWith('Windows 10') ? productName.replace('Windows 10', 'Windows 11') : productName;
  return build >= MIN_BUILD
    ? { state: 'yes', reason: `${name ?? 'Windows'} build ${build}${info.ubr !== null ? `.${info.ubr}` : ''}`, method: 'file', ...info }
    : { state: 'no', reason: `build ${build} is older than eBPF for Windows supports (Windows 11 or Server 2022, build ${MIN_BUILD}+)`, method: 'file', fix: 'upgrade to Windows 11 or Windows Server 2022 or later', ...info };
}

function archCheck(o: Outputs, machine: string): WindowsReport['arch'] {
  const t = text(o, 'processor-architecture');
  const pa = t ? (regValue(parseRegQuery(t), 'PROCESSOR_ARCHITECTURE')?.data ?? null) : null;
  const normalized = pa === 'AMD64' ? 'x86_64' : pa === 'ARM64' ? 'arm64' : pa === 'x86' ? 'x86' : machine;
  if (pa === null) return { state: 'unknown', reason: `PROCESSOR_ARCHITECTURE unknown: ${t === undefined ? why(o, 'processor-architecture') : 'not in the answer'}`, method: 'none', processorArchitecture: null, normalized };
  if (pa === 'AMD64') return { state: 'yes', reason: 'x64 (AMD64): eBPF for Windows releases build for it', method: 'file', processorArchitecture: pa, normalized };
  if (pa === 'ARM64') return { state: 'unknown', reason: 'ARM64: eBPF for Windows publishes ARM64 builds only for some releases', method: 'file', processorArchitecture: pa, normalized, fix: 'use an x64 host, or an eBPF for Windows release built for ARM64' };
  return { state: 'no', reason: `${pa}: eBPF for Windows runs on 64-bit Windows only`, method: 'file', processorArchitecture: pa, normalized };
}

function serviceCheck(o: Outputs, name: WindowsService): ServiceCheck {
  const id = `sc-${name}`;
  const t = text(o, id);
  if (t === undefined) return { state: 'unknown', reason: `sc query ${name} could not run: ${why(o, id)}`, method: 'none', installed: null, status: null, type: null };
  const q = parseScQuery(t);
  if (q.error) return { state: 'unknown', reason: `sc query ${name}: ${q.error}`, method: 'file', installed: null, status: null, type: null };
  if (!q.installed) return { state: 'no', reason: `${name} is not installed`, method: 'file', installed: false, status: null, type: null };
  return q.status === 'RUNNING'
    ? { state: 'yes', reason: `${name}: ${q.type ?? 'service'} RUNNING`, method: 'file', installed: true, status: q.status, type: q.type }
    : { state: 'no', reason: `${name} is installed but ${q.status}`, method: 'file', fix: `start it (as Administrator): sc start ${name}`, installed: true, status: q.status, type: q.type };
}

function ebpfCheck(o: Outputs, inputs: WindowsInputs, services: Record<WindowsService, ServiceCheck>): WindowsReport['ebpf'] {
  const entry = text(o, 'uninstall-entry');
  const keys = entry ? parseRegQuery(entry) : undefined;
  const version = keys ? (regValue(keys, 'DisplayVersion')?.data ?? null) : null;
  const installDir = keys ? (regValue(keys, 'InstallLocation')?.data ?? null) : null;
  const base = { version, installDir, ebpfapi: inputs.ebpfapi, services };
  const install = 'install eBPF for Windows (its MSI from the GitHub release, as Administrator: msiexec /i eBPF-for-Windows.x64.msi /qn)';
  if (!inputs.ebpfapi) return { state: 'no', reason: `eBPF for Windows is not installed (no ebpfapi.dll in ${inputs.ebpfapiSearched.join(', ')})`, method: 'file', fix: install, ...base };
  const core = services.ebpfcore;
  if (core.state !== 'yes') return { state: core.state, reason: `ebpfapi.dll is at ${inputs.ebpfapi}, but the eBPF core driver: ${core.reason}`, method: core.method, ...(core.fix ? { fix: core.fix } : core.state === 'no' ? { fix: install } : {}), ...base };
  return { state: 'yes', reason: `eBPF for Windows${version ? ` ${version}` : ''}: ${inputs.ebpfapi}, ebpfcore running`, method: 'file', ...base };
}

function executionCheck(ebpf: Check, services: Record<WindowsService, ServiceCheck>): WindowsReport['execution'] {
  if (ebpf.state === 'no') return { state: 'no', reason: 'eBPF for Windows is not installed', method: 'inferred', mode: null };
  const svc = services.ebpfsvc;
  if (svc.installed === true) {
    return svc.state === 'yes'
      ? { state: 'yes', reason: 'JIT: the eBPF service (ebpfsvc) verifies and compiles ELF objects', method: 'file', mode: 'jit' }
      : { state: 'no', reason: `JIT is installed but ${svc.reason}`, method: 'file', mode: 'jit', ...(svc.fix ? { fix: svc.fix } : {}) };
  }
  if (svc.installed === false) return { state: 'yes', reason: 'native-only: no eBPF service (ebpfsvc): only signed native images (.sys made by bpf2c) load, ELF objects do not', method: 'file', mode: 'native-only' };
  return { state: 'unknown', reason: svc.reason, method: 'none', mode: null };
}

function progTypes(o: Outputs, ebpf: Check): WindowsReport['progTypes'] {
  const t = text(o, 'program-data');
  const registered = new Map<string, string>(); // name -> guid
  if (t) {
    for (const [key, values] of parseRegQuery(t)) {
      const guid = /\\ProgramData\\(\{[0-9a-fA-F-]+\})$/.exec(key)?.[1];
      const name = values.get('Name')?.data;
      if (guid && name) registered.set(name, guid);
    }
  }
  const out: WindowsReport['progTypes'] = {};
  for (const [name, id] of Object.entries(REGISTERED_PROG_TYPES)) {
    const guid = registered.get(name) ?? null;
    if (guid) out[name] = { state: 'yes', reason: `registered by an extension (${guid})`, method: 'file', id, guid };
    else if (t === undefined) out[name] = { state: ebpf.state === 'no' ? 'no' : 'unknown', reason: ebpf.state === 'no' ? 'eBPF for Windows is not installed' : `the program type store could not be read: ${why(o, 'program-data')}`, method: 'none', id, guid: null };
    else out[name] = { state: 'no', reason: `not registered: its extension (${name === 'netevent' || name === 'process' ? 'ntosebpfext' : 'netebpfext'}) is not installed`, method: 'file', id, guid: null };
  }
  return out;
}

function mapTypes(ebpf: Check): WindowsReport['mapTypes'] {
  const out: WindowsReport['mapTypes'] = {};
  for (const [k, id] of Object.entries(WIN_MAP_TYPE)) {
    if (id === 0) continue;
    out[k.toLowerCase()] = ebpf.state === 'yes'
      ? { state: 'yes', reason: 'a map type of the eBPF for Windows core (include/ebpf_structs.h)', method: 'inferred', id }
      : { state: ebpf.state, reason: `eBPF for Windows: ${ebpf.reason}`, method: 'inferred', id };
  }
  return out;
}

/** The Windows report from the commands' outputs (`machine`: uname's, used when the registry says nothing). */
export function windowsSection(inputs: WindowsInputs, machine: string): WindowsReport {
  const o = inputs.outputs;
  const services = Object.fromEntries(SERVICES.map((s) => [s, serviceCheck(o, s)])) as Record<WindowsService, ServiceCheck>;
  const ebpf = ebpfCheck(o, inputs, services);
  return {
    os: osCheck(o),
    arch: archCheck(o, machine),
    ebpf,
    execution: executionCheck(ebpf, services),
    progTypes: progTypes(o, ebpf),
    mapTypes: mapTypes(ebpf),
    commands: inputs.records,
  };
}
