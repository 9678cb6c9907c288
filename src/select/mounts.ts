// The one step that changes the host before a load: mounting a filesystem the plan says is all that is
// missing (tracefs for tracepoints), as bcc and bpftool users expect from a root tool. Visible: it says
// what it mounts with --verbose, and a failure names the command to run.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { BackendError } from '../errors.js';
import { ERRNO } from '../kernel/uapi.js';
import type { MountStep } from './plan.js';

/** where each filesystem shows that it is mounted (a mount by someone else since the probe counts) */
const PRESENT: Record<MountStep['fs'], readonly string[]> = {
  // platform: data for the mount step, which runs on Linux only (mountFor checks before it mounts)
  tracefs: ['/sys/kernel/tracing/events', '/sys/kernel/debug/tracing/events'],
};

const done = new Set<MountStep['fs']>();

export function mountFor(step: MountStep, log: ((line: string) => void) | undefined): void {
  if (done.has(step.fs)) return;
  if (PRESENT[step.fs].some((p) => fs.existsSync(p))) {
    done.add(step.fs);
    return;
  }
  const command = `mount -t ${step.fs} nodev ${step.target}`;
  if (process.getuid?.() !== 0) {
    throw new BackendError(`${step.fs} is not mounted (${step.why})`, ERRNO.EOPNOTSUPP, '', `run \`${command}\` as root, or run wasm-bpf as root`);
  }
  // tracefs and mount(8) are Linux's (the plan asks for them only for the Linux kernel backend)
  if (process.platform !== 'linux') throw new BackendError(`${step.fs} is Linux's; this is ${process.platform}`, ERRNO.EOPNOTSUPP);
  // loaded only here: node:child_process costs start-up time every run would pay
  const { spawnSync } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
  const r = spawnSync('mount', ['-t', step.fs, 'nodev', step.target], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new BackendError(`cannot mount ${step.fs} on ${step.target}: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`, ERRNO.EOPNOTSUPP, '', `run \`${command}\` as root`);
  }
  done.add(step.fs);
  log?.(`wasm-bpf: mounted ${step.fs} on ${step.target} (${step.why})`);
}
