// The ringbuf -> perf buffer compat pass (issue #5, point 3), on the ELF bytes before libbpf opens them.
//
// For a kernel without BPF_MAP_TYPE_RINGBUF (Linux < 5.8):
//   - every program that uses a ring buffer helper first spills its ctx (r1) to a stack slot just below the
//     stack its section already uses, so that bpf_perf_event_output has it later;
//   - bpf_ringbuf_output(map, data, size, flags) becomes bpf_perf_event_output(ctx, map, CURRENT_CPU, data, size);
//   - bpf_ringbuf_reserve(map, size, flags) becomes a lookup of key 0 in a per-CPU array scratch map
//     (value size = the largest reserve), referenced by fd (BPF_PSEUDO_MAP_FD): the pass is pure, so it
//     leaves the immediate -1 and says where it is (scratchFdAt); the backend creates the map and writes
//     its fd there before it opens the bytes;
//   - bpf_ringbuf_submit(ptr, flags) becomes bpf_perf_event_output(ctx, <the ring buffer map>, CURRENT_CPU, ptr, size
//     of that program's reserve), with a new R_BPF_64_64 relocation to the map;
//   - bpf_ringbuf_discard becomes `r0 = 0`.
// The ring buffer maps themselves are turned into perf event arrays after open (bpf_map__set_type); the
// guest's bpf_buffer poll reads perf buffers the same way. Instructions are inserted, so jumps, bpf-to-bpf
// calls, symbols, relocations and .BTF.ext func/line/CO-RE records are all moved to the new offsets.
import { parseElf, SHF, STB, STT, type ElfFile, type ElfSection } from '../../src/object/elf.js';
import { BPF_PSEUDO, HELPER } from '../../src/kernel/uapi.js';

/** the stack limit: the ctx spill slot and the scratch map's key go just below what the section already uses */
const STACK_MIN = -512;
const BPF_PSEUDO_MAP_FD = BPF_PSEUDO.MAP_FD;
const R_BPF_64_64 = 1;

export class CompatError extends Error {}

export interface RingbufRewrite {
  /** the rewritten object */
  bytes: Uint8Array;
  /** value size the per-CPU scratch map needs (0: no reserve, no scratch map needed) */
  scratchValueSize: number;
  /** byte offsets in `bytes` of the s32 immediates that must hold the scratch map's fd */
  scratchFdAt: number[];
  /** one line per change, for --verbose and `check` */
  notes: string[];
}

type Insn = Uint8Array; // 8 bytes

function insn(code: number, dst: number, src: number, off: number, imm: number): Insn {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  b[0] = code;
  b[1] = (src << 4) | dst;
  v.setInt16(2, off, true);
  v.setInt32(4, imm, true);
  return b;
}
const MOV64_IMM = (dst: number, imm: number): Insn => insn(0xb7, dst, 0, 0, imm);
const MOV64_REG = (dst: number, src: number): Insn => insn(0xbf, dst, src, 0, 0);
const MOV32_IMM = (dst: number, imm: number): Insn => insn(0xb4, dst, 0, 0, imm);
const ADD64_IMM = (dst: number, imm: number): Insn => insn(0x07, dst, 0, 0, imm);
const STX_DW = (dst: number, src: number, off: number): Insn => insn(0x7b, dst, src, off, 0);
const LDX_DW = (dst: number, src: number, off: number): Insn => insn(0x79, dst, src, off, 0);
const ST_W = (dst: number, off: number, imm: number): Insn => insn(0x62, dst, 0, off, imm);
const CALL = (id: number): Insn => insn(0x85, 0, 0, 0, id);
const LD_IMM64 = (dst: number, src: number, imm: number): Insn[] => [insn(0x18, dst, src, 0, imm), insn(0, 0, 0, 0, 0)];

const code = (i: Insn): number => i[0]!;
const dstReg = (i: Insn): number => i[1]! & 0xf;
const srcReg = (i: Insn): number => i[1]! >> 4;
const off16 = (i: Insn): number => new DataView(i.buffer, i.byteOffset, 8).getInt16(2, true);
const imm32 = (i: Insn): number => new DataView(i.buffer, i.byteOffset, 8).getInt32(4, true);
const setOff = (i: Insn, v: number): void => new DataView(i.buffer, i.byteOffset, 8).setInt16(2, v, true);
const setImm = (i: Insn, v: number): void => new DataView(i.buffer, i.byteOffset, 8).setInt32(4, v, true);
const isHelperCall = (i: Insn, id?: number): boolean => code(i) === 0x85 && srcReg(i) === 0 && (id === undefined || imm32(i) === id);
const isRingbufCall = (i: Insn): boolean => isHelperCall(i) && imm32(i) >= HELPER.ringbuf_output && imm32(i) <= HELPER.ringbuf_query;

/** Whether any program in the object calls a ring buffer helper. */
export function usesRingbufHelpers(bytes: Uint8Array): boolean {
  const elf = parseElf(bytes);
  return elf.sections.some((s) => (s.flags & SHF.EXECINSTR) !== 0 && split(s.data()).some(isRingbufCall));
}

function split(data: Uint8Array): Insn[] {
  const out: Insn[] = [];
  for (let o = 0; o + 8 <= data.length; o += 8) out.push(data.slice(o, o + 8));
  return out;
}

/**
 * Rewrites every ring buffer helper call of `bytes` onto perf_event_output. The reserves use a per-CPU array
 * map (key u32, one entry, value size scratchValueSize) whose fd goes at each offset of scratchFdAt
 * (`scratchFd`, default -1, is written there meanwhile).
 */
export function rewriteRingbuf(bytes: Uint8Array, scratchFd = -1): RingbufRewrite {
  const elf = parseElf(bytes);
  if (!elf.littleEndian) throw new CompatError('ringbuf compat: big-endian objects are not supported');
  const notes: string[] = [];
  const out = new Uint8Array(bytes); // copy; grown sections are appended
  const appended: Array<{ section: number; data: Uint8Array }> = [];
  const symtab = elf.sections.find((s) => s.type === 2);
  let scratchValueSize = 0;
  const btfExt = elf.section('.BTF.ext');
  const btf = elf.section('.BTF');
  const extPatches: Array<{ secName: string; remap: (byteOff: number, exact: boolean) => number }> = [];
  /** the scratch fd immediates: section index and instruction index in its new data */
  const fdSlots: Array<{ section: number; insn: number }> = [];

  for (const sec of elf.sections) {
    if ((sec.flags & SHF.EXECINSTR) === 0 || sec.size === 0) continue;
    const old = split(sec.data());
    if (!old.some(isRingbufCall)) continue;
    const rel = elf.relocations.find((r) => r.target === sec.index);
    const relAt = new Map<number, number>(); // insn index -> symbol index
    for (const e of rel?.entries ?? []) relAt.set(e.offset / 8, e.sym);
    const funcs = elf.symbols
      .filter((s) => s.shndx === sec.index && s.type === STT.FUNC)
      .sort((a, b) => a.value - b.value);
    const funcOf = (i: number): (typeof funcs)[number] | undefined => funcs.filter((f) => f.value / 8 <= i).pop();
    // the stack the programs of this section already use must stay above the reserved slots
    const lowest = lowestStackOffset(old);
    const CTX_SLOT = Math.floor(lowest / 8) * 8 - 8;
    const KEY_SLOT = CTX_SLOT - 8;
    if (KEY_SLOT < STACK_MIN) {
      throw new CompatError(`ringbuf compat: section ${sec.name} uses the stack down to fp${lowest}; the pass needs 16 more bytes of the 512`);
    }
    // per function: the ring buffer map and record size of its reserves
    const reserveOf = new Map<number, { sym: number; size: number }>();
    const prefix = new Map<number, Insn[]>(); // inserted before old insn i
    const body = new Map<number, Insn[]>(); // replaces old insn i
    const newRelocs: Array<{ oldIdx: number; within: number; sym: number }> = [];
    for (let i = 0; i < old.length; i++) {
      const ins = old[i]!;
      if (!isRingbufCall(ins)) continue;
      const id = imm32(ins);
      const f = funcOf(i);
      if (!f || f.bind === STB.LOCAL) {
        throw new CompatError(`ringbuf compat: a ring buffer helper called from a subprogram (${f?.name ?? 'unknown'}) in ${sec.name} is not supported`);
      }
      const start = f.value / 8;
      if (!prefix.has(start)) prefix.set(start, [STX_DW(10, 1, CTX_SLOT)]);
      if (id === HELPER.ringbuf_output) {
        body.set(i, [MOV64_REG(5, 3), MOV64_REG(4, 2), MOV64_REG(2, 1), LDX_DW(1, 10, CTX_SLOT), MOV32_IMM(3, -1), CALL(HELPER.perf_event_output)]);
        notes.push(`${f.name}: bpf_ringbuf_output -> bpf_perf_event_output`);
      } else if (id === HELPER.ringbuf_reserve) {
        const size = constBefore(old, i, 2, start);
        const sym = ldImm64Before(old, i, 1, start, relAt);
        if (size === undefined || sym === undefined) {
          throw new CompatError(`ringbuf compat: ${f.name}: cannot find the map and constant size of a bpf_ringbuf_reserve`);
        }
        const prev = reserveOf.get(start);
        if (prev && prev.sym !== sym) throw new CompatError(`ringbuf compat: ${f.name} reserves from two ring buffers`);
        reserveOf.set(start, { sym, size: Math.max(size, prev?.size ?? 0) });
        scratchValueSize = Math.max(scratchValueSize, size);
        body.set(i, [...LD_IMM64(1, BPF_PSEUDO_MAP_FD, scratchFd), ST_W(10, KEY_SLOT, 0), MOV64_REG(2, 10), ADD64_IMM(2, KEY_SLOT), CALL(HELPER.map_lookup_elem)]);
        notes.push(`${f.name}: bpf_ringbuf_reserve(${size} bytes) -> per-CPU scratch map lookup`);
      } else if (id === HELPER.ringbuf_discard) {
        body.set(i, [MOV64_IMM(0, 0)]);
        notes.push(`${f.name}: bpf_ringbuf_discard -> no-op`);
      } else if (id !== HELPER.ringbuf_submit) {
        throw new CompatError(`ringbuf compat: ${f.name} calls bpf_ringbuf_query, which has no perf buffer equivalent`);
      }
    }
    for (let i = 0; i < old.length; i++) {
      const ins = old[i]!;
      if (!isHelperCall(ins, HELPER.ringbuf_submit)) continue;
      const f = funcOf(i)!;
      const r = reserveOf.get(f.value / 8);
      if (!r) throw new CompatError(`ringbuf compat: ${f.name} submits a record it did not reserve`);
      // r1 = record; r2 = flags
      body.set(i, [MOV64_REG(4, 1), LDX_DW(1, 10, CTX_SLOT), ...LD_IMM64(2, 0, 0), MOV32_IMM(3, -1), MOV64_IMM(5, r.size), CALL(HELPER.perf_event_output)]);
      newRelocs.push({ oldIdx: i, within: 2, sym: r.sym });
      notes.push(`${f.name}: bpf_ringbuf_submit -> bpf_perf_event_output(${r.size} bytes)`);
    }

    // layout: block(i) = prefix(i) ++ body(i)
    const blockStart: number[] = [];
    let n = 0;
    for (let i = 0; i < old.length; i++) {
      blockStart.push(n);
      n += (prefix.get(i)?.length ?? 0) + (body.get(i)?.length ?? 1);
    }
    blockStart.push(n);
    const pos = (i: number): number => blockStart[i]! + (prefix.get(i)?.length ?? 0);
    for (const [i, b] of body) if (imm32(b[0]!) === scratchFd && code(b[0]!) === 0x18 && srcReg(b[0]!) === BPF_PSEUDO_MAP_FD) fdSlots.push({ section: sec.index, insn: pos(i) });
    const insns: Insn[] = [];
    for (let i = 0; i < old.length; i++) {
      insns.push(...(prefix.get(i) ?? []));
      const b = body.get(i);
      if (b) {
        insns.push(...b);
        continue;
      }
      const ins = old[i]!;
      const cls = code(ins) & 7;
      const op = code(ins) & 0xf0;
      if ((cls === 5 || cls === 6) && op !== 0x80 && op !== 0x90) {
        // jump: old target i + 1 + off
        const target = i + 1 + off16(ins);
        const noff = blockStart[target]! - pos(i) - 1;
        if (noff < -32768 || noff > 32767) throw new CompatError(`ringbuf compat: a jump in ${sec.name} is out of range after the rewrite`);
        setOff(ins, noff);
      } else if (code(ins) === 0x85 && srcReg(ins) === 1) {
        const symIdx = relAt.get(i);
        if (symIdx === undefined) {
          // bpf-to-bpf call within the section, not relocated by libbpf: relative
          const target = i + 1 + imm32(ins);
          setImm(ins, blockStart[target]! - pos(i) - 1);
        } else {
          // relocated call: libbpf's target is sym.st_value / 8 + imm + 1
          const sym = elf.symbols[symIdx];
          if (sym && sym.shndx === sec.index) {
            const base = sym.value / 8;
            setImm(ins, blockStart[base + imm32(ins) + 1]! - blockStart[base]! - 1);
          }
        }
      }
      insns.push(ins);
    }
    const data = new Uint8Array(insns.length * 8);
    insns.forEach((x, k) => data.set(x, k * 8));
    appended.push({ section: sec.index, data });

    // relocations of this section
    if (rel) {
      const entries = rel.entries.map((e) => ({ offset: pos(e.offset / 8) * 8, sym: e.sym, type: e.type }));
      for (const r of newRelocs) entries.push({ offset: (blockStart[r.oldIdx]! + r.within) * 8, sym: r.sym, type: R_BPF_64_64 });
      entries.sort((a, b) => a.offset - b.offset);
      const rd = new Uint8Array(entries.length * 16);
      const v = new DataView(rd.buffer);
      entries.forEach((e, k) => {
        v.setBigUint64(k * 16, BigInt(e.offset), true);
        v.setBigUint64(k * 16 + 8, (BigInt(e.sym) << 32n) | BigInt(e.type), true);
      });
      if (rel.section.type !== 9) throw new CompatError('ringbuf compat: RELA relocations are not supported');
      appended.push({ section: rel.section.index, data: rd });
    } else if (newRelocs.length) {
      throw new CompatError(`ringbuf compat: section ${sec.name} has no relocation section`);
    }

    // symbols in this section
    if (symtab) {
      const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
      for (const s of elf.symbols) {
        if (s.shndx !== sec.index || s.index === 0) continue;
        const at = symtab.offset + s.index * 24;
        const i0 = s.value / 8;
        v.setBigUint64(at + 8, BigInt(blockStart[i0]! * 8), true);
        if (s.type === STT.FUNC && s.size > 0) v.setBigUint64(at + 16, BigInt((blockStart[i0 + s.size / 8]! - blockStart[i0]!) * 8), true);
      }
    }
    extPatches.push({ secName: sec.name, remap: (b, exact) => (exact ? pos(b / 8) : blockStart[b / 8]!) * 8 });
  }

  if (btfExt && btf && extPatches.length) patchBtfExt(out, btf, btfExt, extPatches);
  const { bytes: rewritten, placed } = relayout(out, elf, appended);
  const scratchFdAt = fdSlots.map((f) => placed.get(f.section)! + f.insn * 8 + 4);
  return { bytes: rewritten, scratchValueSize, scratchFdAt, notes };
}

/** the constant a `mov64 rX, imm` before insn i (in the same function) gives register `reg` */
function constBefore(insns: Insn[], i: number, reg: number, start: number): number | undefined {
  for (let k = i - 1; k >= start; k--) {
    const x = insns[k]!;
    if (code(x) === 0 && k > start && code(insns[k - 1]!) === 0x18) continue;
    if ((code(x) & 7) === 5 || (code(x) & 7) === 6) return undefined; // a jump or call: stop
    if (dstReg(x) !== reg) continue;
    const cls = code(x) & 7;
    if (code(x) === 0xb7 || code(x) === 0xb4) return imm32(x);
    if (cls === 4 || cls === 7 || cls === 0 || cls === 1) return undefined; // written some other way
  }
  return undefined;
}

/** the relocation symbol of the `ld_imm64 reg` before insn i */
function ldImm64Before(insns: Insn[], i: number, reg: number, start: number, relAt: Map<number, number>): number | undefined {
  for (let k = i - 1; k >= start; k--) {
    const x = insns[k]!;
    if (code(x) === 0x18 && dstReg(x) === reg) return relAt.get(k);
    if (code(x) === 0 && k > start && code(insns[k - 1]!) === 0x18) continue;
    if (dstReg(x) === reg && [4, 7, 0, 1].includes(code(x) & 7)) return undefined;
  }
  return undefined;
}

/** the lowest r10-relative offset the instructions touch (directly, or as `rX = r10; rX += imm`) */
function lowestStackOffset(insns: Insn[]): number {
  let lowest = 0;
  const fpCopy = new Set<number>();
  for (const x of insns) {
    const c = code(x);
    const cls = c & 7;
    if ((cls === 1 || cls === 3 || cls === 2) && (cls === 1 ? srcReg(x) : dstReg(x)) === 10) lowest = Math.min(lowest, off16(x));
    if (c === 0xbf && srcReg(x) === 10) fpCopy.add(dstReg(x));
    else if (c === 0x07 && fpCopy.has(dstReg(x))) lowest = Math.min(lowest, imm32(x));
    else if (cls === 4 || cls === 7 || cls === 0 || cls === 1) fpCopy.delete(dstReg(x));
  }
  return lowest;
}

/** moves .BTF.ext func_info, line_info (to block starts) and CO-RE relocations (to the instruction itself) */
function patchBtfExt(out: Uint8Array, btf: ElfSection, ext: ElfSection, patches: Array<{ secName: string; remap: (byteOff: number, exact: boolean) => number }>): void {
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const bhdr = btf.offset;
  const strBase = bhdr + v.getUint32(bhdr + 4, true) + v.getUint32(bhdr + 16, true);
  const str = (o: number): string => {
    let e = strBase + o;
    while (out[e] !== 0) e++;
    return new TextDecoder().decode(out.subarray(strBase + o, e));
  };
  const h = ext.offset;
  const hdrLen = v.getUint32(h + 4, true);
  const parts: Array<[number, number, boolean]> = [
    [v.getUint32(h + 8, true), v.getUint32(h + 12, true), false],
    [v.getUint32(h + 16, true), v.getUint32(h + 20, true), false],
  ];
  if (hdrLen >= 32) parts.push([v.getUint32(h + 24, true), v.getUint32(h + 28, true), true]);
  for (const [offRel, len, exact] of parts) {
    if (len === 0) continue;
    let p = h + hdrLen + offRel;
    const end = p + len;
    const recSize = v.getUint32(p, true);
    p += 4;
    while (p < end) {
      const name = str(v.getUint32(p, true));
      const num = v.getUint32(p + 4, true);
      p += 8;
      const patch = patches.find((x) => x.secName === name);
      for (let k = 0; k < num; k++, p += recSize) {
        if (patch) v.setUint32(p, patch.remap(v.getUint32(p, true), exact), true);
      }
    }
  }
}

/** appends the new contents of the grown sections and points their headers at them */
function relayout(out: Uint8Array, elf: ElfFile, appended: Array<{ section: number; data: Uint8Array }>): { bytes: Uint8Array; placed: Map<number, number> } {
  let size = (out.length + 7) & ~7;
  const placed = appended.map((a) => {
    const at = size;
    size = (size + a.data.length + 7) & ~7;
    return { ...a, at };
  });
  const res = new Uint8Array(size);
  res.set(out);
  const v = new DataView(res.buffer);
  const shoff = Number(v.getBigUint64(0x28, true));
  const shentsize = v.getUint16(0x3a, true);
  for (const p of placed) {
    res.set(p.data, p.at);
    const sh = shoff + p.section * shentsize;
    v.setBigUint64(sh + 24, BigInt(p.at), true);
    v.setBigUint64(sh + 32, BigInt(p.data.length), true);
  }
  void elf;
  return { bytes: res, placed: new Map(placed.map((p) => [p.section, p.at])) };
}
