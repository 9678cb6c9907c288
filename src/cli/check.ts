// `wasm-bpf check <app.wasm|x.bpf.o>`: the selector's plan for every eBPF object, nothing attached.
import fs from 'node:fs';
import { refusal, type Plan } from '../select/plan.js';
import { BACKEND_CHOICES, type BackendChoice } from '../select/backend.js';
import { describeNeed } from '../probe/require.js';
import { formatJson, jsonFlag } from './json.js';
import { errorMessage } from '../errors.js';
import { assumeMissing } from './probe.js';
import { WasmBpfError } from '../errors.js';
import type { ObjectNeeds } from '../policy/needs.js';
import type { Policy } from '../policy/policy.js';
import { PolicyOptions } from './policy.js';
import { checkBytes, type CheckResult } from '../api/check.js';
import { say } from './say.js';
import { painter, useColor } from '../style.js';
import type { WindowsPlan } from '../select/windows.js';

const USAGE = `Usage: wasm-bpf check [-j|--json | -p|--pretty | --emit-policy] [--backend NAME] [--assume-missing FEATURE] [--launch] [policy options] <app.wasm | x.bpf.o>

Prints, for every eBPF object (a .bpf.o, or each object embedded in a .wasm module), its programs and
maps, what each needs that this host lacks, the backend that would run it, and what it asks of the
policy (program types, helpers, uprobe binaries, run-time attach targets, pinned maps). With policy
options (as for \`wasm-bpf run\`: --policy FILE, --default-deny, --allow-*), also whether that policy
would let it load. --emit-policy prints a deny-by-default policy file that allows exactly what the
objects hold (add the interfaces, cgroups and uprobe binaries the guest names at run time). Nothing is loaded.
--backend windows plans for eBPF for Windows on any host: each object translated for Windows (program and
attach types, map type numbers, helper ids), or refused with the reason and what Windows offers instead.
--launch plans as \`wasm-bpf run APP.wasm -- COMMAND\` would: with a launched command the userspace backend can
run uprobe objects inside it (without, it has no process to trace).
Exit code: 0 when every object can run here (under the policy given), 1 when one cannot, 2 on bad input.
`;

export async function checkCommand(argv: string[]): Promise<number> {
  let json = false;
  let pretty = false;
  let emit = false;
  let launch = false;
  let choice: BackendChoice = 'auto';
  let file: string | undefined;
  const policyOpts = new PolicyOptions();
  const assumed: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const [flag, inline] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    try {
      if (
        policyOpts.take(flag, () => {
          const v = inline ?? argv[++i];
          if (v === undefined) throw new WasmBpfError('USAGE', `${flag} needs a value`);
          return v;
        })
      )
        continue;
    } catch (err) {
      say('wasm-bpf check', `${errorMessage(err)}`);
      return 2;
    }
    if (a === '-h' || a === '--help') {
      process.stdout.write(USAGE);
      return 0;
    } else if (jsonFlag(a)) {
      json = true;
      pretty ||= jsonFlag(a) === 'pretty';
    }
    else if (a === '--emit-policy') emit = true;
    else if (a === '--launch') launch = true;
    else if (a === '--backend') {
      const b = argv[++i];
      if (!b || !BACKEND_CHOICES.includes(b as BackendChoice)) {
        say('wasm-bpf check', `--backend must be one of ${BACKEND_CHOICES.join(', ')}`);
        return 2;
      }
      choice = b as BackendChoice;
    } else if (a === '--assume-missing') {
      assumed.push(argv[++i] ?? '');
    } else if (a.startsWith('-')) {
      say('wasm-bpf check', `unknown option ${a}`);
      process.stderr.write(`${USAGE}`);
      return 2;
    } else file = a;
  }
  if (!file) {
    process.stderr.write(USAGE);
    return 2;
  }
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    say('wasm-bpf check', `cannot read ${file}: ${errorMessage(err)}`);
    return 2;
  }
  let policy: Policy | undefined;
  let assumeMissingNames: string[];
  try {
    assumeMissingNames = assumeMissing(assumed);
    if (!policyOpts.empty) policy = policyOpts.build();
  } catch (err) {
    say('wasm-bpf check', `${errorMessage(err)}`);
    return 2;
  }
  let checked: { result: CheckResult; arch: string };
  try {
    checked = await checkBytes(bytes, file, { backend: choice, assumeMissing: assumeMissingNames, launch, ...(policy ? { policy } : {}) });
  } catch (err) {
    if (!(err instanceof WasmBpfError && err.code === 'USAGE')) throw err;
    say('wasm-bpf check', err.message);
    return 2;
  }
  const { objects, runnable } = checked.result;
  if (emit) {
    const failed = objects.find((o) => o.error);
    if (failed) {
      say('wasm-bpf check', `cannot read object at byte ${failed.offset}: ${failed.error}`);
      return 1;
    }
    process.stdout.write(`${JSON.stringify(policyFor(objects.map((o) => o.needs!)), null, 2)}\n`);
    return 0;
  }
  if (json) {
    process.stdout.write(formatJson(checked.result, pretty));
    return runnable ? 0 : 1;
  }
  const out: string[] = [`${file}: ${objects.length} eBPF object(s); host ${checked.result.kernel} ${checked.arch}`];
  const paint = painter(useColor(process.stdout));
  objects.forEach((o, i) => {
    out.push('', paint(`object ${i + 1} (bytes ${o.offset}..${o.offset + o.size})`, 'bold'));
    if (o.error) {
      out.push(`  cannot read it: ${o.error}`);
      return;
    }
    out.push(`  programs: ${o.programs.map((p) => `${p.name} (${p.section})`).join(', ') || 'none'}`);
    out.push(`  maps:     ${o.maps.map((m) => m.name).join(', ') || 'none'}`);
    const plan = o.plan!;
    out.push(...describeUncertain(plan.uncertain, paint));
    if (o.windows) out.push(...describeWindows(o.windows, paint));
    else if (plan.backend) out.push(`  ${paint('plan:', 'green')} ${plan.backend} backend (${plan.reasons.join('; ')})`);
    else out.push(`  ${paint('plan: refused:', 'red')} ${refusal(plan).replace(/\n/g, '\n  ').replace(/; fix: /g, `; ${paint('fix:', 'cyan')} `)}`);
    for (const t of o.userspaceTask ?? []) {
      out.push(t.unfilled.length
        ? `  ${paint('userspace:', 'yellow')} ${t.program} reads task_struct.${t.unfilled.join(', task_struct.')}, which the userspace backend leaves 0 (it fills pid, tgid, real_parent/parent's pid and tgid, comm, exit_code, start_time)`
        : `  userspace: ${t.program} reads task_struct ${t.reads.join(', ')}: each filled by the userspace backend`);
    }
    out.push(...describeNeeds(o.needs!));
    if (o.refused) out.push(o.refused.length ? `  ${paint('policy: refused:', 'red')}\n${o.refused.map((r) => `    - ${r}`).join('\n')}` : `  ${paint('policy: allowed', 'green')}`);
  });
  process.stdout.write(`${out.join('\n')}\n`);
  return runnable ? 0 : 1;
}

/**
 * The needs the probe could not decide, one line per cause (as the refusals are): the same reason (e.g.
 * bpf() not permitted for this user) is said once, with each need it leaves unknown and the programs or
 * maps that have that need.
 */
function describeUncertain(uncertain: Plan['uncertain'], paint: ReturnType<typeof painter>): string[] {
  const byReason = new Map<string, Map<string, string[]>>();
  for (const u of uncertain) {
    // "tracepoint programs: bpf() not permitted ..." is the same cause as "bpf() not permitted ..."
    const reason = u.missing.reason.replace(/^[\w.-]+ programs: /, '');
    const needs = byReason.get(reason) ?? new Map<string, string[]>();
    const need = describeNeed(u.missing.need);
    needs.set(need, [...(needs.get(need) ?? []), u.subject]);
    byReason.set(reason, needs);
  }
  const who = (subjects: string[]): string => {
    if (subjects.length === 1) return subjects[0]!;
    const kind = subjects.every((x) => x.startsWith('program ')) ? 'program ' : subjects.every((x) => x.startsWith('map ')) ? 'map ' : '';
    return kind ? `${kind.trim()}s ${subjects.map((x) => x.slice(kind.length)).join(', ')}` : subjects.join(', ');
  };
  const out: string[] = [];
  for (const [reason, needs] of byReason) {
    const items = [...needs].map(([need, subjects]) => `${need} ${paint('unknown', 'yellow')} for ${who(subjects)}`);
    if (items.length === 1) out.push(`  ${paint('?', 'yellow')} ${items[0]} (${reason})`);
    else out.push(`  ${paint('?', 'yellow')} ${reason}; so, ${paint('unknown', 'yellow')}:`, ...[...needs].map(([need, subjects]) => `      ${need} for ${who(subjects)}`));
  }
  return out;
}

/** --backend windows: the translation for eBPF for Windows, as `check` prints it */
function describeWindows(w: WindowsPlan, paint: ReturnType<typeof painter>): string[] {
  const out = [w.accepted
    ? `  ${paint('plan:', 'green')} windows backend: the object translates for eBPF for Windows (tables of ${w.source}; nothing loaded)`
    : `  ${paint('plan: refused:', 'red')} eBPF for Windows cannot run the object (tables of ${w.source}):`];
  for (const r of w.refusals) out.push(`    - ${r.subject}: ${r.reason}`);
  if (!w.accepted) return out;
  for (const p of w.programs) out.push(`    program '${p.name}' (${p.section}) -> section '${p.windowsSection}', program type ${p.progType} (${p.progTypeName}), attach type ${p.attachType}`);
  for (const m of w.maps) out.push(`    map '${m.name}' ${m.linuxTypeName} ${m.linuxType} -> ${m.windowsTypeName} ${m.windowsType}${m.via === 'same' ? ' (same number)' : ` (rewritten in ${m.via === 'btf' ? 'the .maps BTF' : 'the maps section'})`}`);
  for (const h of w.helpers) out.push(`    helper ${h.name} ${h.linux} -> ${h.windows}${h.linux === h.windows ? ' (same id)' : ''}, ${h.calls} call(s)`);
  for (const s of w.steps.filter((x) => x.startsWith('ringbuf records:') || x.includes(': context '))) out.push(`    ${s}`);
  for (const c of w.caveats) out.push(`    ${paint('caveat:', 'yellow')} ${c}`);
  return out;
}

/** what the object asks of the policy, as `check` prints it */
function describeNeeds(n: ObjectNeeds): string[] {
  const uniq = (xs: string[]): string => [...new Set(xs)].sort().join(', ') || 'none';
  const targets = n.programs.filter((p) => p.target).map((p) => `${p.name}: ${p.target}${p.target === 'uprobe' && p.binary ? '' : ' named by the guest'}`);
  return [
    '  needs (policy):',
    `    program types: ${uniq(n.programs.map((p) => p.kind))}`,
    `    helpers: ${uniq(n.programs.flatMap((p) => p.helpers))}`,
    ...(n.programs.some((p) => p.kfuncs.length) ? [`    kfuncs: ${uniq(n.programs.flatMap((p) => p.kfuncs))}`] : []),
    `    uprobe binaries in sections: ${uniq(n.programs.flatMap((p) => (p.binary ? [p.binary] : [])))}`,
    `    attach targets: ${targets.join('; ') || 'none'}`,
    `    pinned maps: ${n.pinnedMaps.join(', ') || 'none'}`,
  ];
}

/** a deny-by-default policy file allowing exactly what the objects hold */
function policyFor(needs: ObjectNeeds[]): Record<string, unknown> {
  const progs = needs.flatMap((n) => n.programs);
  const uniq = (xs: string[]): string[] => [...new Set(xs)].sort();
  const binaries = uniq(progs.flatMap((p) => (p.binary?.startsWith('/') ? [p.binary] : [])));
  return {
    default: 'deny',
    programTypes: uniq(progs.map((p) => p.kind)),
    helpers: uniq(progs.flatMap((p) => [...p.helpers, ...p.kfuncs])),
    ...(binaries.length ? { uprobes: binaries } : {}),
    pin: needs.some((n) => n.pinnedMaps.length) ? 'private' : 'refuse',
  };
}
