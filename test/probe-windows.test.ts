// The probe on Windows (src/probe/windows/): the `reg query` / `sc query` parsers on their documented
// formats, and the report built from the recorded outputs of test/fixtures/probe-systems/windows-11-x64
// (reconstructed, see its commands/README.md) and from variants of them: native-only, a stopped driver,
// no eBPF for Windows, an old build, ARM64, a command that could not run.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FIXTURES, runCli } from './helpers.js';
import { probe } from '../src/probe/index.js';
import { parseRegQuery, parseScQuery, regNumber, regValue } from '../src/probe/windows/parse.js';
import { COMMANDS } from '../src/probe/windows/commands.js';

const WINDOWS = path.join(FIXTURES, 'probe-systems', 'windows-11-x64');

/** a writable copy of the Windows fixture, with `edit` applied to its files */
function variant(t: Tap.Test, edit: (dir: string) => void): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-probe-windows-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.cpSync(WINDOWS, dir, { recursive: true });
  edit(dir);
  return dir;
}
const cmd = (dir: string, id: string): string => path.join(dir, 'commands', `${id}.txt`);
const SC_MISSING = '[SC] EnumQueryServicesStatus:OpenService FAILED 1060:\r\n\r\nThe specified service does not exist as an installed service.\r\n\r\n';

t.test('reg query: keys, values with spaces in names, numbers', async (t) => {
  const keys = parseRegQuery('\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\X\r\n    Display Name    REG_SZ    eBPF for  Windows\r\n    UBR    REG_DWORD    0xcf3\r\n    Empty    REG_SZ    \r\n    (Default)    REG_SZ    d\r\n\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\X\\Sub\r\n    Q    REG_QWORD    0x10\r\n');
  t.same([...keys.keys()], ['HKEY_LOCAL_MACHINE\\SOFTWARE\\X', 'HKEY_LOCAL_MACHINE\\SOFTWARE\\X\\Sub']);
  t.same(regValue(keys, 'Display Name'), { type: 'REG_SZ', data: 'eBPF for  Windows' });
  t.equal(regNumber(regValue(keys, 'UBR')), 3315);
  t.equal(regValue(keys, 'Empty')?.data, '');
  t.equal(regValue(keys, '(Default)')?.data, 'd');
  t.equal(regNumber(regValue(keys, 'Q', 'HKEY_LOCAL_MACHINE\\SOFTWARE\\X\\Sub')), 16);
  t.equal(regNumber(regValue(keys, 'Display Name')), null, 'a string is not a number');
  t.same([...parseRegQuery('ERROR: The system was unable to find the specified registry key or value.\r\n').keys()], []);
});

t.test('sc query: running, stopped, missing, failed, not sc', async (t) => {
  t.same(parseScQuery(fs.readFileSync(cmd(WINDOWS, 'sc-ebpfsvc'), 'utf8')), { installed: true, status: 'RUNNING', type: 'WIN32_OWN_PROCESS' });
  t.same(parseScQuery('SERVICE_NAME: ebpfcore\r\n        TYPE               : 1  KERNEL_DRIVER\r\n        STATE              : 1  STOPPED\r\n'), { installed: true, status: 'STOPPED', type: 'KERNEL_DRIVER' });
  t.same(parseScQuery(SC_MISSING), { installed: false, status: null, type: null });
  t.same(parseScQuery('[SC] OpenSCManager FAILED 5:\r\n\r\nAccess is denied.\r\n'), { installed: false, status: null, type: null, error: '[SC] OpenSCManager FAILED 5:' });
  t.match(parseScQuery('hello').error, /not the output of sc query/);
});

t.test('the Windows 11 fixture: every field', async (t) => {
  const r = probe({ root: WINDOWS });
  const w = r.windows!;
  t.ok(w, 'a Windows report');
  t.same([w.os.state, w.os.build, w.os.ubr, w.os.displayVersion, w.os.edition], ['yes', 22631, 3315, '23H2', 'Professional']);
  t.match(w.os.reason, /^Windows 11 Pro build 22631\.3315$/, 'ProductName says Windows 10; the build says 11');
  t.same([w.arch.state, w.arch.processorArchitecture, w.arch.normalized], ['yes', 'AMD64', 'x86_64']);
  t.same([w.ebpf.state, w.ebpf.version, w.ebpf.installDir, w.ebpf.ebpfapi], ['yes', '0.21.0', 'C:\\Program Files\\ebpf-for-windows\\', '/Windows/System32/ebpfapi.dll']);
  t.same(Object.fromEntries(Object.entries(w.ebpf.services).map(([n, s]) => [n, [s.state, s.status, s.type]])), {
    ebpfcore: ['yes', 'RUNNING', 'KERNEL_DRIVER'], netebpfext: ['yes', 'RUNNING', 'KERNEL_DRIVER'], ebpfsvc: ['yes', 'RUNNING', 'WIN32_OWN_PROCESS'],
  });
  t.same([w.execution.state, w.execution.mode], ['yes', 'jit']);
  t.same(Object.fromEntries(Object.entries(w.progTypes).map(([n, c]) => [n, [c.state, c.id]])), {
    xdp: ['yes', 1], bind: ['yes', 2], sock_addr: ['yes', 3], sockops: ['yes', 4], netevent: ['no', 5], process: ['no', 6],
  });
  t.match(w.progTypes.process!.reason, /ntosebpfext/);
  t.equal(w.progTypes.xdp!.guid, '{f1832a85-85d5-45b0-98a0-7069d63013b0}');
  t.same(Object.entries(w.mapTypes).map(([n, c]) => `${n}=${c.id}:${c.state}`).slice(-2), ['ringbuf=13:yes', 'perf_event_array=14:yes']);
  t.equal(Object.keys(w.mapTypes).length, 14);
  t.same(w.commands.map((c) => [c.id, c.read]), [...Object.keys(COMMANDS).map((id) => [id, true]), ['uninstall-entry', true]], 'every command read, the uninstall entry found by the search');
  t.same(w.commands.find((c) => c.id === 'uninstall-entry')?.argv, ['reg', 'query', 'HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\{2C7B1C4A-6C0B-4C7E-9C1B-3D1B3C1D7E21}']);
  t.equal(probe({ root: path.join(FIXTURES, 'probe-systems', 'debian-11-x86_64') }).windows, undefined, 'Linux reports have no windows section');
});

t.test('native-only: no eBPF service', async (t) => {
  const dir = variant(t, (d) => fs.writeFileSync(cmd(d, 'sc-ebpfsvc'), SC_MISSING));
  const w = probe({ root: dir }).windows!;
  t.same([w.execution.state, w.execution.mode], ['yes', 'native-only']);
  t.match(w.execution.reason, /only signed native images \(\.sys made by bpf2c\) load, ELF objects do not/);
  t.same([w.ebpf.services.ebpfsvc.state, w.ebpf.services.ebpfsvc.installed], ['no', false]);
  t.equal(w.ebpf.state, 'yes', 'the core still runs');
});

t.test('a stopped core driver', async (t) => {
  const dir = variant(t, (d) => fs.writeFileSync(cmd(d, 'sc-ebpfcore'), fs.readFileSync(cmd(d, 'sc-ebpfcore'), 'utf8').replace('4  RUNNING', '1  STOPPED')));
  const w = probe({ root: dir }).windows!;
  t.equal(w.ebpf.state, 'no');
  t.match(w.ebpf.reason, /ebpfapi\.dll is at \/Windows\/System32\/ebpfapi\.dll, but the eBPF core driver: ebpfcore is installed but STOPPED/);
  t.equal(w.ebpf.fix, 'start it (as Administrator): sc start ebpfcore');
  t.same(w.ebpf.services.ebpfcore.status, 'STOPPED');
});

t.test('eBPF for Windows not installed', async (t) => {
  const dir = variant(t, (d) => {
    fs.rmSync(path.join(d, 'Windows', 'System32', 'ebpfapi.dll'));
    for (const s of ['ebpfcore', 'netebpfext', 'ebpfsvc']) fs.writeFileSync(cmd(d, `sc-${s}`), SC_MISSING);
    fs.writeFileSync(cmd(d, 'program-data'), 'ERROR: The system was unable to find the specified registry key or value.\r\n');
    fs.writeFileSync(cmd(d, 'uninstall-search'), '\r\nEnd of search: 0 match(es) found.\r\n');
    fs.rmSync(cmd(d, 'uninstall-entry'));
  });
  const w = probe({ root: dir }).windows!;
  t.equal(w.ebpf.state, 'no');
  t.match(w.ebpf.reason, /not installed \(no ebpfapi\.dll in \/Windows\/System32\/ebpfapi\.dll, \/Program Files\/ebpf-for-windows\/ebpfapi\.dll\)/);
  t.match(w.ebpf.fix ?? '', /msiexec \/i/);
  t.equal(w.ebpf.version, null);
  t.same([w.execution.state, w.execution.mode], ['no', null]);
  t.same(Object.values(w.progTypes).map((c) => c.state), ['no', 'no', 'no', 'no', 'no', 'no']);
  t.same(w.commands.map((c) => c.id).includes('uninstall-entry'), false, 'no entry found, none queried');
});

t.test('Windows 10 (build 19045) and ARM64', async (t) => {
  const dir = variant(t, (d) => {
    fs.writeFileSync(cmd(d, 'current-version'), fs.readFileSync(cmd(d, 'current-version'), 'utf8').replace(/22631/g, '19045'));
    fs.writeFileSync(cmd(d, 'processor-architecture'), fs.readFileSync(cmd(d, 'processor-architecture'), 'utf8').replace('AMD64', 'ARM64'));
  });
  const w = probe({ root: dir }).windows!;
  t.equal(w.os.state, 'no');
  t.match(w.os.reason, /build 19045 is older than eBPF for Windows supports \(Windows 11 or Server 2022, build 20348\+\)/);
  t.same([w.arch.state, w.arch.normalized], ['unknown', 'arm64']);
});

t.test('a command whose output is missing: unknown, with the reason', async (t) => {
  const dir = variant(t, (d) => {
    fs.rmSync(cmd(d, 'current-version'));
    fs.rmSync(cmd(d, 'sc-netebpfext'));
  });
  const w = probe({ root: dir }).windows!;
  t.equal(w.os.state, 'unknown');
  t.match(w.os.reason, /the Windows version is unknown: no recorded output \(commands\/current-version\.txt\): ENOENT/);
  t.same([w.ebpf.services.netebpfext.state, w.ebpf.services.netebpfext.installed], ['unknown', null]);
  t.same(w.commands.find((c) => c.id === 'current-version'), { id: 'current-version', argv: COMMANDS['current-version'], read: false, error: 'no recorded output (commands/current-version.txt): ENOENT' });
});

t.test('wasm-bpf probe --root: the Windows section, text and JSON', async (t) => {
  const human = runCli(['probe', '--no-cache', '--root', WINDOWS]);
  t.equal(human.code, 0, human.stderr);
  t.match(human.stdout, /\nWindows  eBPF for Windows\n/);
  t.match(human.stdout, /eBPF for Windows yes +eBPF for Windows 0\.21\.0: \/Windows\/System32\/ebpfapi\.dll, ebpfcore running/);
  t.match(human.stdout, /execution +yes +JIT: the eBPF service/);
  t.match(human.stdout, /program types +yes xdp, bind, sock_addr, sockops; no netevent, process/);
  const json = runCli(['probe', '--json', '--no-cache', '--root', WINDOWS]);
  const j = JSON.parse(json.stdout) as { schemaVersion: number; windows: { execution: { mode: string }; os: { build: number } } };
  t.equal(j.schemaVersion, 1, 'a field added, the schema version kept');
  t.same([j.windows.execution.mode, j.windows.os.build], ['jit', 22631]);
});
