// Edits a backend applies to an object's bytes as it opens them, which the bytes themselves cannot carry:
// maps whose type changes, and maps the host creates and hands to the programs by fd. Compat passes
// (compat/) describe them as data; backends honour them (or refuse the object when they cannot).

/** A map of the object whose type and sizes change before the load (libbpf's bpf_map__set_type and sizes). */
export interface MapRetype {
  /** the map's name in the object */
  name: string;
  /** enum bpf_map_type */
  type: number;
  keySize: number;
  valueSize: number;
  /** 0: the backend's default for the type (perf event arrays: one slot per possible CPU) */
  maxEntries: number;
}

/** A map the backend creates for the object; its fd is written at every `fdAt` (s32 instruction immediates). */
export interface HostMap {
  name: string;
  /** enum bpf_map_type */
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  /** byte offsets in the object's bytes */
  fdAt: readonly number[];
}

/** Flags OR-ed into a map's creation flags (e.g. BPF_F_LINK on struct_ops maps, so a link holds their registration). */
export interface MapFlags {
  name: string;
  flags: number;
}

export interface ObjectEdits {
  retype?: readonly MapRetype[];
  hostMaps?: readonly HostMap[];
  mapFlags?: readonly MapFlags[];
}

/** Whether `edits` asks anything of the backend. */
export function hasEdits(edits: ObjectEdits | undefined): edits is ObjectEdits {
  return !!edits && ((edits.retype?.length ?? 0) > 0 || (edits.hostMaps?.length ?? 0) > 0 || (edits.mapFlags?.length ?? 0) > 0);
}
