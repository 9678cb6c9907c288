// Join mode of the uprobe agent: load it into a running process by ptrace injection (native/agent/inject/
// wbpf-inject.c, run as a child) and hand it one end of a fresh control channel. The other end drives it
// with AgentChannel exactly like a launched agent (no START: the process runs already); closing it unhooks.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { agentSocketpair } from './channel.js';
import { agentMapped, joinRefusal, readSelf, readTarget } from './join-checks.js';
import { loadNative } from '../../linux/native.js';
import { BackendError } from '../../../src/errors.js';
import { ERRNO } from '../../../src/kernel/uapi.js';

export interface Joined {
  pid: number;
  /** this process's end of the agent's control channel (attach/channel.ts protocol) */
  fd: number;
}

export interface JoinOptions {
  /** the agent library (native/agent/build/libwbpf_agent.so); its join build, libwbpf_agent_join.so, and
   * the injector, wbpf-inject, are taken from the same directory */
  agent: string;
  /** how long the injection may take, the target's threads stopped (default 5000 ms) */
  timeoutMs?: number;
}

/** the hosts one agent serves at once (native/agent/lib/proto.h's WBPF_AGENT_MAX_SESSIONS) */
export const MAX_HOSTS = 8;

/** the injector's own limit on top of timeoutMs: it interrupts a call that did not return (1 s) and detaches */
const INJECTOR_GRACE_MS = 15_000;

/** the library the target dlopens: ours already loaded there (launched under it, or joined before: dlopen
 * returns it), else the join build beside `agent` (small static TLS), else `agent` itself */
export function joinLibrary(agent: string, targetMaps: string | undefined, pid = 0): string {
  const loaded = targetMaps === undefined ? undefined : agentMapped(targetMaps);
  if (loaded?.deleted) {
    throw new BackendError(
      `join: process ${pid} holds an agent whose file was replaced since it was loaded (${loaded.path}, rebuilt?): loading the new one beside it would make two agents`,
      ERRNO.EBUSY,
      '',
      'restart the process (or launch it under wasm-bpf)',
    );
  }
  if (loaded !== undefined) return loaded.path;
  const join = path.join(path.dirname(agent), 'libwbpf_agent_join.so');
  return path.basename(agent) === 'libwbpf_agent.so' && fs.existsSync(join) ? join : agent;
}

/** the same file (device, inode) seen from the target's root: false when it lives in another mount namespace */
function sameFileThere(pid: number, file: string): boolean {
  try {
    const here = fs.statSync(file), there = fs.statSync(`/proc/${pid}/root${file}`);
    return here.dev === there.dev && here.ino === there.ino;
  } catch {
    return false;
  }
}

/** loads the agent into process `pid` and returns the channel to it; synchronous. Refusals and failures
 * throw BackendError with the errno and the reason; the target is never left stopped or changed */
export function joinProcess(pid: number, opts: JoinOptions): Joined {
  const target = readTarget(pid);
  const refusal = joinRefusal(pid, target, readSelf());
  if (refusal) throw refusal;
  const timeoutMs = opts.timeoutMs ?? 5000;
  const injector = path.join(path.dirname(opts.agent), 'wbpf-inject');
  const lib = joinLibrary(path.resolve(opts.agent), target.maps, pid);
  for (const f of [injector, lib]) {
    if (!fs.existsSync(f)) throw new BackendError(`join: ${f} is not built`, ERRNO.ENOENT, '', `make -C ${path.resolve(path.dirname(opts.agent), '..')}`);
  }
  if (!sameFileThere(pid, lib)) {
    throw new BackendError(
      `join: process ${pid} does not see ${lib} at that path (it runs in another mount namespace: a container?)`,
      ERRNO.ENOENT,
      '',
      'join processes of this mount namespace, or run wasm-bpf inside the container',
    );
  }
  const native = loadNative();
  const { host, child } = agentSocketpair();
  let ok = false;
  try {
    const r = spawnSync(injector, [String(pid), lib, String(timeoutMs)], {
      stdio: ['ignore', 'ignore', 'pipe', child],
      timeout: timeoutMs + INJECTOR_GRACE_MS,
      killSignal: 'SIGKILL',
      encoding: 'utf8',
    });
    if (r.error) throw new BackendError(`join: running ${injector}: ${r.error.message}`, ERRNO.EIO, '', undefined, { cause: r.error });
    if (r.status !== 0) {
      const m = /^(\d+) (.*)$/m.exec(r.stderr ?? '');
      const errno = m ? Number(m[1]) : ERRNO.EIO;
      const why = m ? m[2]! : `the injector ended with ${r.signal ?? `status ${r.status}`}: ${(r.stderr ?? '').trim()}`;
      throw new BackendError(`join: ${why}`, errno, '', errno === ERRNO.EBUSY ? `at most ${MAX_HOSTS} wasm-bpf runs trace one process at once: end one of the others first` : undefined);
    }
    ok = true;
    return { pid, fd: host };
  } finally {
    native.closeFd(child);
    if (!ok) native.closeFd(host);
  }
}
