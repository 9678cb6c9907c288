/* C++ exceptions through functions whose returns are armed (g++, libwbpf_hook.a): a throw through 4
 * hooked frames caught above them, one caught inside a hooked function, a rethrow from a hooked
 * function called in a catch block, 1000 throws, pthread_exit under an armed call; the unwinder must
 * never meet a diverted return address (hook/unwind.c). Prints "ok ..." per check and "ret_cxx: OK";
 * exits 1 at the first failure. */
#include <pthread.h>
#include <stdexcept>
#include "ret_log.h"

#define KEEP(x) __asm__ volatile("" : "+r"(x))

extern "C" {
__attribute__((noipa)) int x_throw(int n)
{
	if (n == 0) throw std::runtime_error("x_throw");
	int r = x_throw(n - 1);
	KEEP(r);
	return r + 1;
}

__attribute__((noipa)) int x_catch(int n)
{
	try {
		return x_throw(n);
	} catch (const std::runtime_error &) {
		return -n;
	}
}

__attribute__((noipa)) int x_rethrow(int n)
{
	if (n >= 0) throw; /* the exception being handled by the caller's catch block */
	return n;
}

__attribute__((noipa)) int x_add(int a, int b) { return a + b; }
}

/* pthread_exit two calls below an armed one: the C++ destructor above must still run */
extern "C" __attribute__((noipa)) int x_call(int (*cb)(int), int x)
{
	int r = cb(x);
	KEEP(r);
	return r + 1;
}
static int exit_now(int x)
{
	pthread_exit((void *)(long)x);
	return 0;
}
static volatile int destructed;
struct guard {
	~guard() { destructed++; }
};
static void *exiter(void *)
{
	guard g;
	int (*volatile call)(int (*)(int), int) = x_call;
	call(exit_now, 9);
	return nullptr;
}

static int (*volatile v_throw)(int) = x_throw;
static int (*volatile v_catch)(int) = x_catch;
static int (*volatile v_rethrow)(int) = x_rethrow;
static int (*volatile v_add)(int, int) = x_add;

static void check_add_after(const char *what)
{
	log_reset();
	int r = v_add(40, 2);
	if (r != 42 || lg.returns != 1 || lg.ev[1].val != 42) FAIL("%s: x_add afterwards = %d, %ld returns", what, r, lg.returns);
}

int main()
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct wbpf_hook *ht = hook((void *)x_throw, "x_throw", on_entry);
	struct wbpf_hook *hc = hook((void *)x_catch, "x_catch", on_entry);
	struct wbpf_hook *hr = hook((void *)x_rethrow, "x_rethrow", on_entry);
	struct wbpf_hook *ha = hook((void *)x_add, "x_add", on_entry);

	log_reset();
	bool caught = false;
	try {
		v_throw(3);
	} catch (const std::runtime_error &e) {
		caught = !strcmp(e.what(), "x_throw");
	}
	if (!caught || lg.entries != 4 || lg.returns != 0) FAIL("throw: caught %d entries %ld returns %ld", caught, lg.entries, lg.returns);
	check_add_after("throw");
	printf("ok throw through 4 hooked calls, caught above them: their returns unreported, later calls traced\n");

	log_reset();
	int r = v_catch(3);
	if (r != -3 || lg.entries != 5) FAIL("catch: x_catch(3) = %d, entries %ld", r, lg.entries);
	printf("ok throw caught inside a hooked function: it returns %d (%ld of its return reported)\n", r, lg.returns);
	check_add_after("catch");

	log_reset();
	caught = false;
	try {
		try {
			v_throw(0);
		} catch (const std::runtime_error &) {
			v_rethrow(1);
		}
	} catch (const std::runtime_error &e) {
		caught = !strcmp(e.what(), "x_throw");
	}
	if (!caught || lg.entries != 2) FAIL("rethrow: caught %d entries %ld", caught, lg.entries);
	check_add_after("rethrow");
	printf("ok rethrow (throw;) from a hooked function called in a catch block\n");

	int n = 0;
	for (int i = 0; i < 1000; i++) {
		try {
			v_throw(4);
		} catch (const std::runtime_error &) {
			n++;
		}
	}
	if (n != 1000) FAIL("loop: %d caught", n);
	check_add_after("loop");
	printf("ok 1000 throws through 5 hooked calls\n");

	struct wbpf_hook *hx = hook((void *)x_call, "x_call", on_entry);
	for (int i = 0; i < 100; i++) {
		pthread_t t;
		void *ret = nullptr;
		pthread_create(&t, nullptr, exiter, nullptr);
		pthread_join(t, &ret);
		if (ret != (void *)9L) FAIL("pthread_exit: thread returned %p", ret);
	}
	if (destructed != 100) FAIL("pthread_exit: %d destructors of 100 ran", destructed);
	printf("ok pthread_exit below an armed call: the destructors above it run (100 threads)\n");
	unhook(hx, "x_call");

	unhook(ha, "x_add");
	unhook(hr, "x_rethrow");
	unhook(hc, "x_catch");
	unhook(ht, "x_throw");
	printf("ret_cxx: OK\n");
	return 0;
}
