// A tiny eBPF assembler for the probe programs (struct bpf_insn: u8 code, u8 dst:4|src:4, s16 off, s32 imm).

export interface Insn {
  code: number;
  dst?: number;
  src?: number;
  off?: number;
  imm?: number;
}

function assemble(insns: readonly Insn[]): Uint8Array {
  const out = new Uint8Array(insns.length * 8);
  const dv = new DataView(out.buffer);
  insns.forEach((i, k) => {
    dv.setUint8(k * 8, i.code);
    dv.setUint8(k * 8 + 1, ((i.src ?? 0) << 4) | (i.dst ?? 0)); // little-endian bitfield order
    dv.setInt16(k * 8 + 2, i.off ?? 0, true);
    dv.setInt32(k * 8 + 4, i.imm ?? 0, true);
  });
  return out;
}

// opcodes
const ALU64_MOV_K = 0xb7; // r = imm
const ALU64_MOV_X = 0xbf; // r = src (off 8/16/32: sign-extending, ISA v4)
const ALU64_SUB_K = 0x17;
const JMP_JNE_K = 0x55;
const JMP_JLT_K = 0xa5; // ISA v2
const JMP32_JLT_K = 0xa6; // ISA v3
const JMP_CALL = 0x85;
const JMP_EXIT = 0x95;

const mov0: Insn = { code: ALU64_MOV_K, dst: 0, imm: 0 };
const exit: Insn = { code: JMP_EXIT };

/** r0 = 0; exit */
export const RETURN_0 = assemble([mov0, exit]);

/** call helper; r0 = 0; exit */
export function callHelper(id: number): Uint8Array {
  return assemble([{ code: JMP_CALL, imm: id }, mov0, exit]);
}

/** a loop the verifier must walk (back-edge): r1 = 4; loop: r1 -= 1; if r1 != 0 goto loop; r0 = 0; exit */
export const BOUNDED_LOOP = assemble([
  { code: ALU64_MOV_K, dst: 1, imm: 4 },
  { code: ALU64_SUB_K, dst: 1, imm: 1 },
  { code: JMP_JNE_K, dst: 1, off: -2, imm: 0 },
  mov0,
  exit,
]);

/** r0 = 0; if r0 < 0 goto +0; exit (BPF_JLT, ISA v2) */
export const ISA_V2 = assemble([mov0, { code: JMP_JLT_K, dst: 0, off: 0, imm: 0 }, exit]);

/** r0 = 0; if w0 < 0 goto +0; exit (BPF_JMP32, ISA v3) */
export const ISA_V3 = assemble([mov0, { code: JMP32_JLT_K, dst: 0, off: 0, imm: 0 }, exit]);

/** r0 = 0; r0 = (s8)r0; exit (BPF_MOVSX, ISA v4) */
export const ISA_V4 = assemble([mov0, { code: ALU64_MOV_X, dst: 0, src: 0, off: 8 }, exit]);
