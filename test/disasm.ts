// A shared object's x86-64 code as objdump -d shows it: functions, their instructions and the functions
// they reach (direct calls and jumps, and addresses they take with lea: a function pointer they may call),
// for test/agent-vector-free.test.ts's walk of the agent's hit path.
import { execFileSync } from 'node:child_process';

export interface Insn {
  addr: number;
  text: string;
}

export interface Edge {
  /** how: a call or jump to the target, or its address taken (lea) */
  how: 'call' | 'jump' | 'lea';
  target: string;
  at: number;
}

/** function name -> instructions; PLT entries are named `sym@plt` */
export type Disasm = Map<string, Insn[]>;

/** objdump -d of the sections in `sections` (default .text and .plt*) */
export function disassemble(file: string, sections: string[] = []): Disasm {
  const args = ['-d', '--no-show-raw-insn', '-w', ...sections.flatMap((s) => ['-j', s]), file];
  const out = execFileSync('objdump', args, { encoding: 'utf8', maxBuffer: 256 << 20 });
  const fns: Disasm = new Map();
  let cur: Insn[] | undefined;
  for (const line of out.split('\n')) {
    const head = /^([0-9a-f]+) <(.+)>:$/.exec(line);
    if (head) {
      cur = [];
      fns.set(head[2]!, cur);
      continue;
    }
    const ins = /^\s+([0-9a-f]+):\s+(.*)$/.exec(line);
    if (ins && cur) cur.push({ addr: parseInt(ins[1]!, 16), text: ins[2]!.trim() });
  }
  return fns;
}

/** the functions fn reaches: `call X <f>`, a jump to another function's start or part (`<f.cold>`, a tail
 * call), `lea ...(%rip) # X <f>` of a function's start (its address taken) */
export function edges(fns: Disasm, fn: string): Edge[] {
  const out: Edge[] = [];
  for (const i of fns.get(fn) ?? []) {
    const call = /^(call|jmp|j[a-z]+)\s+[0-9a-f]+ <([^>+]+)(\+0x[0-9a-f]+)?>/.exec(i.text);
    if (call) {
      if (call[2] !== fn) out.push({ how: call[1] === 'call' ? 'call' : 'jump', target: call[2]!, at: i.addr });
      continue;
    }
    // a call or jump through the GOT (-fno-plt): another object's function, as through its PLT entry
    const got = /^(call|jmp)\s+\*.*\(%rip\)\s+# [0-9a-f]+ <([^>@]+)@/.exec(i.text);
    if (got) {
      out.push({ how: got[1] === 'call' ? 'call' : 'jump', target: `${got[2]}@plt`, at: i.addr });
      continue;
    }
    const lea = /^lea\s.*# [0-9a-f]+ <([^>+]+)>$/.exec(i.text);
    if (lea && fns.has(lea[1]!) && lea[1] !== fn) out.push({ how: 'lea', target: lea[1]!, at: i.addr });
  }
  return out;
}

/** an instruction touching x87, MMX, SSE or AVX state (a vector or x87 register, or an x87/MMX/state op) */
export function usesVector(text: string): boolean {
  const op = text.split(/\s+/)[0]!;
  return /%[xyz]mm\d|%mm\d|%st\b|%st\(|%k[0-7]\b/.test(text) || /^(f[a-z0-9]*|emms|ldmxcsr|stmxcsr|vzero(upper|all)|xsave[a-z0-9]*|xrstor[a-z0-9]*)$/.test(op);
}

export interface Walk {
  /** every function reached, with the chain that first reached it */
  reached: Map<string, string[]>;
  /** per reached function, its instructions that use vector state */
  vector: Map<string, Insn[]>;
  /** the PLT entries reached (calls into other objects), with a chain */
  plt: Map<string, string[]>;
  /** the indirect calls in reached functions */
  indirect: { fn: string; insn: Insn }[];
}

/** from roots along edges, not entering `stop` (e.g. slow paths entered only under a full vector save) */
export function walk(fns: Disasm, roots: string[], stop: (fn: string) => boolean): Walk {
  const w: Walk = { reached: new Map(), vector: new Map(), plt: new Map(), indirect: [] };
  const todo: string[][] = roots.map((r) => [r]);
  while (todo.length) {
    const chain = todo.shift()!;
    const fn = chain[chain.length - 1]!;
    if (w.reached.has(fn) || stop(fn)) continue;
    w.reached.set(fn, chain);
    if (fn.endsWith('@plt')) {
      const sym = fn.slice(0, -4);
      // the library's own exported function called through its PLT (linked without -Bsymbolic): followed
      if (fns.has(sym)) todo.push([...chain, sym]);
      else w.plt.set(sym, chain);
      continue;
    }
    const insns = fns.get(fn) ?? [];
    const vec = insns.filter((i) => usesVector(i.text));
    if (vec.length) w.vector.set(fn, vec);
    for (const i of insns) if (/^(call|jmp)\s+\*/.test(i.text) && !/\(%rip\)/.test(i.text)) w.indirect.push({ fn, insn: i });
    for (const e of edges(fns, fn)) if (!w.reached.has(e.target)) todo.push([...chain, e.target]);
  }
  return w;
}
