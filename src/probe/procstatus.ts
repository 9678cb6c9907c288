// /proc/self/status: the effective uid and capabilities (kept apart so the cache check loads little).

export interface ProcStatus {
  uid: number | null;
  capEff: bigint | null;
}

export function parseStatus(text: string): ProcStatus {
  let uid: number | null = null;
  let capEff: bigint | null = null;
  for (const line of text.split('\n')) {
    const u = /^Uid:\s+(\d+)\s+(\d+)/.exec(line);
    if (u) uid = Number(u[2]); // effective uid
    const c = /^CapEff:\s+([0-9a-fA-F]{1,16})\s*$/.exec(line);
    if (c) capEff = BigInt(`0x${c[1]}`);
  }
  return { uid, capEff };
}
