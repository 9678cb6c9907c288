// The uprobe target grammar, shared by the kernel and userspace backends and the policy: the binary a
// uprobe/usdt section names (libbpf reads it up to the first ':') and `BINARY:FUNCTION[+OFFSET]`.
// Strings in, parts out; no file is looked at here.

/** the binary a uprobe or usdt section names (libbpf reads it up to the first ':'), if any */
export function sectionBinary(section: string): string | undefined {
  const m = /^(?:uprobe|uretprobe|usdt)(?:\.s)?\/([^:]+):/.exec(section);
  return m ? m[1] : undefined;
}

export interface UprobeSpec {
  binary: string;
  /** FUNCTION as written (a name, possibly versioned `malloc@@GLIBC_2.2.5`, or a raw offset `0x1130`) */
  func: string;
  /** +OFFSET, 0 when absent */
  offset: number;
}

/** `BINARY:FUNCTION[+OFFSET]` (OFFSET decimal or 0x hex); undefined when `spec` is not of that form */
export function parseUprobeSpec(spec: string): UprobeSpec | undefined {
  const m = /^(.+):([^:+]+)(?:\+(0x[0-9a-fA-F]+|\d+))?$/.exec(spec);
  if (!m) return undefined;
  const [, binary, func, off] = m;
  return { binary: binary!, func: func!, offset: off ? Number(off) : 0 };
}
