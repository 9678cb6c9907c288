/* Probed functions for the hook tests, one per object: the Makefile compiles this file once per
 * entry kind with -DNAME=... and one of T_ADD / T_PLAIN / T_RIP / T_FP, with the flags that give the
 * entry wanted (endbr64, push %rbp, nop5, a plain or rip-relative first instruction). */
#if defined(T_ADD)
int NAME(int a, int b) { return a + b; }
#elif defined(T_PLAIN)
int NAME(int a, int b) { return a * 9 + b + 1000; }
#elif defined(T_RIP)
extern int t_gv;
int NAME(int a, int b) { return t_gv + a + b; }
#elif defined(T_FP)
double NAME(double x, double y) { return x * y + 1.0; }
#endif
