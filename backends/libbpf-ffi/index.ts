// The kernel backend's native part over the system's libbpf through koffi (no compiler needed): the
// same contract as the addon (backends/linux/native.ts's KernelLib), so backends/linux runs on either.
import type { KernelLib } from '../linux/native.js';
import { libbpfApi } from './api.js';
import { linuxApi } from './linux.js';
import { libcApi } from './libc.js';
import * as objects from './objects.js';
import * as attach from './attach.js';
import * as buffers from './buffers.js';
import { mapCreate, mapOp } from './mapop.js';
import * as sys from './sys.js';
import { takeLog } from './log.js';

export { libraryCandidates } from './library.js';

let cached: (KernelLib & { readonly library: string }) | undefined;

/**
 * The FFI kernel library: opens libbpf.so.1 and declares its calls now (so a missing library or call is
 * reported here, once, with the fix). Linux only: the Windows backend uses api.ts directly.
 */
export function ffiKernel(): KernelLib & { readonly library: string } {
  if (cached) return cached;
  if (process.platform !== 'linux') throw new Error(`the FFI kernel path runs on Linux; this is ${process.platform}`);
  const { api } = libbpfApi();
  linuxApi();
  libcApi();
  cached = {
    library: api.file,
    open: objects.open,
    programs: objects.programs,
    maps: objects.maps,
    setMapType: objects.setMapType,
    setMapPinPath: objects.setMapPinPath,
    setMapFlags: objects.setMapFlags,
    load: objects.load,
    close: (obj) => objects.close(obj, attach.detach),
    attachAuto: attach.attachAuto,
    attachXdp: attach.attachXdp,
    attachCgroup: attach.attachCgroup,
    attachUprobe: attach.attachUprobe,
    attachPerfEvent: attach.attachPerfEvent,
    attachSocket: attach.attachSocket,
    attachStructOps: attach.attachStructOps,
    detach: attach.detach,
    perfEventOpen: sys.perfEventOpen,
    openPacketSocket: sys.openPacketSocket,
    ifIndex: sys.ifIndex,
    eventFd: sys.eventFd,
    closeFd: sys.closeFd,
    numPossibleCpus: sys.numPossibleCpus,
    // no V8 fast calls: the ABI layer's JavaScript path checks every guest pointer, then calls mapOp
    fastCalls: false,
    mapOp,
    ringbufOpen: buffers.ringbufOpen,
    perfbufOpen: buffers.perfbufOpen,
    bufferPoll: buffers.bufferPoll,
    bufferPendingSize: buffers.bufferPendingSize,
    bufferLost: buffers.bufferLost,
    bufferClose: buffers.bufferClose,
    takeLog,
    mapCreate,
  };
  return cached;
}
