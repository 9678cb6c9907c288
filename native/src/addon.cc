// Registration of the wasm-bpf native addon (contract: backends/linux/native.ts, NativeAddon).
#include <napi.h>
#include <sys/resource.h>

#include "fastcall.h"
#include "log.h"
#include "registry.h"


namespace wbn {
// object.cc
Napi::Value Open(const Napi::CallbackInfo&);
Napi::Value Programs(const Napi::CallbackInfo&);
Napi::Value Maps(const Napi::CallbackInfo&);
Napi::Value SetMapType(const Napi::CallbackInfo&);
Napi::Value SetMapPinPath(const Napi::CallbackInfo&);
Napi::Value SetMapFlags(const Napi::CallbackInfo&);
Napi::Value Load(const Napi::CallbackInfo&);
Napi::Value Close(const Napi::CallbackInfo&);
// attach.cc
Napi::Value AttachAuto(const Napi::CallbackInfo&);
Napi::Value AttachXdp(const Napi::CallbackInfo&);
Napi::Value AttachCgroup(const Napi::CallbackInfo&);
Napi::Value AttachUprobe(const Napi::CallbackInfo&);
Napi::Value AttachPerfEvent(const Napi::CallbackInfo&);
Napi::Value AttachSocket(const Napi::CallbackInfo&);
Napi::Value AttachStructOps(const Napi::CallbackInfo&);
Napi::Value Detach(const Napi::CallbackInfo&);
// sys.cc
Napi::Value PerfEventOpen(const Napi::CallbackInfo&);
Napi::Value OpenPacketSocket(const Napi::CallbackInfo&);
Napi::Value IfIndex(const Napi::CallbackInfo&);
Napi::Value EventFd(const Napi::CallbackInfo&);
Napi::Value CloseFd(const Napi::CallbackInfo&);
Napi::Value ExitNow(const Napi::CallbackInfo&);
Napi::Value NumPossibleCpus(const Napi::CallbackInfo&);
Napi::Value TakeLogFn(const Napi::CallbackInfo&);
// maps.cc (raw N-API, hot path)
napi_value MapOp(napi_env, napi_callback_info);
// buffer.cc
Napi::Value RingbufOpen(const Napi::CallbackInfo&);
Napi::Value PerfbufOpen(const Napi::CallbackInfo&);
napi_value BufferPoll(napi_env, napi_callback_info);  // raw N-API
Napi::Value BufferPendingSize(const Napi::CallbackInfo&);
Napi::Value BufferLost(const Napi::CallbackInfo&);
Napi::Value BufferClose(const Napi::CallbackInfo&);
// probe.cc (feature probes for src/probe/)
Napi::Value ProbeLoad(const Napi::CallbackInfo&);
Napi::Value ProbeMapType(const Napi::CallbackInfo&);
Napi::Value ProbePerfEventsStart(const Napi::CallbackInfo&);
Napi::Value ProbePerfEventsWait(const Napi::CallbackInfo&);
Napi::Value LsmListModules(const Napi::CallbackInfo&);
// testrun.cc (BPF_PROG_TEST_RUN of raw instructions)
Napi::Value ProgTestRun(const Napi::CallbackInfo&);
// shmmaps.cc (the agent's shared-memory maps)
Napi::Value ShmMapCreate(const Napi::CallbackInfo&);
Napi::Value ShmMapOpen(const Napi::CallbackInfo&);
Napi::Value ShmMapClose(const Napi::CallbackInfo&);
Napi::Value ShmMapOp(const Napi::CallbackInfo&);
Napi::Value ShmRingPoll(const Napi::CallbackInfo&);
Napi::Value ShmRingPendingSize(const Napi::CallbackInfo&);
Napi::Value ShmMapDrops(const Napi::CallbackInfo&);
Napi::Value ShmMapFreeze(const Napi::CallbackInfo&);
Napi::Value ShmPerfOpenReaders(const Napi::CallbackInfo&);
Napi::Value ShmRingbufOutput(const Napi::CallbackInfo&);
Napi::Value ShmPerfEventOutput(const Napi::CallbackInfo&);
// compat.cc (compat passes)
Napi::Value MapCreate(const Napi::CallbackInfo&);
Napi::Value PtRegsMembers(const Napi::CallbackInfo&);
// vm.cc (the agent's eBPF engine for the userspace VM's 'native' engine)
Napi::Value VmLoad(const Napi::CallbackInfo&);
Napi::Value VmRun(const Napi::CallbackInfo&);
// agent.cc (the uprobe agent's control channel, host side)
Napi::Value AgentSocketpair(const Napi::CallbackInfo&);
Napi::Value AgentSend(const Napi::CallbackInfo&);
Napi::Value AgentRecv(const Napi::CallbackInfo&);

namespace {

void SetRaw(Napi::Env env, Napi::Object exports, const char* name, napi_callback cb) {
  napi_value fn;
  NAPI_THROW_IF_FAILED_VOID(env, napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, nullptr, &fn));
  exports.Set(name, Napi::Value(env, fn));
}

// Kernels before 5.11 charge BPF maps and programs to RLIMIT_MEMLOCK (often 64 KiB): raise it, as
// libbpf does before its own loads and bpftool does at start, so the prober's raw probes and every
// load see what the kernel can really do (a 5.10 kernel otherwise "refuses" a ring buffer with EPERM).
// Without CAP_SYS_RESOURCE the call fails and nothing changes; newer kernels ignore the limit.
void RaiseMemlock() {
  struct rlimit r = {RLIM_INFINITY, RLIM_INFINITY};
  setrlimit(RLIMIT_MEMLOCK, &r);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  RaiseMemlock();
  InstallLibbpfPrint();
  InitEnv(env);
  auto set = [&](const char* name, Napi::Function::Callback cb) { exports.Set(name, Napi::Function::New(env, cb, name)); };
  set("open", Open);
  set("programs", Programs);
  set("maps", Maps);
  set("setMapType", SetMapType);
  set("setMapPinPath", SetMapPinPath);
  set("setMapFlags", SetMapFlags);
  set("load", Load);
  set("close", Close);
  set("attachAuto", AttachAuto);
  set("attachXdp", AttachXdp);
  set("attachCgroup", AttachCgroup);
  set("attachUprobe", AttachUprobe);
  set("attachPerfEvent", AttachPerfEvent);
  set("attachSocket", AttachSocket);
  set("attachStructOps", AttachStructOps);
  set("detach", Detach);
  set("perfEventOpen", PerfEventOpen);
  set("openPacketSocket", OpenPacketSocket);
  set("ifIndex", IfIndex);
  set("eventFd", EventFd);
  set("closeFd", CloseFd);
  set("exitNow", ExitNow);
  set("numPossibleCpus", NumPossibleCpus);
  SetRaw(env, exports, "mapOp", MapOp);
  set("ringbufOpen", RingbufOpen);
  set("perfbufOpen", PerfbufOpen);
  SetRaw(env, exports, "bufferPoll", BufferPoll);
  set("bufferPendingSize", BufferPendingSize);
  set("bufferLost", BufferLost);
  set("bufferClose", BufferClose);
  set("takeLog", TakeLogFn);
  set("probeLoad", ProbeLoad);
  set("probeMapType", ProbeMapType);
  set("probePerfEventsStart", ProbePerfEventsStart);
  set("probePerfEventsWait", ProbePerfEventsWait);
  set("lsmListModules", LsmListModules);
  set("progTestRun", ProgTestRun);
  set("mapCreate", MapCreate);
  set("ptRegsMembers", PtRegsMembers);
  set("vmLoad", VmLoad);
  set("vmRun", VmRun);
  set("shmMapCreate", ShmMapCreate);
  set("shmMapOpen", ShmMapOpen);
  set("shmMapClose", ShmMapClose);
  set("shmMapOp", ShmMapOp);
  set("shmRingPoll", ShmRingPoll);
  set("shmRingPendingSize", ShmRingPendingSize);
  set("shmMapDrops", ShmMapDrops);
  set("shmMapFreeze", ShmMapFreeze);
  set("shmPerfOpenReaders", ShmPerfOpenReaders);
  set("shmRingbufOutput", ShmRingbufOutput);
  set("shmPerfEventOutput", ShmPerfEventOutput);
  set("agentSocketpair", AgentSocketpair);
  set("agentSend", AgentSend);
  set("agentRecv", AgentRecv);
  // mapOp and bufferPoll with a V8 fast path where this build has one (fastcall.h)
  bool fast = SetFastMapOp(env, exports) && SetFastBufferPoll(env, exports) && SetGuestMapFunctions(env, exports);
  exports.Set("fastCalls", Napi::Boolean::New(env, fast));
  set("fastCallCount", [](const Napi::CallbackInfo& info) -> Napi::Value { return Napi::Number::New(info.Env(), FastCallCount()); });
  return exports;
}

}  // namespace
}  // namespace wbn

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return wbn::Init(env, exports); }

NODE_API_MODULE(wasm_bpf_native, InitAddon)
