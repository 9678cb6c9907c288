// Issue 19 point 4: the common path (src/: the CLI, the Wasm host, the runtime, select, policy, the
// library API) makes no Linux-only call outside the Linux parts (backends/linux, backends/userspace and the
// probe's Linux part, src/probe/ less src/probe/windows/). A static scan of the sources with comments
// removed: Linux file paths (/proc, /sys, /dev, ...), uid/gid calls Node lacks on Windows called without
// `?.`, Linux tools spawned (mount, ip, bpftool, ...), signals Windows can neither send nor catch. A hit is
// allowed only behind a platform check (`process.platform` within the 8 lines before it, or on its line),
// or as data that only a Linux-only step uses, said by a `// platform: <why>` comment on its line or the
// line before. The scanner itself is checked against snippets it must flag and snippets it must pass.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './helpers.js';

/** whole files outside the common path, with the reason */
const EXEMPT: Record<string, string> = {
  'src/kernel/gen.ts': 'a build-time generator over Linux UAPI headers (npm run gen:kernel on Linux), not run by the CLI',
};

const RULES: ReadonlyArray<{ name: string; re: RegExp }> = [
  { name: 'Linux file path', re: /['"`]\/(?:proc|sys|dev|run|etc|usr|bin|var|tmp)(?:\/|['"`])/ },
  { name: 'uid/gid call Node lacks on Windows (use process.getuid?.())', re: /process\.(?:get|set)(?:e?uid|e?gid|groups)\(/ },
  { name: 'Linux tool spawned', re: /\b(?:spawn|spawnSync|execFile|execFileSync|exec|execSync)\(\s*['"`](?:mount|umount|ip|tc|bpftool|setpriv|taskset|nsenter|unshare|sh|bash|uname|modprobe|sysctl)['"`]/ },
  { name: 'signal Windows cannot send', re: /\bkill\([^)]*['"`]SIG(?:STOP|CONT|USR1|USR2|HUP|QUIT|TSTP|CHLD|PIPE|WINCH|ALRM|TTIN|TTOU)['"`]/ },
  { name: 'signal Windows never delivers', re: /\bprocess\.(?:on|once|addListener)\(\s*['"`]SIG(?:USR2|STOP|CONT|TSTP|CHLD|PIPE|ALRM|TTIN|TTOU|QUIT)['"`]/ },
];

/** line comments and block comments blanked (strings kept: a path in a string is what we look for) */
function stripComments(text: string): { code: string[]; raw: string[] } {
  const raw = text.split('\n');
  const code = text
    .replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, ' '))
    .split('\n')
    .map((l) => l.replace(/(^|[^:'"`\\])\/\/.*$/, '$1'));
  return { code, raw };
}

export function scan(file: string, text: string): string[] {
  const { code, raw } = stripComments(text);
  const out: string[] = [];
  code.forEach((line, i) => {
    for (const rule of RULES) {
      if (!rule.re.test(line)) continue;
      const guarded = code.slice(Math.max(0, i - 8), i + 1).some((l) => /process\.platform/.test(l));
      const said = /\/\/ platform: \S/.test(raw[i]!) || (i > 0 && /\/\/ platform: \S/.test(raw[i - 1]!));
      if (!guarded && !said) out.push(`${file}:${i + 1}: ${rule.name}: ${raw[i]!.trim()}`);
    }
  });
  return out;
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** the common path: src/ less the probe's Linux part (src/probe/ but its windows/ folder) and EXEMPT */
function commonPath(): string[] {
  return tsFiles(path.join(ROOT, 'src'))
    .map((f) => path.relative(ROOT, f))
    .filter((f) => !(f.startsWith('src/probe/') && !f.startsWith('src/probe/windows/')))
    .filter((f) => !EXEMPT[f]);
}

t.test('the scanner flags what it must and passes what it must', async (t) => {
  const bad = [
    "fs.readFileSync('/proc/self/mounts', 'utf8');",
    'const uid = process.getuid();',
    "spawnSync('mount', ['-t', 'tracefs']);",
    "process.kill(pid, 'SIGSTOP');",
    "process.on('SIGUSR2', f);",
    'fs.statSync(`/sys/kernel/btf/vmlinux`);',
  ];
  for (const b of bad) t.equal(scan('x.ts', `const a = 1;\n${b}\n`).length, 1, `flags: ${b}`);
  const good = [
    "if (process.platform === 'linux') fs.readFileSync('/proc/self/mounts', 'utf8');",
    "if (process.platform !== 'linux') return [];\nconst x = 1;\nfs.readFileSync('/proc/self/mounts', 'utf8');",
    "// platform: data for the Linux-only tracefs mount step\nconst TRACEFS = '/sys/kernel/tracing';",
    'const uid = process.getuid?.() ?? 0;',
    "// reads /proc/self/mounts on Linux\nconst y = 2;",
    "process.on('SIGINT', f); process.kill(process.pid, 'SIGKILL');",
    "const url = 'https://example.org/proc/x';",
  ];
  for (const g of good) t.same(scan('x.ts', g), [], `passes: ${g.split('\n').join(' | ')}`);
  t.equal(scan('x.ts', "const a = 1;\n\n\n\n\n\n\n\n\n\nif (process.platform === 'linux') {}\nfs.readFileSync('/proc/x');").length, 0, 'a check on the line before');
  t.equal(scan('x.ts', "if (process.platform === 'linux') {}\n1;\n2;\n3;\n4;\n5;\n6;\n7;\n8;\n9;\nfs.readFileSync('/proc/x');").length, 1, 'a check more than 8 lines before does not count');
});

t.test('the common path has no Linux-only call outside a platform check', async (t) => {
  const files = commonPath();
  t.ok(files.includes('src/cli/main.ts') && files.includes('src/abi/host.ts') && files.includes('src/runtime/wasi.ts') && files.includes('src/probe/windows/index.ts'), 'the CLI, the Wasm host, WASI and the Windows probe are scanned');
  t.notOk(files.includes('src/probe/kernel.ts'), "the probe's Linux part is not");
  const hits = files.flatMap((f) => scan(f, fs.readFileSync(path.join(ROOT, f), 'utf8')));
  t.same(hits, [], 'Linux-only calls on the common path');
});
