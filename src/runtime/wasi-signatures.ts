// The 46 functions of WASI preview1 (wasi_snapshot_preview1) and their Wasm types, so that a module
// importing one with another type is refused before instantiation with both types in the message
// (Node 20 instantiates such a module and the guest calls the function with the wrong arguments).
import { ModuleError } from '../errors.js';
import { formatFuncType, type FuncType, type ModuleShape } from '../wasm/imports.js';

const WASI_MODULE = 'wasi_snapshot_preview1';

const I = 'i32';
const L = 'i64';
const errno = (...params: FuncType['params']): FuncType => ({ params, results: [I] });

const WASI_PREVIEW1: Readonly<Record<string, FuncType>> = {
  args_get: errno(I, I),
  args_sizes_get: errno(I, I),
  environ_get: errno(I, I),
  environ_sizes_get: errno(I, I),
  clock_res_get: errno(I, I),
  clock_time_get: errno(I, L, I),
  fd_advise: errno(I, L, L, I),
  fd_allocate: errno(I, L, L),
  fd_close: errno(I),
  fd_datasync: errno(I),
  fd_fdstat_get: errno(I, I),
  fd_fdstat_set_flags: errno(I, I),
  fd_fdstat_set_rights: errno(I, L, L),
  fd_filestat_get: errno(I, I),
  fd_filestat_set_size: errno(I, L),
  fd_filestat_set_times: errno(I, L, L, I),
  fd_pread: errno(I, I, I, L, I),
  fd_prestat_get: errno(I, I),
  fd_prestat_dir_name: errno(I, I, I),
  fd_pwrite: errno(I, I, I, L, I),
  fd_read: errno(I, I, I, I),
  fd_readdir: errno(I, I, I, L, I),
  fd_renumber: errno(I, I),
  fd_seek: errno(I, L, I, I),
  fd_sync: errno(I),
  fd_tell: errno(I, I),
  fd_write: errno(I, I, I, I),
  path_create_directory: errno(I, I, I),
  path_filestat_get: errno(I, I, I, I, I),
  path_filestat_set_times: errno(I, I, I, I, L, L, I),
  path_link: errno(I, I, I, I, I, I, I),
  path_open: errno(I, I, I, I, I, L, L, I, I),
  path_readlink: errno(I, I, I, I, I, I),
  path_remove_directory: errno(I, I, I),
  path_rename: errno(I, I, I, I, I, I),
  path_symlink: errno(I, I, I, I, I),
  path_unlink_file: errno(I, I, I),
  poll_oneoff: errno(I, I, I, I),
  proc_exit: { params: [I], results: [] },
  proc_raise: errno(I),
  sched_yield: errno(),
  random_get: errno(I, I),
  sock_accept: errno(I, I, I),
  sock_recv: errno(I, I, I, I, I, I),
  sock_send: errno(I, I, I, I, I),
  sock_shutdown: errno(I, I),
};

function same(a: FuncType, b: FuncType): boolean {
  return a.params.length === b.params.length && a.results.length === b.results.length && a.params.every((p, i) => p === b.params[i]) && a.results.every((r, i) => r === b.results[i]);
}

/** Throws ModuleError('WASM_IMPORT') for a wasi_snapshot_preview1 import that preview1 lacks or that has another type. */
export function checkWasiImports(shape: ModuleShape): void {
  for (const imp of shape.imports) {
    if (imp.module !== WASI_MODULE) continue;
    const where = `${imp.module}.${imp.name}`;
    const want = Object.hasOwn(WASI_PREVIEW1, imp.name) ? WASI_PREVIEW1[imp.name] : undefined;
    if (!want) throw new ModuleError('WASM_IMPORT', `the module imports ${where}, which WASI preview1 does not have`);
    if (imp.kind !== 'func' || !imp.type || !same(imp.type, want)) {
      throw new ModuleError('WASM_IMPORT', `import ${where} has type ${imp.type ? formatFuncType(imp.type) : imp.kind}, expected ${formatFuncType(want)}`);
    }
  }
}
