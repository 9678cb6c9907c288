// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* fentry: print unlink()/unlinkat() calls, seen by fentry and fexit programs on do_unlinkat().
 *
 *   fentry [-j] [-t SECONDS]
 *
 * The same records and lines as the kprobe app, so the user side is kprobe's, on this object.
 */
#define UNLINK_APP "fentry"
#define UNLINK_SKEL_H "fentry.skel.h"
#define UNLINK_SKEL fentry_bpf
#define UNLINK_PROGRAMS "fentry/fexit programs"
#include "../kprobe/kprobe.c"
