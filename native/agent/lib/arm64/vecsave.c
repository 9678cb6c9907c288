/* arm64: the agent's hit path is not built vector-free there (its trampolines save q0-q7 around any
 * handler), so a slow path needs no further saving: vec_guarded just calls it. */
#include "../agent.h"

void vec_guarded(void (*fn)(void *), void *arg)
{
	fn(arg);
}
