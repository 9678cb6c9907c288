// mapCreate: one BPF_MAP_CREATE (bpf_map_create), used by the ringbuf -> perf buffer compat pass
// (compat/ringbuf/) for its per-CPU scratch map. The caller owns the returned fd.
// ptRegsMembers: what the pt_regs compat pass (compat/ptregs/) needs to know before it parses an
// object itself, from libbpf's parse of its BTF.
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <set>
#include <string>
#include <vector>

#include "errors.h"
#include "log.h"
#include "registry.h"
#include "util.h"

namespace wbn {

Napi::Value MapCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t type = ArgInt(info, 0, "type");
  int32_t keySize = ArgInt(info, 1, "keySize");
  int32_t valueSize = ArgInt(info, 2, "valueSize");
  int32_t maxEntries = ArgInt(info, 3, "maxEntries");
  std::string name = ArgString(info, 4, "name");
  LogScope scope(LIBBPF_WARN);
  int fd = bpf_map_create(static_cast<bpf_map_type>(type), name.c_str(), static_cast<__u32>(keySize),
                          static_cast<__u32>(valueSize), static_cast<__u32>(maxEntries), nullptr);
  if (fd < 0) ThrowErrno(env, "bpf_map_create", fd, "map '" + name + "'", scope.Captured());
  return Napi::Number::New(env, fd);
}

// ptRegsMembers(obj) -> { members: string[], userPtRegs: boolean }: the member names (nested ones
// included) of the object's BTF structs and unions named pt_regs or user_pt_regs (or a ___flavour
// of them), and whether a user_pt_regs one exists. An object without BTF: none.
Napi::Value PtRegsMembers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = RequireObj(env, ArgInt(info, 0, "obj"), "ptRegsMembers");
  std::lock_guard<std::mutex> g(o->mu);
  std::set<std::string> names;
  bool userPtRegs = false;
  const btf* b = o->closed ? nullptr : bpf_object__btf(o->obj);
  if (b) {
    std::vector<uint32_t> todo;
    uint32_t n = btf__type_cnt(b);
    for (uint32_t id = 1; id < n; id++) {
      const btf_type* t = btf__type_by_id(b, id);
      if (!t || !btf_is_composite(t)) continue;
      std::string name = btf__name_by_offset(b, t->name_off) ?: "";
      std::string root = name.substr(0, name.find("___"));
      if (root == "user_pt_regs") userPtRegs = true;
      if (root == "pt_regs" || root == "user_pt_regs") todo.push_back(id);
    }
    std::set<uint32_t> seen;
    while (!todo.empty()) {
      uint32_t id = todo.back();
      todo.pop_back();
      if (!seen.insert(id).second || seen.size() > 10000) continue;
      const btf_type* t = btf__type_by_id(b, id);
      if (!t) continue;
      if (btf_is_composite(t)) {
        const btf_member* m = btf_members(t);
        for (uint16_t i = 0; i < btf_vlen(t); i++, m++) {
          const char* mn = btf__name_by_offset(b, m->name_off);
          if (mn && *mn) names.insert(mn);
          todo.push_back(m->type);
        }
      } else if (btf_is_array(t)) {
        todo.push_back(btf_array(t)->type);
      } else if (btf_is_mod(t) || btf_is_typedef(t)) {
        todo.push_back(t->type);
      }
    }
  }
  Napi::Object res = Napi::Object::New(env);
  Napi::Array arr = Napi::Array::New(env, names.size());
  uint32_t i = 0;
  for (const auto& s : names) arr.Set(i++, Napi::String::New(env, s));
  res.Set("members", arr);
  res.Set("userPtRegs", Napi::Boolean::New(env, userPtRegs));
  return res;
}

}  // namespace wbn
