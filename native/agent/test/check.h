/* The agent's C tests: one "ok - ..." or "not ok - ..." line per check (read by the tap tests), and a
 * count of the failures for the exit code. */
#pragma once
#include <stdio.h>

static int failures;

#define CHECK(c, ...)                       \
  do {                                      \
    if (c) printf("ok - " __VA_ARGS__);     \
    else {                                  \
      printf("not ok - " __VA_ARGS__);      \
      failures++;                           \
    }                                       \
    printf("\n");                           \
  } while (0)
