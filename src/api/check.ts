// The selector's plan for every eBPF object of a module or a .bpf.o, nothing loaded: the object
// `wasm-bpf check --json` prints. Shared by the CLI (src/cli/check.ts) and the library API.
import { findElfObjects } from '../object/elf.js';
import { loadObject } from '../object/loader.js';
import { hostReport } from '../probe/fast.js';
import { planObject, type Plan } from '../select/plan.js';
import { objectFacts } from '../select/facts.js';
import { ptregsSettingsFromEnv } from '../../compat/ptregs/index.js';
import type { BackendChoice } from '../select/backend.js';
import { errorMessage, WasmBpfError } from '../errors.js';
import { objectNeeds, type ObjectNeeds } from '../policy/needs.js';
import { violations } from '../policy/enforce.js';
import type { Policy } from '../policy/policy.js';
import { MAP_TYPES, PROG_TYPES } from '../probe/tables.js';
import { planWindows, windowsPlanned, type WindowsPlan } from '../select/windows.js';
import { taskFieldsRead, taskFieldsUnfilled } from '../../backends/userspace/attach/task-layout.js';

export interface CheckRequest {
  /** force a backend, as --backend (default auto) */
  backend?: BackendChoice;
  /** features to take as absent, as --assume-missing */
  assumeMissing?: readonly string[];
  /** plan as a run with a launched command would (--launch): the userspace backend can run uprobes */
  launch?: boolean;
  /** also say what this policy refuses of each object */
  policy?: Policy;
}

export interface ObjectPlan {
  /** where the object lies in the file */
  offset: number;
  size: number;
  /** type: the kernel's name of the program type ('tracepoint', 'kprobe'; 'unspec' when the section is not known), typeId its number */
  programs: Array<{ name: string; section: string; type: string; typeId: number }>;
  /** type: the kernel's name ('ringbuf'), typeId its number */
  maps: Array<{ name: string; type: string; typeId: number }>;
  plan?: Plan;
  /** --backend windows: the object translated for eBPF for Windows (what would load there, what is refused) */
  windows?: WindowsPlan;
  needs?: ObjectNeeds;
  /** what the policy given refuses (empty: allowed) */
  refused?: string[];
  /** the object could not be read */
  error?: string;
  /**
   * planned for the userspace backend: the task_struct fields each program reads through CO-RE (from
   * bpf_get_current_task) and, of those, the ones its task_struct image leaves 0
   */
  userspaceTask?: Array<{ program: string; reads: string[]; unfilled: string[] }>;
}

export interface CheckResult {
  file: string;
  /** the host's kernel release */
  kernel: string;
  /** every object has a backend here (and the policy given allows it) */
  runnable: boolean;
  objects: ObjectPlan[];
}

/** a program type's kernel name (as probe's progTypes keys), '#N' for a number the tables lack */
function progTypeName(id: number): string {
  return id === 0 ? 'unspec' : (PROG_TYPES.find((d) => d.id === id)?.name ?? `#${id}`);
}

/** a check result and the host's arch (the CLI's header) */
export async function checkBytes(bytes: Uint8Array, file: string, req: CheckRequest = {}): Promise<{ result: CheckResult; arch: string }> {
  const isElf = bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46;
  const spans = isElf ? [{ offset: 0, size: bytes.length }] : findElfObjects(bytes);
  if (spans.length === 0) throw new WasmBpfError('USAGE', `${file} holds no eBPF ELF object`);
  const report = await hostReport({ assumeMissing: req.assumeMissing ?? [] });
  const objects: ObjectPlan[] = spans.map(({ offset, size }) => {
    try {
      const obj = loadObject(bytes.subarray(offset, offset + size));
      const needs = objectNeeds(obj);
      const facts = objectFacts(obj);
      const win = windowsPlanned(req.backend ?? 'auto', report) ? planWindows(bytes.subarray(offset, offset + size), obj, report) : undefined;
      const plan = win?.plan ?? planObject(report, facts, req.backend ?? 'auto', { ptregs: ptregsSettingsFromEnv(process.env), userspaceTargets: req.launch ?? false });
      const task = plan.backend === 'userspace' ? [...taskFieldsRead(obj)].map(([program, reads]) => ({ program, reads, unfilled: taskFieldsUnfilled(reads) })) : [];
      return {
        offset,
        size,
        programs: obj.programs.map((p) => ({ name: p.name, section: p.section, type: progTypeName(p.type), typeId: p.type })),
        maps: facts.maps.map((m) => ({ name: m.name, type: MAP_TYPES.find((d) => d.id === m.type)?.name ?? `#${m.type}`, typeId: m.type })),
        plan,
        ...(task.length ? { userspaceTask: task } : {}),
        ...(win ? { windows: win.windows } : {}),
        needs,
        ...(req.policy ? { refused: violations(req.policy, needs) } : {}),
      };
    } catch (err) {
      return { offset, size, programs: [], maps: [], error: errorMessage(err) };
    }
  });
  const runnable = objects.every((o) => o.plan && o.plan.backend !== null && !o.refused?.length);
  return { result: { file, kernel: report.system.kernel.release, runnable, objects }, arch: report.system.arch.normalized };
}
