/* echo_client.c: calls the Echo service through octo's C ABI, once waiting for the answer and
 * once with a callback, and checks every answer.
 *
 *   echo_client [--addr IP:PORT] [--thrift] [--service NAME] [--count N] [MESSAGE]
 *
 * --thrift speaks plain Thrift framing (to an Apache Thrift or Whale server); the default is
 * OCTO. Exits 0 when every answer echoed the message. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "echo_thrift.h"
#include "octo.h"

/* Writes an echo CALL message (seqid 0: octo replaces it with the call's sequence id). */
static size_t write_call(uint8_t *o, const char *msg, size_t len) {
  size_t at = 0;
  at += echo_put_i32(o + at, 0x80010001u); /* CALL */
  at += echo_put_i32(o + at, 4);
  memcpy(o + at, "echo", 4);
  at += 4;
  at += echo_put_i32(o + at, 0);
  o[at++] = 11; /* string field 1 */
  o[at++] = 0;
  o[at++] = 1;
  at += echo_put_i32(o + at, (uint32_t)len);
  memcpy(o + at, msg, len);
  at += len;
  o[at++] = 0;
  return at;
}

/* True if `reply` is an echo REPLY carrying `msg`. */
static bool is_echo_of(const octo_buf *reply, const char *msg) {
  const uint8_t *d;
  size_t n;
  if (octo_buf_data(reply, &d, &n) != OCTO_STATUS_OK || n < 12) return false;
  size_t want = strlen(msg);
  size_t name_len = ((size_t)d[4] << 24) | ((size_t)d[5] << 16) | ((size_t)d[6] << 8) | d[7];
  size_t at = 8 + name_len + 4; /* the result struct */
  if (d[3] != 2 || at + 8 > n || d[at] != 11 || d[at + 1] != 0 || d[at + 2] != 0) return false;
  size_t len = ((size_t)d[at + 3] << 24) | ((size_t)d[at + 4] << 16) | ((size_t)d[at + 5] << 8) | d[at + 6];
  return len == want && at + 7 + len <= n && memcmp(d + at + 7, msg, len) == 0;
}

typedef struct {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int left, good;
  const char *msg;
} batch;

/* Runs on a shard thread: record and return at once. */
static void on_answer(void *user_data, octo_status status, octo_buf *reply, const char *message) {
  batch *b = user_data;
  bool good = status == OCTO_STATUS_OK && is_echo_of(reply, b->msg);
  if (!good) fprintf(stderr, "echo_client: call failed: %s %s\n", octo_status_name(status), message);
  octo_buf_free(reply);
  pthread_mutex_lock(&b->lock);
  b->good += good;
  if (--b->left == 0) pthread_cond_signal(&b->cond);
  pthread_mutex_unlock(&b->lock);
}

int main(int argc, char **argv) {
  const char *addr = "127.0.0.1:9090";
  const char *service = "Echo";
  const char *msg = "hello from C";
  uint32_t framing = OCTO_FRAMING_OCTO;
  int count = 10;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--addr") && i + 1 < argc) addr = argv[++i];
    else if (!strcmp(argv[i], "--service") && i + 1 < argc) service = argv[++i];
    else if (!strcmp(argv[i], "--count") && i + 1 < argc) count = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--thrift")) framing = OCTO_FRAMING_THRIFT;
    else if (argv[i][0] != '-') msg = argv[i];
    else {
      fprintf(stderr, "usage: %s [--addr IP:PORT] [--thrift] [--service NAME] [--count N] [MESSAGE]\n", argv[0]);
      return 2;
    }
  }
  size_t len = strlen(msg);
  uint8_t *body = malloc(len + 64);
  size_t body_len = write_call(body, msg, len);

  octo_engine_config ec;
  octo_engine_config_default(&ec);
  ec.shards = 1;
  ec.pin_shards = false;
  octo_engine *engine = NULL;
  octo_client *client = NULL;
  octo_client_config cc;
  octo_client_config_default(&cc);
  cc.service_name = service;
  cc.appkey = "octo.example.echo_client";
  octo_endpoint ep = {addr, framing};
  if (octo_engine_new(&ec, &engine) != OCTO_STATUS_OK ||
      octo_client_new(engine, &cc, &ep, 1, &client) != OCTO_STATUS_OK) {
    fprintf(stderr, "echo_client: %s\n", octo_last_error());
    return 1;
  }

  /* 1. Call and wait. */
  octo_buf *reply = NULL;
  octo_status st = octo_client_call_wait(client, body, body_len, 2000, &reply);
  bool ok = st == OCTO_STATUS_OK && is_echo_of(reply, msg);
  printf("call_wait: %s%s\n", octo_status_name(st), ok ? ", echoed" : "");
  if (st != OCTO_STATUS_OK) fprintf(stderr, "echo_client: %s\n", octo_last_error());
  octo_buf_free(reply);

  /* 2. `count` calls in flight at once, answered through a callback. */
  batch b = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, count, 0, msg};
  for (int i = 0; i < count; i++) {
    if (octo_client_call(client, body, body_len, 2000, on_answer, &b) != OCTO_STATUS_OK) {
      fprintf(stderr, "echo_client: %s\n", octo_last_error());
      pthread_mutex_lock(&b.lock);
      b.left--;
      pthread_mutex_unlock(&b.lock);
    }
  }
  pthread_mutex_lock(&b.lock);
  while (b.left > 0) pthread_cond_wait(&b.cond, &b.lock);
  pthread_mutex_unlock(&b.lock);
  printf("callbacks: %d of %d echoed\n", b.good, count);

  octo_client_free(client);
  octo_engine_free(engine);
  free(body);
  return ok && b.good == count ? 0 : 1;
}
