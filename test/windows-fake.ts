// A recording fake of the Windows backend's binding interface (backends/windows/ebpfapi.ts), shared by
// test/windows-load.test.ts and test/windows-route.test.ts: every call appended to `calls`, answers scripted.
import fs from 'node:fs';
import path from 'node:path';
import type { EbpfBinding, Handle, MapDef, ProgramInfo } from '../backends/windows/ebpfapi.js';
import { WIN_PROG_TYPE } from '../src/kernel/ebpf-windows.js';

export type Call = [string, ...unknown[]];

/** A recording fake of EbpfBinding: each call appended to `calls`; answers scripted per test. */
export class FakeBinding implements EbpfBinding {
  readonly library = 'fake-ebpfapi.dll';
  readonly calls: Call[] = [];
  opened: Uint8Array | undefined;
  fail: Partial<Record<keyof EbpfBinding, number>> = {};
  interfaces: Record<string, number> = { 'Ethernet 2': 7 };
  nextFd = 100;
  /** bpf_map__fd's answers by map name */
  mapFds: Record<string, number> = { ring: 20, perf: 21, counts: 22, rb: 23 };
  ringCb: ((d: Uint8Array) => void) | undefined;
  perfCb: ((cpu: number, d: Uint8Array) => void) | undefined;
  lostCb: ((cpu: number, n: number) => void) | undefined;
  /** records the next poll's callback delivers */
  toDeliver: Uint8Array[] = [];
  native: { mapFds: number[]; progFds: number[] } = { mapFds: [50], progFds: [51, 52] };
  infos: Record<number, ProgramInfo> = { 51: { name: 'sys_xdp', type: WIN_PROG_TYPE.XDP }, 52: { name: 'sys_connect', type: WIN_PROG_TYPE.CGROUP_SOCK_ADDR } };
  sysSeen: { path: string; bytes: Uint8Array } | undefined;
  private rec(name: string, ...args: unknown[]): void {
    this.calls.push([name, ...args]);
  }
  objectOpenMem(bytes: Uint8Array, name: string): Handle | number {
    this.rec('objectOpenMem', name);
    this.opened = bytes.slice();
    return this.fail.objectOpenMem ?? 0x1000n;
  }
  mapCreate(def: MapDef & { name: string }): number {
    this.rec('mapCreate', def.name, def.type);
    return this.fail.mapCreate ?? this.nextFd++;
  }
  mapSetDef(obj: Handle, mapName: string, def: MapDef): number {
    this.rec('mapSetDef', obj, mapName, def.type);
    return this.fail.mapSetDef ?? 0;
  }
  objectLoad(obj: Handle): number {
    this.rec('objectLoad', obj);
    return this.fail.objectLoad ?? 0;
  }
  objectClose(obj: Handle): void {
    this.rec('objectClose', obj);
  }
  programFd(obj: Handle, name: string): number {
    this.rec('programFd', obj, name);
    return name === 'xdp_report' ? 10 : name === 'connect_allow' ? 11 : name === 'sockops_handler' ? 12 : -2;
  }
  mapFd(obj: Handle, name: string): number {
    this.rec('mapFd', obj, name);
    return this.mapFds[name] ?? -2;
  }
  mapOp(cmd: number, fd: number, mem: Uint8Array, keyOff: number, valOff: number, flags: number): number {
    this.rec('mapOp', cmd, fd, mem.length, keyOff, valOff, flags);
    return 0;
  }
  ifIndex(name: string): number {
    this.rec('ifIndex', name);
    return this.interfaces[name] ?? 0;
  }
  xdpAttach(ifindex: number, progFd: number, flags: number): number {
    this.rec('xdpAttach', ifindex, progFd, flags);
    return this.fail.xdpAttach ?? 0;
  }
  xdpDetach(ifindex: number, flags: number): number {
    this.rec('xdpDetach', ifindex, flags);
    return 0;
  }
  progAttach(progFd: number, target: number, attachType: number): number {
    this.rec('progAttach', progFd, target, attachType);
    return this.fail.progAttach ?? 0;
  }
  progDetach(progFd: number, target: number, attachType: number): number {
    this.rec('progDetach', progFd, target, attachType);
    return 0;
  }
  ringBufferNew(mapFd: number, onRecord: (data: Uint8Array) => void): Handle | number {
    this.rec('ringBufferNew', mapFd);
    this.ringCb = onRecord;
    return this.fail.ringBufferNew ?? 0x2000n;
  }
  ringBufferPoll(rb: Handle, timeoutMs: number): number {
    this.rec('ringBufferPoll', rb, timeoutMs);
    const n = this.toDeliver.length;
    for (const d of this.toDeliver.splice(0)) this.ringCb!(d);
    return n;
  }
  ringBufferFree(rb: Handle): void {
    this.rec('ringBufferFree', rb);
  }
  perfBufferNew(mapFd: number, pages: number, onSample: (cpu: number, data: Uint8Array) => void, onLost: (cpu: number, count: number) => void): Handle | number {
    this.rec('perfBufferNew', mapFd, pages);
    this.perfCb = onSample;
    this.lostCb = onLost;
    return 0x3000n;
  }
  perfBufferPoll(pb: Handle, timeoutMs: number): number {
    this.rec('perfBufferPoll', pb, timeoutMs);
    const n = this.toDeliver.length;
    for (const d of this.toDeliver.splice(0)) this.perfCb!(1, d);
    this.lostCb!(0, 2);
    return n;
  }
  perfBufferFree(pb: Handle): void {
    this.rec('perfBufferFree', pb);
  }
  loadNative(sysPath: string): { mapFds: number[]; progFds: number[] } | number {
    this.rec('loadNative', path.extname(sysPath));
    this.sysSeen = { path: sysPath, bytes: new Uint8Array(fs.readFileSync(sysPath)) };
    return this.fail.loadNative ?? this.native;
  }
  programInfo(progFd: number): ProgramInfo | number {
    this.rec('programInfo', progFd);
    return this.infos[progFd] ?? -9;
  }
  closeFd(fd: number): void {
    this.rec('closeFd', fd);
  }
}

export const names = (calls: Call[]): string[] => calls.map((c) => c[0]);

/** records as the ABI reads them: [u32 size][u32 0][data padded to 8] */
export function framed(out: Uint8Array, count: number): number[][] {
  const dv = new DataView(out.buffer, out.byteOffset);
  const recs: number[][] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const size = dv.getUint32(at, true);
    if (dv.getUint32(at + 4, true) !== 0) throw new Error('second header word not 0');
    recs.push([...out.subarray(at + 8, at + 8 + size)]);
    at += 8 + ((size + 7) & ~7);
  }
  return recs;
}
