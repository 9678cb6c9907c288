// Compute kernels for the VM benchmark. The same source is built two ways:
//   clang-16 -O2 -target bpf -c kernels.c   -> one program section per kernel, run by the VM
//   gcc -O2 native.c (which includes this file) -> the native baseline
// Every kernel has the VM's calling convention: r1 = memory, r2 = its length; parameters are read from
// the memory so that neither compiler can fold the work away.
typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned char u8;

#ifdef __bpf__
#define SEC(name) __attribute__((section(name), used))
#else
#define SEC(name)
#endif

// layout of the memory: [u64 param][u64 param2][data ...]
#define P0(mem) (((const u64 *)(mem))[0])
#define P1(mem) (((const u64 *)(mem))[1])
#define DATA(mem) ((mem) + 16)

// primes below P0 by trial division
SEC("bench/primes")
u64 primes(u8 *mem, u64 len) {
  u64 n = P0(mem);
  u64 count = 0;
  for (u64 i = 2; i < n; i++) {
    u64 prime = 1;
    for (u64 j = 2; j * j <= i; j++) {
      if (i % j == 0) {
        prime = 0;
        break;
      }
    }
    count += prime;
  }
  return count;
}

// a memcpy-like loop: copy P0 bytes from the data to just after it, one byte at a time, P1 times
SEC("bench/memcpy")
u64 copy(u8 *mem, u64 len) {
  u64 n = P0(mem);
  u64 reps = P1(mem);
  u8 *src = DATA(mem);
  u8 *dst = src + n;
  for (u64 r = 0; r < reps; r++) {
    for (u64 i = 0; i < n; i++) dst[i] = src[i];
    src[r & 7]++;  // keep the copies from being merged
  }
  return dst[0] + dst[n - 1];
}

// floor(log2(x)) of P0 u64 values by binary search, summed, P1 times
SEC("bench/log2")
u64 log2_sum(u8 *mem, u64 len) {
  u64 n = P0(mem);
  u64 reps = P1(mem);
  const u64 *a = (const u64 *)DATA(mem);
  u64 sum = 0;
  for (u64 r = 0; r < reps; r++) {
    for (u64 i = 0; i < n; i++) {
      u64 v = a[i] | 1;
      u64 l = 0;
      if (v >> 32) { v >>= 32; l += 32; }
      if (v >> 16) { v >>= 16; l += 16; }
      if (v >> 8) { v >>= 8; l += 8; }
      if (v >> 4) { v >>= 4; l += 4; }
      if (v >> 2) { v >>= 2; l += 2; }
      if (v >> 1) { l += 1; }
      sum += l;
    }
  }
  return sum;
}

// string compare: P1 strcmp-style comparisons of two P0-byte strings that differ only at the end
SEC("bench/strcmp")
u64 str_cmp(u8 *mem, u64 len) {
  u64 n = P0(mem);
  u64 reps = P1(mem);
  const u8 *a = DATA(mem);
  const u8 *b = a + n + 1;
  u64 acc = 0;
  for (u64 r = 0; r < reps; r++) {
    u64 i = 0;
    while (a[i] != 0 && a[i] == b[i]) i++;
    acc += (u64)(a[i] - b[i]) + i;
  }
  return acc;
}

// switch dispatch: a little bytecode interpreter over P0 opcodes, P1 times
SEC("bench/switch")
u64 dispatch(u8 *mem, u64 len) {
  u64 n = P0(mem);
  u64 reps = P1(mem);
  const u8 *code = DATA(mem);
  u64 acc = 1, x = 7;
  for (u64 r = 0; r < reps; r++) {
    for (u64 i = 0; i < n; i++) {
      switch (code[i] & 7) {
        case 0: acc += x; break;
        case 1: acc ^= x << 3; break;
        case 2: x = x * 5 + 1; break;
        case 3: acc -= i; break;
        case 4: x ^= acc >> 7; break;
        case 5: acc = (acc << 1) | (acc >> 63); break;
        case 6: x += code[i]; break;
        default: acc += 3; break;
      }
    }
  }
  return acc ^ x;
}
