// vmLoad / vmRun: the agent's eBPF engine (native/agent/vm/) in process, for the userspace VM's 'native'
// engine (backends/userspace/vm/native.ts): programs run on a VmMemory's bytes (its WebAssembly.Memory and
// the region table memory.ts mirrors into it), with helpers and tail calls served by JavaScript hooks.
//
//   vmLoad(insns, owner, tailCall, resolve) -> handle     (throws { kind, pc, message } when refused)
//   vmRun(handle, memory, args, budget, packetAddr, packetSize, stackAddr, layout, helper, resolve, tail)
//     -> [status, r0, budgetLeft, pc, faultOwner, addr, width, write, stackLo, value]
#include <napi.h>

#include <cstring>
#include <vector>

#include "../agent/vm/ebpf_vm.h"

namespace wbn {

namespace {

struct Prog {
  ebpf_vm_prog* prog = nullptr;
  Napi::ObjectReference owner;  // weak: the LoadedProgram this was loaded for
  ~Prog() { ebpf_vm_free(prog); }
};

struct Run {
  Napi::Env env;
  Napi::Object memory;
  Napi::Function helper, tail;
  uint32_t tableInfo = 0, flagWritable = 0, flagStack = 0;
  uint64_t stackAddr = 0;
  std::vector<ebpf_vm_region> regions;
  ebpf_vm_run run{};
  bool aborted = false;
  explicit Run(Napi::Env e) : env(e) {}
};

thread_local Run* cur = nullptr;
thread_local Napi::Function* curResolve = nullptr;
thread_local bool resolveFailed = false;

Napi::Value Owner(Napi::Env env, const ebpf_vm_prog* p) {
  if (p == nullptr) return env.Undefined();
  Napi::Value v = static_cast<Prog*>(ebpf_vm_user(p))->owner.Value();
  return v.IsEmpty() ? env.Undefined() : v;
}

// the VmMemory's current bytes and live regions (the buffer changes when the memory grows)
bool Refresh(Run& r) {
  Napi::Value b = r.memory.Get("buffer");
  if (!b.IsArrayBuffer()) return false;
  auto ab = b.As<Napi::ArrayBuffer>();
  auto* base = static_cast<uint8_t*>(ab.Data());
  uint64_t len = ab.ByteLength();
  if (uint64_t{r.tableInfo} + 8 > len) return false;
  uint32_t n, at;
  std::memcpy(&n, base + r.tableInfo, 4);
  std::memcpy(&at, base + r.tableInfo + 4, 4);
  if (uint64_t{at} + uint64_t{n} * 16 > len) return false;
  r.regions.clear();
  for (uint32_t k = 0; k < n; k++) {
    uint32_t e[3];
    std::memcpy(e, base + at + k * 16, 12);
    if (e[2] & r.flagStack) continue;  // the engine checks stack frames itself
    if (e[1] < e[0] || e[1] > len) return false;
    r.regions.push_back({e[0], uint64_t{e[1]} - e[0], base + e[0], (e[2] & r.flagWritable) ? EBPF_VM_REGION_WRITABLE : 0u});
  }
  if (r.stackAddr + EBPF_VM_STACK_SIZE > len) return false;
  r.run.regions = r.regions.data();
  r.run.nregions = static_cast<uint32_t>(r.regions.size());
  r.run.stack = base + r.stackAddr;
  return true;
}

// after a JavaScript hook returned: its calls may have grown the memory (a new buffer, moved regions)
int AfterHook(Run& r) {
  Napi::HandleScope scope(r.env);
  if (!Refresh(r)) {
    r.aborted = true;
    return 1;
  }
  return 0;
}

int JsHelper(ebpf_vm_call* c) {
  Run& r = *cur;
  try {
    Napi::Env env = r.env;
    Napi::HandleScope scope(env);  // a run may make millions of calls
    napi_value argv[8] = {
        Owner(env, c->prog), Napi::Number::New(env, c->pc), Napi::Number::New(env, static_cast<int32_t>(c->id)),
        Napi::BigInt::New(env, c->args[0]), Napi::BigInt::New(env, c->args[1]), Napi::BigInt::New(env, c->args[2]),
        Napi::BigInt::New(env, c->args[3]), Napi::BigInt::New(env, c->args[4])};
    Napi::Value v = r.helper.Call(8, argv);
    if (!v.IsBigInt()) {
      r.aborted = true;
      return 1;
    }
    bool lossless;
    c->r0 = v.As<Napi::BigInt>().Uint64Value(&lossless);
  } catch (const Napi::Error&) {
    r.aborted = true;
    return 1;
  }
  return AfterHook(r);
}

ebpf_vm_helper_fn Lookup(void* user, uint32_t id) {
  if (curResolve == nullptr) return nullptr;
  try {
    Napi::Env env = curResolve->Env();
    Napi::HandleScope scope(env);
    Napi::Value owner = static_cast<Prog*>(user)->owner.Value();
    Napi::Value v = curResolve->Call({owner.IsEmpty() ? env.Undefined() : owner, Napi::Number::New(env, static_cast<int32_t>(id))});
    return v.ToBoolean().Value() ? JsHelper : nullptr;
  } catch (const Napi::Error&) {
    resolveFailed = true;
    return nullptr;
  }
}

int JsTail(ebpf_vm_call* c, uint64_t map, uint32_t index, const ebpf_vm_prog** target) {
  Run& r = *cur;
  *target = nullptr;
  try {
    Napi::Env env = r.env;
    Napi::HandleScope scope(env);
    Napi::Value v = r.tail.Call({Owner(env, c->prog), Napi::Number::New(env, c->pc), Napi::BigInt::New(env, map), Napi::Number::New(env, index)});
    if (v.IsUndefined()) {
      r.aborted = true;
      return 1;
    }
    if (v.IsExternal()) *target = v.As<Napi::External<Prog>>().Data()->prog;  // kept alive by native.ts for the run
  } catch (const Napi::Error&) {
    r.aborted = true;
    return 1;
  }
  return AfterHook(r);
}

}  // namespace

Napi::Value VmLoad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsTypedArray() || !info[1].IsObject() || !info[3].IsFunction())
    throw Napi::TypeError::New(env, "vmLoad(insns, owner, tailCall, resolve)");
  auto insns = info[0].As<Napi::Uint8Array>();
  auto* pr = new Prog();
  pr->owner = Napi::Weak(info[1].As<Napi::Object>());
  ebpf_vm_env e{};
  e.helper = Lookup;
  e.tail_call = info[2].ToBoolean().Value() ? JsTail : nullptr;
  e.user = pr;
  Napi::Function resolve = info[3].As<Napi::Function>();
  Napi::Function* prevResolve = curResolve;
  curResolve = &resolve;
  ebpf_vm_error err{};
  int rc = ebpf_vm_load(insns.Data(), insns.ByteLength(), &e, &pr->prog, &err);
  curResolve = prevResolve;
  if (rc != EBPF_VM_OK) {
    delete pr;
    Napi::Error x = Napi::Error::New(env, err.message);
    x.Set("kind", Napi::String::New(env, rc == EBPF_VM_E_UNSUPPORTED ? "unsupported" : rc == EBPF_VM_E_INVALID ? "invalid" : "nomem"));
    x.Set("pc", err.pc < 0 ? env.Undefined() : Napi::Number::New(env, err.pc));
    throw x;
  }
  return Napi::External<Prog>::New(env, pr, [](Napi::Env, Prog* p) { delete p; });
}

Napi::Value VmRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 11 || !info[0].IsExternal() || !info[1].IsObject() || !info[2].IsTypedArray() || !info[7].IsTypedArray() ||
      !info[8].IsFunction() || !info[9].IsFunction() || !info[10].IsFunction())
    throw Napi::TypeError::New(env, "vmRun(handle, memory, args, budget, packetAddr, packetSize, stackAddr, layout, helper, resolve, tail)");
  Prog* pr = info[0].As<Napi::External<Prog>>().Data();
  auto argsArr = info[2].As<Napi::TypedArray>();
  if (argsArr.TypedArrayType() != napi_biguint64_array || argsArr.ElementLength() < 5) throw Napi::TypeError::New(env, "args must be a BigUint64Array(5)");
  uint64_t args[5];
  std::memcpy(args, static_cast<uint8_t*>(argsArr.ArrayBuffer().Data()) + argsArr.ByteOffset(), sizeof args);
  auto layout = info[7].As<Napi::Uint32Array>();
  if (layout.ElementLength() < 3) throw Napi::TypeError::New(env, "layout must be a Uint32Array(3)");

  Run r(env);
  r.memory = info[1].As<Napi::Object>();
  r.helper = info[8].As<Napi::Function>();
  r.tail = info[10].As<Napi::Function>();
  r.tableInfo = layout[0];
  r.flagWritable = layout[1];
  r.flagStack = layout[2];
  r.stackAddr = static_cast<uint64_t>(info[6].As<Napi::Number>().Int64Value());
  r.run.stack_addr = r.stackAddr;
  r.run.budget = info[3].As<Napi::Number>().Int64Value();
  r.run.packet_addr = static_cast<uint64_t>(info[4].As<Napi::Number>().Int64Value());
  r.run.packet_size = static_cast<uint64_t>(info[5].As<Napi::Number>().Int64Value());
  if (!Refresh(r)) throw Napi::Error::New(env, "vmRun: the memory's region table is not readable");
  Napi::Function resolve = info[9].As<Napi::Function>();

  Run* prev = cur;
  Napi::Function* prevResolve = curResolve;
  bool prevFailed = resolveFailed;
  cur = &r;
  curResolve = &resolve;
  resolveFailed = false;
  int st = ebpf_vm_exec(pr->prog, &r.run, args);
  bool aborted = r.aborted || resolveFailed;
  cur = prev;
  curResolve = prevResolve;
  resolveFailed = prevFailed;
  if (aborted) st = EBPF_VM_F_HELPER;

  Napi::Array out = Napi::Array::New(env, 10);
  out.Set(0u, Napi::Number::New(env, st));
  out.Set(1u, Napi::BigInt::New(env, r.run.r0));
  out.Set(2u, Napi::Number::New(env, static_cast<double>(r.run.budget)));
  out.Set(3u, Napi::Number::New(env, r.run.fault.pc));
  out.Set(4u, Owner(env, r.run.fault.prog));
  out.Set(5u, Napi::BigInt::New(env, r.run.fault.addr));
  out.Set(6u, Napi::Number::New(env, r.run.fault.width));
  out.Set(7u, Napi::Boolean::New(env, r.run.fault.write != 0));
  out.Set(8u, Napi::Number::New(env, static_cast<double>(r.run.fault.stack_lo)));
  out.Set(9u, Napi::BigInt::New(env, r.run.fault.value));
  return out;
}

}  // namespace wbn
