/* test_core.c: version, status names, the last error and buffers, with every error path and
 * misuse (NULL arguments, bad values, shared buffers). Starts no engine, so it also runs under
 * valgrind (valgrind 3.19 cannot run io_uring shard threads: it holds its lock across
 * io_uring_enter). */
#include <stdlib.h>
#include <string.h>

#include "check.h"

static void version_matches_the_header(void) {
  CHECK(strcmp(octo_version(), OCTO_VERSION_STRING) == 0);
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", OCTO_VERSION_MAJOR, OCTO_VERSION_MINOR, OCTO_VERSION_PATCH);
  CHECK(strcmp(octo_version(), want) == 0);
}

static void statuses_have_names_and_octo_codes(void) {
  CHECK(OCTO_STATUS_OK == 0);
  CHECK(OCTO_STATUS_RPC_EXCEPTION == 3);
  CHECK(OCTO_STATUS_REMOTE_EXCEPTION == 9);
  CHECK(strcmp(octo_status_name(OCTO_STATUS_OK), "Success") == 0);
  CHECK(strcmp(octo_status_name(OCTO_STATUS_PROTOCOL_EXCEPTION), "ProtocolException") == 0);
  CHECK(strcmp(octo_status_name(OCTO_STATUS_INVALID_ARGUMENT), "InvalidArgument") == 0);
  CHECK(strcmp(octo_status_name(OCTO_STATUS_CLOSED), "Closed") == 0);
  CHECK(strcmp(octo_status_name(OCTO_STATUS_TIMEOUT), "Timeout") == 0);
  CHECK(strcmp(octo_status_name(OCTO_STATUS_BUSY), "Busy") == 0);
  CHECK(strcmp(octo_status_name(OCTO_STATUS_PANIC), "Panic") == 0);
  CHECK(strcmp(octo_status_name(OCTO_STATUS_ALREADY_ANSWERED), "AlreadyAnswered") == 0);
  CHECK(strcmp(octo_status_name(OCTO_STATUS_IO), "Io") == 0);
  CHECK(strcmp(octo_status_name(10), "Unknown") == 0);
  CHECK(strcmp(octo_status_name(0xffffffffu), "Unknown") == 0);
}

static void last_error_names_the_failing_call_and_survives_successes(void) {
  CHECK_STATUS(octo_buf_new(16, NULL), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_HAS("octo_buf_new");
  CHECK_LAST_ERROR_HAS("out is NULL");
  octo_buf *b = NULL;
  CHECK_OK(octo_buf_new(16, &b));
  CHECK_LAST_ERROR_HAS("octo_buf_new: out is NULL");
  octo_buf_free(b);
}

static void buffer_written_then_read(void) {
  octo_buf *b = NULL;
  CHECK_OK(octo_buf_new(4, &b));
  CHECK(b != NULL);
  CHECK(octo_buf_len(b) == 0);
  const uint8_t *data = (const uint8_t *)"x";
  size_t len = 99;
  CHECK_OK(octo_buf_data(b, &data, &len));
  CHECK(data == NULL && len == 0);
  CHECK_OK(octo_buf_write(b, (const uint8_t *)"hello, ", 7));
  CHECK_OK(octo_buf_write(b, (const uint8_t *)"world", 5)); /* grows past the capacity */
  CHECK_OK(octo_buf_write(b, NULL, 0));
  CHECK(octo_buf_len(b) == 12);
  CHECK_OK(octo_buf_data(b, &data, &len));
  CHECK(len == 12 && memcmp(data, "hello, world", 12) == 0);
  octo_buf_free(b);
}

static void buffer_filled_in_place(void) {
  octo_buf *b = NULL;
  CHECK_OK(octo_buf_new(1024, &b));
  uint8_t *p = NULL;
  size_t cap = 0;
  CHECK_OK(octo_buf_data_mut(b, &p, &cap));
  CHECK(p != NULL && cap >= 1024);
  for (size_t i = 0; i < cap; i++) CHECK(p[i] == 0); /* never uninitialized memory */
  memcpy(p, "in place", 8);
  CHECK_OK(octo_buf_set_len(b, 8));
  CHECK_STATUS(octo_buf_set_len(b, cap + 1), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK(octo_buf_len(b) == 8);
  CHECK_OK(octo_buf_write(b, (const uint8_t *)"!", 1));
  const uint8_t *d;
  size_t n;
  CHECK_OK(octo_buf_data(b, &d, &n));
  CHECK(n == 9 && memcmp(d, "in place!", 9) == 0);
  CHECK_OK(octo_buf_set_len(b, 2)); /* shrinking keeps the prefix */
  CHECK_OK(octo_buf_data(b, &d, &n));
  CHECK(n == 2 && memcmp(d, "in", 2) == 0);
  octo_buf_free(b);
}

static void set_len_needs_memory_made_writable_first(void) {
  octo_buf *b = NULL;
  CHECK_OK(octo_buf_new(64, &b));
  CHECK_STATUS(octo_buf_set_len(b, 10), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_HAS("octo_buf_data_mut");
  CHECK(octo_buf_len(b) == 0);
  octo_buf_free(b);
}

static void clones_share_bytes_and_are_read_only(void) {
  octo_buf *a = NULL, *b = NULL, *c = NULL;
  CHECK_OK(octo_buf_new(8, &a));
  CHECK_OK(octo_buf_write(a, (const uint8_t *)"shared", 6));
  CHECK_OK(octo_buf_clone(a, &b));
  CHECK_OK(octo_buf_clone(b, &c));
  const uint8_t *da, *db, *dc;
  size_t na, nb, nc;
  CHECK_OK(octo_buf_data(a, &da, &na));
  CHECK_OK(octo_buf_data(b, &db, &nb));
  CHECK_OK(octo_buf_data(c, &dc, &nc));
  CHECK(da == db && db == dc); /* no copy */
  CHECK(na == 6 && nb == 6 && nc == 6);
  CHECK_STATUS(octo_buf_write(a, (const uint8_t *)"x", 1), OCTO_STATUS_BUSY);
  CHECK_LAST_ERROR_HAS("read-only");
  uint8_t *p = NULL;
  size_t cap = 0;
  CHECK_STATUS(octo_buf_data_mut(b, &p, &cap), OCTO_STATUS_BUSY);
  CHECK(p == NULL && cap == 0); /* outputs untouched on failure */
  CHECK_STATUS(octo_buf_set_len(c, 0), OCTO_STATUS_BUSY);
  octo_buf_free(a);
  octo_buf_free(c);
  CHECK_OK(octo_buf_data(b, &db, &nb)); /* the last handle still sees the bytes */
  CHECK(nb == 6 && memcmp(db, "shared", 6) == 0);
  octo_buf_free(b);
}

static void buffer_functions_refuse_null_and_oversize(void) {
  octo_buf *b = NULL;
  CHECK_STATUS(octo_buf_new((size_t)INT32_MAX + 1, &b), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK(b == NULL);
  uint8_t *p;
  size_t n;
  const uint8_t *d;
  CHECK_STATUS(octo_buf_data_mut(NULL, &p, &n), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_buf_set_len(NULL, 0), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_buf_write(NULL, (const uint8_t *)"x", 1), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_buf_data(NULL, &d, &n), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_buf_clone(NULL, &b), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK(octo_buf_len(NULL) == 0);
  octo_buf_free(NULL);
  CHECK_OK(octo_buf_new(0, &b));
  CHECK_STATUS(octo_buf_data_mut(b, NULL, &n), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_buf_data_mut(b, &p, NULL), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_buf_data(b, NULL, &n), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_buf_data(b, &d, NULL), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_buf_write(b, NULL, 3), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_buf_clone(b, NULL), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK(octo_buf_len(b) == 0);
  octo_buf_free(b);
}

int main(void) {
  version_matches_the_header();
  statuses_have_names_and_octo_codes();
  last_error_names_the_failing_call_and_survives_successes();
  buffer_written_then_read();
  buffer_filled_in_place();
  set_len_needs_memory_made_writable_first();
  clones_share_bytes_and_are_read_only();
  buffer_functions_refuse_null_and_oversize();
  return check_done("test_core");
}
