/* check.h: assertions for octo's C ABI tests. A failed check prints where and why and counts;
 * main() returns the count, so a test fails without aborting threads mid-call. */
#ifndef OCTO_TEST_CHECK_H
#define OCTO_TEST_CHECK_H

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "octo.h"

static atomic_int check_failures;

#define CHECK(cond)                                                                          \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
      atomic_fetch_add(&check_failures, 1);                                                  \
    }                                                                                        \
  } while (0)

/* Checks that an octo call returns `want`; on a mismatch prints both names and the last error. */
#define CHECK_STATUS(call, want)                                                              \
  do {                                                                                       \
    octo_status got_ = (call);                                                               \
    if (got_ != (want)) {                                                                    \
      fprintf(stderr, "%s:%d: %s returned %s, want %s (last error: %s)\n", __FILE__, __LINE__, \
              #call, octo_status_name(got_), octo_status_name(want), octo_last_error());     \
      atomic_fetch_add(&check_failures, 1);                                                  \
    }                                                                                        \
  } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, OCTO_STATUS_OK)

/* Checks that the last error mentions `needle`. */
#define CHECK_LAST_ERROR_HAS(needle)                                                          \
  do {                                                                                       \
    if (strstr(octo_last_error(), (needle)) == NULL) {                                       \
      fprintf(stderr, "%s:%d: last error \"%s\" lacks \"%s\"\n", __FILE__, __LINE__,         \
              octo_last_error(), (needle));                                                  \
      atomic_fetch_add(&check_failures, 1);                                                  \
    }                                                                                        \
  } while (0)

static inline int check_done(const char *name) {
  int n = atomic_load(&check_failures);
  if (n == 0) {
    printf("%s: all checks passed\n", name);
  } else {
    printf("%s: %d checks FAILED\n", name, n);
  }
  return n == 0 ? 0 : 1;
}

#endif
