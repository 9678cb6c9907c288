/* Probed functions for the return-probe tests (ret_test.c), compiled on their own with
 * -fcf-protection (an endbr64 entry, the hook relocates it with the next instruction). The empty asm
 * and noipa keep recursions and calls as written. */
#include <setjmp.h>
#include <unistd.h>

#define KEEP(x) __asm__ volatile("" : "+r"(x))
#define T __attribute__((noipa))

T int r_add(int a, int b) { return a + b; }

/* r_rec(n) = 1000 + n, through n nested calls */
T int r_rec(int n)
{
	if (n == 0) return 1000;
	int r = r_rec(n - 1);
	KEEP(r);
	return r + 1;
}

/* longjmps to jb from n nested calls deep */
T int r_jump(int n, jmp_buf *jb)
{
	if (n == 0) longjmp(*jb, 1);
	int r = r_jump(n - 1, jb);
	KEEP(r);
	return r + 1;
}

/* calls r_jump(n), which longjmps back here; returns 7000 + n */
T int r_wrap(int n)
{
	jmp_buf jb;
	volatile int v = n;
	if (setjmp(jb)) return 7000 + v;
	return r_jump(n, &jb);
}

/* a tail call (jmp r_add): both returns happen at once */
T int r_tail(int a) { return r_add(a, 100); }

T int r_outer(int (*cb)(int), int x)
{
	int r = cb(x);
	KEEP(r);
	return r + 1;
}

T int r_fork(int x)
{
	pid_t p = fork();
	KEEP(p);
	return p == 0 ? x : (int)p;
}

T double r_fp(double x) { return x * 2.0; }

struct r_pair { long a, b; };
T struct r_pair r_pair(long x)
{
	struct r_pair p = { x, x * 3 };
	return p;
}
