// progTestRun: load raw eBPF instructions into the kernel and run them once through BPF_PROG_TEST_RUN.
// Used by the userspace VM's differential tests (the kernel as the third engine); nothing stays behind:
// the program fd is closed before returning.
//
//   progTestRun(insns, progType, data, repeat) -> { retval, durationNs, dataOut }
//
// Failures throw the usual errno Error ({ errno, code, op, log }); a load failure carries the verifier
// log in `log`.
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "errors.h"
#include "util.h"

namespace wbn {

namespace {

long SysBpf(int cmd, union bpf_attr* attr) { return syscall(__NR_bpf, cmd, attr, sizeof(*attr)); }

}  // namespace

Napi::Value ProgTestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(env, "insns must be a Uint8Array");
  auto insns = info[0].As<Napi::Uint8Array>();
  if (insns.ByteLength() == 0 || insns.ByteLength() % 8 != 0)
    throw Napi::TypeError::New(env, "insns must be a non-empty multiple of 8 bytes");
  int32_t progType = ArgInt(info, 1, "progType");
  std::vector<uint8_t> data;
  if (info.Length() > 2 && info[2].IsTypedArray()) {
    auto d = info[2].As<Napi::Uint8Array>();
    data.assign(d.Data(), d.Data() + d.ByteLength());
  }
  int32_t repeat = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Int32Value() : 1;
  if (repeat < 1) repeat = 1;

  std::vector<uint64_t> code(insns.ByteLength() / 8);
  std::memcpy(code.data(), insns.Data(), insns.ByteLength());
  std::vector<char> log(1 << 20);
  const char license[] = "GPL";

  union bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.prog_type = static_cast<uint32_t>(progType);
  attr.insn_cnt = static_cast<uint32_t>(code.size());
  attr.insns = reinterpret_cast<uint64_t>(code.data());
  attr.license = reinterpret_cast<uint64_t>(license);
  attr.log_level = 1;
  attr.log_buf = reinterpret_cast<uint64_t>(log.data());
  attr.log_size = static_cast<uint32_t>(log.size());
  std::strncpy(attr.prog_name, "vm_difftest", sizeof(attr.prog_name) - 1);
  int fd = static_cast<int>(SysBpf(BPF_PROG_LOAD, &attr));
  if (fd < 0) {
    int err = errno;
    ThrowErrno(env, "BPF_PROG_LOAD", err, "", std::string(log.data()));
  }

  std::vector<uint8_t> out(data.size() + 256);
  std::memset(&attr, 0, sizeof(attr));
  attr.test.prog_fd = static_cast<uint32_t>(fd);
  attr.test.repeat = static_cast<uint32_t>(repeat);
  if (!data.empty()) {
    attr.test.data_in = reinterpret_cast<uint64_t>(data.data());
    attr.test.data_size_in = static_cast<uint32_t>(data.size());
    attr.test.data_out = reinterpret_cast<uint64_t>(out.data());
    attr.test.data_size_out = static_cast<uint32_t>(out.size());
  }
  long rc = SysBpf(BPF_PROG_TEST_RUN, &attr);
  int err = errno;
  close(fd);
  if (rc < 0) ThrowErrno(env, "BPF_PROG_TEST_RUN", err);

  Napi::Object res = Napi::Object::New(env);
  res.Set("retval", Napi::Number::New(env, static_cast<double>(attr.test.retval)));
  res.Set("durationNs", Napi::Number::New(env, static_cast<double>(attr.test.duration)));
  uint32_t outSize = attr.test.data_size_out;
  if (outSize > out.size()) outSize = static_cast<uint32_t>(out.size());
  auto dataOut = Napi::Uint8Array::New(env, outSize);
  if (outSize > 0) std::memcpy(dataOut.Data(), out.data(), outSize);
  res.Set("dataOut", dataOut);
  return res;
}

}  // namespace wbn
