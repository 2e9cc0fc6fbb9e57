/* test_client.c: the client surface of octo's C ABI against an octo server in the same process
 * (its handlers in C): configuration and its misuse, OCTO and plain Thrift endpoints, calls with
 * a callback and calls that wait, remote errors, timeouts, one-way calls, close with calls in
 * flight, use after close, and 8 host threads calling through one client at once. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "../../examples/echo_thrift.h"
#include "wire.h"

static octo_engine *engine;
static octo_server *server;
static char address[32];
static atomic_int one_way_seen;

/* Responders the server holds without answering ("hold:" calls), answered at the end. */
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static octo_responder *held[64];
static int held_count;

static octo_client *client_inside; /* used from inside a handler (misuse) */

static size_t echo_call(uint8_t *out, size_t cap, const char *msg);
static bool reply_text(const octo_buf *reply, char *out, size_t cap);

typedef struct {
  octo_responder *responder;
  int32_t thrift_seqid;
} proxy_call;

/* The downstream answer arrived (on a shard thread): answer the upstream caller with it. */
static void proxy_done(void *user_data, octo_status status, octo_buf *reply, const char *message) {
  proxy_call *pc = user_data;
  char text[256] = "";
  if (status == OCTO_STATUS_OK && reply && reply_text(reply, text, sizeof text)) {
    char out[300];
    snprintf(out, sizeof out, "proxied %s", text);
    uint8_t buf[512];
    size_t n = echo_write_reply(buf, "echo", 4, pc->thrift_seqid, (const uint8_t *)out, strlen(out));
    CHECK_OK(octo_responder_ok(pc->responder, buf, n));
  } else {
    CHECK_OK(octo_responder_error(pc->responder, OCTO_STATUS_REMOTE_EXCEPTION, message));
  }
  octo_buf_free(reply);
  octo_responder_free(pc->responder);
  free(pc);
}

static void handle(void *user_data, const octo_request *req, octo_responder *resp) {
  (void)user_data;
  octo_request_info info;
  CHECK_OK(octo_request_get_info(req, &info));
  const uint8_t *msg = NULL;
  size_t len = 0;
  CHECK(echo_read_args(info.args, info.args_len, &msg, &len));
  if (info.one_way) {
    atomic_fetch_add(&one_way_seen, 1);
    octo_responder_free(resp);
    return;
  }
  if (len >= 5 && memcmp(msg, "hold:", 5) == 0) {
    pthread_mutex_lock(&held_lock);
    if (held_count < 64) {
      held[held_count++] = resp;
      resp = NULL;
    }
    pthread_mutex_unlock(&held_lock);
    if (resp) octo_responder_free(resp);
    return;
  }
  if (len >= 6 && memcmp(msg, "error:", 6) == 0) {
    CHECK_OK(octo_responder_error(resp, OCTO_STATUS_SECURITY_EXCEPTION, "denied"));
  } else if (len >= 9 && memcmp(msg, "declared:", 9) == 0) {
    uint8_t reply[256];
    size_t n = echo_write_reply(reply, info.method.data, info.method.len, info.thrift_seqid, msg, len);
    CHECK_OK(octo_responder_reply(resp, OCTO_STATUS_APPLICATION_EXCEPTION, reply, n));
  } else if (len >= 6 && memcmp(msg, "proxy:", 6) == 0) {
    /* Calls a downstream service from the handler (no waiting: a callback) and answers the
     * caller from that callback, later, on a shard thread. */
    proxy_call *pc = calloc(1, sizeof *pc);
    pc->responder = resp;
    pc->thrift_seqid = info.thrift_seqid;
    uint8_t body[256];
    size_t n = echo_call(body, sizeof body, "downstream");
    CHECK_OK(octo_client_call(client_inside, body, n, 5000, proxy_done, pc));
    return; /* the responder now belongs to proxy_done */
  } else if (len >= 7 && memcmp(msg, "inside:", 7) == 0) {
    /* A handler runs on a shard thread: waiting for a call there would stall the shard. */
    octo_buf *r = NULL;
    uint8_t body[64];
    wbuf *w = malloc(sizeof *w);
    w->len = 0;
    put_call_message(w, "echo", 0, "x", 1, false);
    memcpy(body, w->data, w->len);
    CHECK_STATUS(octo_client_call_wait(client_inside, body, w->len, 100, &r), OCTO_STATUS_BUSY);
    CHECK(r == NULL);
    free(w);
    CHECK_OK(echo_answer(resp, &info, msg, len));
  } else {
    CHECK_OK(echo_answer(resp, &info, msg, len));
  }
  octo_responder_free(resp);
}

/* ---- helpers ---- */

static size_t echo_call(uint8_t *out, size_t cap, const char *msg) {
  wbuf *w = malloc(sizeof *w);
  w->len = 0;
  put_call_message(w, "echo", 0, msg, strlen(msg), false);
  size_t n = w->len;
  if (n <= cap) memcpy(out, w->data, n);
  free(w);
  return n <= cap ? n : 0;
}

/* The echoed string of a REPLY message, NUL-terminated into `out`. */
static bool reply_text(const octo_buf *reply, char *out, size_t cap) {
  const uint8_t *d;
  size_t n;
  if (octo_buf_data(reply, &d, &n) != OCTO_STATUS_OK) return false;
  rd r = {d, n, 0, false};
  answer a;
  memset(&a, 0, sizeof a);
  if (!parse_message(&r, &a) || a.result_len >= cap) return false;
  memcpy(out, a.result, a.result_len + 1);
  return a.msg_type == 2;
}

static octo_client *new_client(const char *service, uint32_t framing, uint32_t timeout_ms) {
  octo_client_config cfg;
  CHECK_OK(octo_client_config_default(&cfg));
  cfg.service_name = service;
  cfg.appkey = "test-client";
  cfg.timeout_ms = timeout_ms;
  octo_endpoint ep = {address, framing};
  octo_client *c = NULL;
  CHECK_OK(octo_client_new(engine, &cfg, &ep, 1, &c));
  return c;
}

static void expect_echo_wait(octo_client *c, const char *msg) {
  uint8_t body[512];
  size_t n = echo_call(body, sizeof body, msg);
  octo_buf *reply = NULL;
  CHECK_OK(octo_client_call_wait(c, body, n, 5000, &reply));
  char text[512] = "";
  CHECK(reply && reply_text(reply, text, sizeof text));
  CHECK(strcmp(text, msg) == 0);
  octo_buf_free(reply);
}

/* A call whose callback result is awaited by the test. */
typedef struct {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool done;
  octo_status status;
  char text[512];
  char message[256];
  bool had_reply;
} pending;

static void pending_init(pending *p) {
  memset(p, 0, sizeof *p);
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->cond, NULL);
}

static void on_result(void *user_data, octo_status status, octo_buf *reply, const char *message) {
  pending *p = user_data;
  pthread_mutex_lock(&p->lock);
  p->status = status;
  p->had_reply = reply != NULL;
  if (reply) reply_text(reply, p->text, sizeof p->text);
  snprintf(p->message, sizeof p->message, "%s", message);
  octo_buf_free(reply);
  p->done = true;
  pthread_cond_signal(&p->cond);
  pthread_mutex_unlock(&p->lock);
}

static bool pending_wait(pending *p) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 20; /* a lost callback fails the test rather than hanging it */
  pthread_mutex_lock(&p->lock);
  while (!p->done) {
    if (pthread_cond_timedwait(&p->cond, &p->lock, &until) != 0) break;
  }
  bool done = p->done;
  pthread_mutex_unlock(&p->lock);
  return done;
}

static void pending_destroy(pending *p) {
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->cond);
}

/* ---- the tests ---- */

static void configuration_misuse_is_refused(void) {
  octo_client_config cfg;
  memset(&cfg, 0xee, sizeof cfg);
  CHECK_OK(octo_client_config_default(&cfg));
  CHECK(cfg.service_name == NULL && cfg.appkey == NULL);
  CHECK(cfg.timeout_ms == 1000 && cfg.connect_timeout_ms == 1000 && cfg.pool_size == 2);
  CHECK(cfg.heartbeat_interval_ms > 0 && cfg.max_frame_size == 16u << 20);
  CHECK_STATUS(octo_client_config_default(NULL), OCTO_STATUS_INVALID_ARGUMENT);

  octo_client *c = NULL;
  octo_endpoint ep = {address, OCTO_FRAMING_OCTO};
  CHECK_STATUS(octo_client_new(engine, &cfg, &ep, 1, &c), OCTO_STATUS_INVALID_ARGUMENT); /* no service */
  CHECK_LAST_ERROR_HAS("service_name");
  cfg.service_name = "Echo";
  CHECK_STATUS(octo_client_new(NULL, &cfg, &ep, 1, &c), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_client_new(engine, NULL, &ep, 1, &c), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_client_new(engine, &cfg, NULL, 1, &c), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_client_new(engine, &cfg, &ep, 0, &c), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_client_new(engine, &cfg, &ep, 1, NULL), OCTO_STATUS_INVALID_ARGUMENT);
  octo_endpoint bad_addr = {"localhost", OCTO_FRAMING_OCTO};
  CHECK_STATUS(octo_client_new(engine, &cfg, &bad_addr, 1, &c), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_HAS("IP:PORT");
  octo_endpoint null_addr = {NULL, OCTO_FRAMING_OCTO};
  CHECK_STATUS(octo_client_new(engine, &cfg, &null_addr, 1, &c), OCTO_STATUS_INVALID_ARGUMENT);
  octo_endpoint bad_framing = {address, 9};
  CHECK_STATUS(octo_client_new(engine, &cfg, &bad_framing, 1, &c), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_HAS("framing");
  cfg.timeout_ms = 0;
  CHECK_STATUS(octo_client_new(engine, &cfg, &ep, 1, &c), OCTO_STATUS_INVALID_ARGUMENT);
  cfg.timeout_ms = 1000;
  cfg.pool_size = 0;
  CHECK_STATUS(octo_client_new(engine, &cfg, &ep, 1, &c), OCTO_STATUS_INVALID_ARGUMENT);
  cfg.pool_size = 2;
  cfg.max_frame_size = 1;
  CHECK_STATUS(octo_client_new(engine, &cfg, &ep, 1, &c), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK(c == NULL);
  octo_client_free(NULL);
}

static void calls_over_octo_and_plain_thrift_are_answered(void) {
  octo_client *octo = new_client("Echo", OCTO_FRAMING_OCTO, 5000);
  octo_client *thrift = new_client("ignored", OCTO_FRAMING_THRIFT, 5000);
  expect_echo_wait(octo, "over OCTO");
  expect_echo_wait(thrift, "over plain Thrift");
  for (int i = 0; i < 50; i++) expect_echo_wait(octo, "again and again");
  octo_client_free(octo);
  octo_client_free(thrift);
}

static void a_callback_receives_the_reply(void) {
  octo_client *c = new_client("Echo", OCTO_FRAMING_OCTO, 5000);
  uint8_t body[256];
  size_t n = echo_call(body, sizeof body, "by callback");
  pending p;
  pending_init(&p);
  CHECK_OK(octo_client_call(c, body, n, 0, on_result, &p));
  CHECK(pending_wait(&p));
  CHECK(p.status == OCTO_STATUS_OK && p.had_reply);
  CHECK(strcmp(p.text, "by callback") == 0);
  CHECK(strcmp(p.message, "") == 0);
  pending_destroy(&p);
  octo_client_free(c);
}

static void remote_errors_carry_the_server_status(void) {
  octo_client *c = new_client("Echo", OCTO_FRAMING_OCTO, 5000);
  uint8_t body[256];
  size_t n = echo_call(body, sizeof body, "error:x");
  octo_buf *reply = NULL;
  CHECK_STATUS(octo_client_call_wait(c, body, n, 0, &reply), OCTO_STATUS_SECURITY_EXCEPTION);
  CHECK_LAST_ERROR_HAS("denied");
  CHECK(reply == NULL);

  pending p;
  pending_init(&p);
  n = echo_call(body, sizeof body, "declared:x");
  CHECK_OK(octo_client_call(c, body, n, 0, on_result, &p));
  CHECK(pending_wait(&p));
  CHECK(p.status == OCTO_STATUS_APPLICATION_EXCEPTION);
  CHECK(p.had_reply && strcmp(p.text, "declared:x") == 0); /* the declared exception's body */
  pending_destroy(&p);
  octo_client_free(c);

  octo_client *nobody = new_client("Nobody", OCTO_FRAMING_OCTO, 5000);
  n = echo_call(body, sizeof body, "x");
  CHECK_STATUS(octo_client_call_wait(nobody, body, n, 0, &reply), OCTO_STATUS_SERVICE_EXCEPTION);
  octo_client_free(nobody);
}

static void an_unanswered_call_times_out(void) {
  octo_client *c = new_client("Echo", OCTO_FRAMING_OCTO, 5000);
  uint8_t body[256];
  size_t n = echo_call(body, sizeof body, "hold:timeout");
  octo_buf *reply = NULL;
  CHECK_STATUS(octo_client_call_wait(c, body, n, 100, &reply), OCTO_STATUS_TIMEOUT);
  CHECK(reply == NULL);
  pending p;
  pending_init(&p);
  CHECK_OK(octo_client_call(c, body, n, 100, on_result, &p));
  CHECK(pending_wait(&p));
  CHECK(p.status == OCTO_STATUS_TIMEOUT && !p.had_reply);
  pending_destroy(&p);
  octo_client_free(c);
}

static void nobody_listening_fails_the_call(void) {
  /* A port that was just free: bind, read the port, close. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
  CHECK(getsockname(fd, (struct sockaddr *)&a, &al) == 0);
  close(fd);
  char dead[32];
  snprintf(dead, sizeof dead, "127.0.0.1:%u", ntohs(a.sin_port));
  octo_client_config cfg;
  CHECK_OK(octo_client_config_default(&cfg));
  cfg.service_name = "Echo";
  cfg.timeout_ms = 300;
  octo_endpoint ep = {dead, OCTO_FRAMING_OCTO};
  octo_client *c = NULL;
  CHECK_OK(octo_client_new(engine, &cfg, &ep, 1, &c));
  uint8_t body[64];
  size_t n = echo_call(body, sizeof body, "x");
  octo_buf *reply = NULL;
  octo_status st = octo_client_call_wait(c, body, n, 0, &reply);
  CHECK(st == OCTO_STATUS_TRANSPORT_EXCEPTION || st == OCTO_STATUS_TIMEOUT);
  CHECK(reply == NULL);
  octo_client_free(c);
}

static void one_way_calls_reach_the_server(void) {
  octo_client *c = new_client("Echo", OCTO_FRAMING_OCTO, 5000);
  uint8_t body[64];
  size_t n = echo_call(body, sizeof body, "one way");
  CHECK_OK(octo_client_send_one_way(c, body, n));
  expect_echo_wait(c, "after"); /* same connection, in order: the one-way arrived first */
  for (int i = 0; i < 1000 && atomic_load(&one_way_seen) == 0; i++) usleep(10000); /* up to 10 s */
  CHECK(atomic_load(&one_way_seen) == 1);
  octo_client_free(c);
}

static void bad_calls_are_refused_before_sending(void) {
  octo_client *c = new_client("Echo", OCTO_FRAMING_OCTO, 5000);
  uint8_t body[64];
  size_t n = echo_call(body, sizeof body, "x");
  octo_buf *reply = NULL;
  pending p;
  pending_init(&p);
  CHECK_STATUS(octo_client_call(NULL, body, n, 0, on_result, &p), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_client_call(c, NULL, n, 0, on_result, &p), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_client_call(c, body, n, 0, NULL, &p), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_client_call(c, (const uint8_t *)"not thrift", 10, 0, on_result, &p),
               OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_HAS("body");
  CHECK_STATUS(octo_client_call_wait(NULL, body, n, 0, &reply), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_client_call_wait(c, body, n, 0, NULL), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_client_call_wait(c, body, 3, 0, &reply), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_client_send_one_way(NULL, body, n), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_client_send_one_way(c, NULL, 1), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_client_close(NULL), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK(!p.done); /* refused calls never call back */
  pending_destroy(&p);
  octo_client_free(c);
}

static void waiting_inside_a_callback_is_refused(void) {
  client_inside = new_client("Echo", OCTO_FRAMING_OCTO, 5000);
  expect_echo_wait(client_inside, "inside:x");
}

static void a_handler_calls_downstream_and_answers_from_the_callback(void) {
  octo_client *c = new_client("Echo", OCTO_FRAMING_OCTO, 5000);
  uint8_t body[64];
  size_t n = echo_call(body, sizeof body, "proxy:x");
  octo_buf *reply = NULL;
  CHECK_OK(octo_client_call_wait(c, body, n, 0, &reply));
  char text[256] = "";
  CHECK(reply && reply_text(reply, text, sizeof text));
  CHECK(strcmp(text, "proxied downstream") == 0);
  octo_buf_free(reply);
  octo_client_free(c);
  octo_client_free(client_inside);
}

enum { IN_FLIGHT = 8 };

static void close_completes_calls_in_flight_with_closed(void) {
  octo_client *c = new_client("Echo", OCTO_FRAMING_OCTO, 20000);
  uint8_t body[64];
  size_t n = echo_call(body, sizeof body, "hold:close");
  pending p[IN_FLIGHT];
  for (int i = 0; i < IN_FLIGHT; i++) {
    pending_init(&p[i]);
    CHECK_OK(octo_client_call(c, body, n, 0, on_result, &p[i]));
  }
  /* Wait until the server holds them all (they are in flight), then close. */
  for (int i = 0; i < 500; i++) {
    pthread_mutex_lock(&held_lock);
    int h = held_count;
    pthread_mutex_unlock(&held_lock);
    if (h >= IN_FLIGHT + 2) break; /* 2 from an_unanswered_call_times_out */
    usleep(10000);
  }
  CHECK_OK(octo_client_close(c));
  for (int i = 0; i < IN_FLIGHT; i++) {
    CHECK(pending_wait(&p[i]));
    CHECK(p[i].status == OCTO_STATUS_CLOSED);
    pending_destroy(&p[i]);
  }
  /* Use after close. */
  octo_buf *reply = NULL;
  pending q;
  pending_init(&q);
  CHECK_STATUS(octo_client_close(c), OCTO_STATUS_CLOSED);
  CHECK_STATUS(octo_client_call(c, body, n, 0, on_result, &q), OCTO_STATUS_CLOSED);
  CHECK_STATUS(octo_client_call_wait(c, body, n, 0, &reply), OCTO_STATUS_CLOSED);
  CHECK_STATUS(octo_client_send_one_way(c, body, n), OCTO_STATUS_CLOSED);
  CHECK(!q.done);
  pending_destroy(&q);
  octo_client_free(c);
}

/* ---- 8 host threads through one client ---- */

enum { THREADS = 8, CALLS = 300 };
static octo_client *shared_client;

static void *caller(void *arg) {
  long id = (long)arg;
  for (int i = 0; i < CALLS; i++) {
    char msg[64];
    snprintf(msg, sizeof msg, "thread %ld call %d", id, i);
    uint8_t body[128];
    size_t n = echo_call(body, sizeof body, msg);
    if (i % 2 == 0) {
      octo_buf *reply = NULL;
      CHECK_OK(octo_client_call_wait(shared_client, body, n, 10000, &reply));
      char text[128] = "";
      CHECK(reply && reply_text(reply, text, sizeof text) && strcmp(text, msg) == 0);
      octo_buf_free(reply);
    } else {
      pending p;
      pending_init(&p);
      CHECK_OK(octo_client_call(shared_client, body, n, 10000, on_result, &p));
      CHECK(pending_wait(&p));
      CHECK(p.status == OCTO_STATUS_OK && strcmp(p.text, msg) == 0);
      pending_destroy(&p);
    }
  }
  return NULL;
}

static void eight_threads_call_through_one_client(void) {
  shared_client = new_client("Echo", OCTO_FRAMING_OCTO, 10000);
  pthread_t t[THREADS];
  for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, caller, (void *)i);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  octo_client_free(shared_client);
}

static void calls_after_the_engine_stopped_are_closed(void) {
  octo_engine_config ec;
  CHECK_OK(octo_engine_config_default(&ec));
  ec.shards = 1;
  ec.pin_shards = false;
  octo_engine *other = NULL;
  CHECK_OK(octo_engine_new(&ec, &other));
  octo_client_config cfg;
  CHECK_OK(octo_client_config_default(&cfg));
  cfg.service_name = "Echo";
  octo_endpoint ep = {address, OCTO_FRAMING_OCTO};
  octo_client *c = NULL;
  CHECK_OK(octo_client_new(other, &cfg, &ep, 1, &c));
  expect_echo_wait(c, "before the engine stops");
  octo_engine_free(other); /* misuse: the client outlives its engine */
  uint8_t body[64];
  size_t n = echo_call(body, sizeof body, "x");
  octo_buf *reply = NULL;
  CHECK_STATUS(octo_client_call_wait(c, body, n, 0, &reply), OCTO_STATUS_CLOSED);
  pending p;
  pending_init(&p);
  octo_status st = octo_client_call(c, body, n, 0, on_result, &p);
  CHECK(st == OCTO_STATUS_OK); /* taken, and answered at once: */
  CHECK(p.done && p.status == OCTO_STATUS_CLOSED);
  pending_destroy(&p);
  CHECK_STATUS(octo_client_send_one_way(c, body, n), OCTO_STATUS_CLOSED);
  octo_client_free(c);
}

int main(void) {
  octo_engine_config ec;
  CHECK_OK(octo_engine_config_default(&ec));
  ec.shards = 2;
  ec.pin_shards = false;
  CHECK_OK(octo_engine_new(&ec, &engine));
  CHECK_OK(octo_server_new(engine, "127.0.0.1:0", &server));
  CHECK_OK(octo_server_add_service(server, "Echo", handle, NULL, NULL));
  CHECK_OK(octo_server_start(server));
  uint16_t port = 0;
  CHECK_OK(octo_server_port(server, &port));
  snprintf(address, sizeof address, "127.0.0.1:%u", port);

  configuration_misuse_is_refused();
  calls_over_octo_and_plain_thrift_are_answered();
  a_callback_receives_the_reply();
  remote_errors_carry_the_server_status();
  an_unanswered_call_times_out();
  nobody_listening_fails_the_call();
  one_way_calls_reach_the_server();
  bad_calls_are_refused_before_sending();
  waiting_inside_a_callback_is_refused();
  a_handler_calls_downstream_and_answers_from_the_callback();
  close_completes_calls_in_flight_with_closed();
  eight_threads_call_through_one_client();
  calls_after_the_engine_stopped_are_closed();

  pthread_mutex_lock(&held_lock);
  for (int i = 0; i < held_count; i++) octo_responder_free(held[i]); /* answered RpcException */
  held_count = 0;
  pthread_mutex_unlock(&held_lock);
  CHECK_OK(octo_server_shutdown(server, 1000));
  octo_server_free(server);
  octo_engine_free(engine);
  return check_done("test_client");
}
