// wasm-bpf command line: dispatches to one file per command.
import fs from 'node:fs';
import process from 'node:process';
import { fileOf, mark } from '../trace.js';
import { say } from './say.js';

mark('script_start', () => fileOf(import.meta.url));
// `ps` and `top` show the tool and its arguments, not node and a script path (/proc/PID/comm: wasm-bpf)
process.title = ['wasm-bpf', ...process.argv.slice(2)].join(' ');
if (process.platform === 'linux') {
  try {
    fs.writeFileSync('/proc/self/comm', 'wasm-bpf'); // the title's first 15 bytes otherwise ('wasm-bpf run /w')
  } catch {
    // no procfs (a container without it)
  }
}

/** the package's version (package.json beside dist/, read once; the bundle sits at the same depth) */
function version(): string {
  try {
    return (JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

const USAGE = `wasm-bpf: run eBPF applications packaged as WebAssembly modules

Usage:
  wasm-bpf run [options] <module.wasm> [args...]   run a module (see \`wasm-bpf run --help\`)
  wasm-bpf <module.wasm> [args...]                 shorthand for \`run\`
  wasm-bpf gen skeleton <x.bpf.o> [-n NAME]        write a C guest skeleton header to stdout
  wasm-bpf vm run|asm|disasm ...                   the userspace eBPF VM (see \`wasm-bpf vm --help\`)
  wasm-bpf check [--json] <app.wasm|x.bpf.o>       which backend would run each eBPF object, and what is missing
  wasm-bpf probe [--json] [--full] [--root DIR]    what eBPF can do on this host (see \`wasm-bpf probe --help\`)
  wasm-bpf btf path|fetch|clear|minimize ...       vmlinux BTF for CO-RE: the kernel's own, or BTFHub's (cached)

Options:
  -h, --help       show this help
  -V, --version    print the version
`;

/** starts the guest's thread before anything else, so that its start-up overlaps the CLI's (not for --help) */
async function prestart(args: string[]): Promise<void> {
  if (args.includes('-h') || args.includes('--help') || !args.some((a) => a.endsWith('.wasm'))) return;
  (await import('../runtime/prestart.js')).prestartWorker();
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return cmd === undefined ? 2 : 0;
    case '-V':
    case '--version':
      process.stdout.write(`wasm-bpf ${version()}\n`);
      return 0;
    case 'gen': {
      const { genCommand } = await import('./gen.js');
      return genCommand(rest);
    }
    case 'probe': {
      const { probeCommand } = await import('./probe.js');
      return probeCommand(rest);
    }
    case 'run': {
      await prestart(rest);
      const { runCommand } = await import('./run.js');
      mark('cli_modules');
      return runCommand(rest);
    }
    case 'check': {
      const { checkCommand } = await import('./check.js');
      return checkCommand(rest);
    }
    case 'btf': {
      const { btfCommand } = await import('./btf.js');
      return btfCommand(rest);
    }
    case 'vm': {
      const { vmCommand } = await import('./vm.js');
      return vmCommand(rest);
    }
    default: {
      if (cmd.startsWith('-') || cmd.endsWith('.wasm')) {
        await prestart(argv);
        const { runCommand } = await import('./run.js');
        mark('cli_modules');
        return runCommand(argv);
      }
      say('wasm-bpf', `unknown command '${cmd}'`);
      process.stderr.write(`\n${USAGE}`);
      return 2;
    }
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    say('wasm-bpf', `${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
