// Names from an eBPF object written into C (gen skeleton): whatever the object holds, the output is
// valid C (and C++) with no token the object chose. Identifiers are made of [A-Za-z0-9_] only, are not
// keywords nor object-like macros of the headers a skeleton includes, and are unique in their scope;
// text in comments cannot end the comment or splice lines. (String literals: cstr in skeleton.ts.)

/** C and C++ keywords (a map named "int" must not become a member named int) */
const KEYWORDS =
  'auto break case char const continue default do double else enum extern float for goto if inline int long ' +
  'register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while ' +
  '_Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert _Thread_local ' +
  'alignas alignof and and_eq asm bitand bitor bool catch char8_t char16_t char32_t class compl concept consteval ' +
  'constexpr constinit const_cast co_await co_return co_yield decltype delete dynamic_cast explicit export false ' +
  'friend mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected public ' +
  'reinterpret_cast requires static_assert static_cast template this thread_local throw true try typeid typename ' +
  'using virtual wchar_t xor xor_eq';

/** object-like macros of errno.h, stddef.h, stdlib.h and libbpf-wasm.h (with what it includes) for
 * wasm32-wasi, C and C++, from `clang-16 -dM -E` (names in the implementation's namespace, __x and
 * _X, are left to the implementation: see isReserved) */
const MACROS =
  'BPF_ANY BPF_EXIST BPF_F_LOCK BPF_MAP_DELETE_ELEM BPF_MAP_GET_NEXT_KEY BPF_MAP_LOOKUP_ELEM ' +
  'BPF_MAP_UPDATE_ELEM BPF_NOEXIST BUFSIZ E2BIG EACCES EADDRINUSE EADDRNOTAVAIL EAFNOSUPPORT EAGAIN ' +
  'EALREADY EBADF EBADMSG EBUSY ECANCELED ECHILD ECONNABORTED ECONNREFUSED ECONNRESET EDEADLK ' +
  'EDESTADDRREQ EDOM EDQUOT EEXIST EFAULT EFBIG EHOSTUNREACH EIDRM EILSEQ EINPROGRESS EINTR EINVAL EIO ' +
  'EISCONN EISDIR ELOOP EMFILE EMLINK EMSGSIZE EMULTIHOP ENAMETOOLONG ENETDOWN ENETRESET ENETUNREACH ' +
  'ENFILE ENOBUFS ENODEV ENOENT ENOEXEC ENOLCK ENOLINK ENOMEM ENOMSG ENOPROTOOPT ENOSPC ENOSYS ' +
  'ENOTCAPABLE ENOTCONN ENOTDIR ENOTEMPTY ENOTRECOVERABLE ENOTSOCK ENOTSUP ENOTTY ENXIO EOF EOPNOTSUPP ' +
  'EOVERFLOW EOWNERDEAD EPERM EPIPE EPROTO EPROTONOSUPPORT EPROTOTYPE ERANGE EROFS ESPIPE ESRCH ESTALE ' +
  'ETIMEDOUT ETXTBSY EWOULDBLOCK EXDEV EXIT_FAILURE EXIT_SUCCESS FILENAME_MAX FOPEN_MAX INT16_MAX ' +
  'INT16_MIN INT32_MAX INT32_MIN INT64_MAX INT64_MIN INT8_MAX INT8_MIN INTMAX_MAX INTMAX_MIN ' +
  'INTPTR_MAX INTPTR_MIN INT_FAST16_MAX INT_FAST16_MIN INT_FAST32_MAX INT_FAST32_MIN INT_FAST64_MAX ' +
  'INT_FAST64_MIN INT_FAST8_MAX INT_FAST8_MIN INT_LEAST16_MAX INT_LEAST16_MIN INT_LEAST32_MAX ' +
  'INT_LEAST32_MIN INT_LEAST64_MAX INT_LEAST64_MIN INT_LEAST8_MAX INT_LEAST8_MIN LIBBPF_WASM_H ' +
  'L_ctermid L_cuserid MB_CUR_MAX NULL PTRDIFF_MAX PTRDIFF_MIN RAND_MAX SEEK_CUR SEEK_END SEEK_SET ' +
  'SIG_ATOMIC_MAX SIG_ATOMIC_MIN SIZE_MAX UINT16_MAX UINT32_MAX UINT64_MAX UINT8_MAX UINTMAX_MAX ' +
  'UINTPTR_MAX UINT_FAST16_MAX UINT_FAST32_MAX UINT_FAST64_MAX UINT_FAST8_MAX UINT_LEAST16_MAX ' +
  'UINT_LEAST32_MAX UINT_LEAST64_MAX UINT_LEAST8_MAX WASM_BPF_BUFFER_SIZE WCHAR_MAX WCHAR_MIN WINT_MAX ' +
  'WINT_MIN alloca bool errno false fgetpos64 fopen64 fpos64_t freopen64 fseeko64 fsetpos64 ftello64 ' +
  'off64_t stderr stdin stdout true ' +
  '';

const TAKEN = new Set([...KEYWORDS.split(' '), ...MACROS.split(' ')].filter((s) => s !== ''));

/** a name C code cannot use as an identifier of its own: a keyword or a macro of the included headers */
export function isReserved(name: string): boolean {
  return TAKEN.has(name);
}

/** `s` as a C identifier: characters other than [A-Za-z0-9_] become '_' (bpftool's rule), a leading
 * digit gets a '_' before it, an empty name is '_' and a reserved one gets a '_' after it */
export function cIdent(s: string): string {
  let out = s.replace(/[^A-Za-z0-9_]/g, '_');
  if (out === '' || /^[0-9]/.test(out)) out = `_${out}`;
  return isReserved(out) ? `${out}_` : out;
}

/** Identifiers of one scope (a struct's members): each name made a C identifier and unique. */
export class IdentScope {
  private readonly used = new Set<string>();
  constructor(taken: Iterable<string> = []) {
    for (const n of taken) this.used.add(n);
  }
  /** `name` as an identifier not used yet in this scope (a suffix _2, _3, ... when it was) */
  take(name: string): string {
    const base = cIdent(name);
    let id = base;
    for (let k = 2; this.used.has(id); k++) id = `${base}_${k}`;
    this.used.add(id);
    return id;
  }
  has(name: string): boolean {
    return this.used.has(name);
  }
}

/** `s` made safe inside a block comment: bytes outside printable ASCII as \xNN (no newline for a
 * backslash to splice, no control character), a space between any star and slash (the comment can
 * neither end nor seem to nest) and no two question marks in a row (trigraphs) */
export function commentText(s: string): string {
  let out = '';
  for (const b of new TextEncoder().encode(s)) out += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  return out.replace(/\*(?=\/)/g, '* ').replace(/\/(?=\*)/g, '/ ').replace(/\?\?/g, '?\\x3f');
}
