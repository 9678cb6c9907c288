/* napi_probe: an N-API module used only by bench/micro.ts, to measure what a leaner map_operate
 * binding would cost (evidence for the suggestions in RESULTS.md; not used by the runtime).
 *
 *   op6(cmd, fd, arrayBuffer, keyOff, valOff, flags)  the shape of native/src/maps.cc MapOp today
 *   setMem(arrayBuffer)                                remember the guest memory's base and length once
 *   op4(cmd, fd, keyOff, valOff)                       MapOp against the remembered memory: 4 int32s
 *   op7(fd, cmd, keyOff, valOff, nextOff, flagsLo, flagsHi)
 *                                                      the same, with the argument order of the guest's
 *                                                      (flags-split) import: usable as the Wasm import itself,
 *                                                      no JS in between
 *   noop()                                             an empty N-API function: the floor
 */
#include <errno.h>
#include <linux/bpf.h>
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint8_t *g_base;
static size_t g_len;
static napi_ref g_ref;

#define ELEM_ATTR_SIZE (offsetof(union bpf_attr, flags) + sizeof(((union bpf_attr *)0)->flags))

static napi_value int32(napi_env env, int32_t v)
{
	napi_value r;
	napi_create_int32(env, v, &r);
	return r;
}

static int32_t elem(int cmd, int fd, uint8_t *mem, int64_t k, int64_t v, uint64_t flags)
{
	union bpf_attr attr;
	memset(&attr, 0, ELEM_ATTR_SIZE);
	attr.map_fd = (uint32_t)fd;
	attr.key = k < 0 ? 0 : (uint64_t)(uintptr_t)(mem + k);
	attr.value = v < 0 ? 0 : (uint64_t)(uintptr_t)(mem + v);
	attr.flags = flags;
	long r = syscall(__NR_bpf, cmd, &attr, ELEM_ATTR_SIZE);
	return r < 0 ? -errno : 0;
}

static napi_value Op6(napi_env env, napi_callback_info info)
{
	size_t argc = 6;
	napi_value argv[6];
	int32_t cmd, fd;
	int64_t k, v, flags;
	void *data;
	size_t len;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6)
		return int32(env, -EINVAL);
	napi_get_value_int32(env, argv[0], &cmd);
	napi_get_value_int32(env, argv[1], &fd);
	napi_get_value_int64(env, argv[3], &k);
	napi_get_value_int64(env, argv[4], &v);
	napi_get_value_int64(env, argv[5], &flags);
	if (napi_get_arraybuffer_info(env, argv[2], &data, &len) != napi_ok || k >= (int64_t)len || v >= (int64_t)len)
		return int32(env, -EFAULT);
	return int32(env, elem(cmd, fd, data, k, v, (uint64_t)flags));
}

static napi_value SetMem(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1];
	void *data = NULL;
	napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
	if (g_ref)
		napi_delete_reference(env, g_ref);
	g_ref = NULL;
	g_base = NULL;
	g_len = 0;
	if (argc >= 1 && napi_get_arraybuffer_info(env, argv[0], &data, &g_len) == napi_ok) {
		g_base = data;
		napi_create_reference(env, argv[0], 1, &g_ref);
	}
	return NULL;
}

static napi_value Op4(napi_env env, napi_callback_info info)
{
	size_t argc = 4;
	napi_value argv[4];
	int32_t cmd, fd, k, v;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4)
		return int32(env, -EINVAL);
	napi_get_value_int32(env, argv[0], &cmd);
	napi_get_value_int32(env, argv[1], &fd);
	napi_get_value_int32(env, argv[2], &k);
	napi_get_value_int32(env, argv[3], &v);
	if (!g_base || (uint32_t)k >= g_len || (uint32_t)v >= g_len)
		return int32(env, -EFAULT);
	return int32(env, elem(cmd, fd, g_base, (uint32_t)k, (uint32_t)v, 0));
}

static napi_value Op7(napi_env env, napi_callback_info info)
{
	size_t argc = 7;
	napi_value argv[7];
	int32_t fd, cmd, k, v, lo;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6)
		return int32(env, -EINVAL);
	napi_get_value_int32(env, argv[0], &fd);
	napi_get_value_int32(env, argv[1], &cmd);
	napi_get_value_int32(env, argv[2], &k);
	napi_get_value_int32(env, argv[3], &v);
	napi_get_value_int32(env, argv[5], &lo);
	if (!g_base || (uint32_t)k >= g_len || (uint32_t)v >= g_len)
		return int32(env, -EFAULT);
	return int32(env, elem(cmd, fd, g_base, (uint32_t)k, (uint32_t)v, (uint32_t)lo));
}

static napi_value Noop(napi_env env, napi_callback_info info)
{
	(void)info;
	return int32(env, 0);
}

NAPI_MODULE_INIT()
{
	napi_property_descriptor d[] = {
		{ "op6", NULL, Op6, NULL, NULL, NULL, napi_default, NULL },
		{ "setMem", NULL, SetMem, NULL, NULL, NULL, napi_default, NULL },
		{ "op4", NULL, Op4, NULL, NULL, NULL, napi_default, NULL },
		{ "op7", NULL, Op7, NULL, NULL, NULL, napi_default, NULL },
		{ "noop", NULL, Noop, NULL, NULL, NULL, napi_default, NULL },
	};
	napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
	return exports;
}
