// Where a uprobe's binary is, as libbpf's resolve_full_path finds it: a name without '/' is searched for
// (libraries `*.so`/`*.so.*` in $LD_LIBRARY_PATH, /usr/lib64:/usr/lib and the arch's multiarch directory;
// programs in $PATH and /usr/bin:/usr/sbin). A path with a '/' is taken as it is.
import fs from 'node:fs';
import os from 'node:os';
import { BackendError } from '../../../src/errors.js';
import { ERRNO } from '../../../src/kernel/uapi.js';

/** libbpf's arch_specific_lib_paths(), by process.arch */
const MULTIARCH: Record<string, string> = {
  x64: '/lib/x86_64-linux-gnu',
  arm64: '/lib/aarch64-linux-gnu',
  ia32: '/lib/i386-linux-gnu',
  arm: '/lib/arm-linux-gnueabihf',
  riscv64: '/lib/riscv64-linux-gnu',
  s390x: '/lib/s390x-linux-gnu',
  ppc64: '/lib/powerpc64le-linux-gnu',
};

export interface SearchEnv {
  /** environment variables (LD_LIBRARY_PATH, PATH); default process.env */
  env?: Readonly<Record<string, string | undefined>>;
  /** process.arch naming the multiarch directory; default process.arch */
  arch?: string;
  /** the permission test (libbpf: faccessat R_OK, R_OK|X_OK for programs); default fs.accessSync */
  accessible?: (file: string, program: boolean) => boolean;
}

/** the directories searched for `name`, in order (libbpf's order; empty segments skipped) */
export function searchPath(name: string, opts: SearchEnv = {}): string[] {
  const env = opts.env ?? process.env;
  const lib = name.endsWith('.so') || name.includes('.so.');
  const lists = lib
    ? [env['LD_LIBRARY_PATH'], '/usr/lib64:/usr/lib', MULTIARCH[opts.arch ?? process.arch]]
    : [env['PATH'], '/usr/bin:/usr/sbin'];
  return lists.flatMap((l) => (l ? l.split(':').filter((d) => d !== '') : []));
}

function defaultAccessible(file: string, program: boolean): boolean {
  try {
    fs.accessSync(file, program ? fs.constants.R_OK | fs.constants.X_OK : fs.constants.R_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** the file `binary` names; BackendError ENOENT when a bare name is found nowhere */
export function resolveBinary(binary: string, opts: SearchEnv = {}): string {
  if (binary.includes('/')) return binary;
  const lib = binary.endsWith('.so') || binary.includes('.so.');
  const accessible = opts.accessible ?? defaultAccessible;
  const dirs = searchPath(binary, opts);
  for (const d of dirs) {
    const file = `${d}/${binary}`;
    if (accessible(file, !lib)) return file;
  }
  throw new BackendError(
    `uprobe target binary '${binary}' was not found in ${dirs.join(':') || '(no directory)'}`,
    ERRNO.ENOENT,
    '',
    `give its absolute path (e.g. ${lib ? `/lib/${os.machine()}-linux-gnu/${binary}` : `/usr/bin/${binary}`})`,
    { code: 'NOT_FOUND' },
  );
}
