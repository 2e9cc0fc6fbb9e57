/* test_server.c: the server surface of octo's C ABI against a hand-written peer (wire.h):
 * lifecycle and its misuse, the request as a handler sees it, every way of answering (inline,
 * engine buffer, later from another thread, from another thread during the callback, declared
 * exception, error, none, twice), counters, graceful shutdown, use after shutdown, finalizers,
 * and 8 host threads calling at once. */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "../../examples/echo_thrift.h"
#include "wire.h"

/* The echo REPLY written straight into octo's output by octo_responder_reply_with. */
typedef struct {
  const octo_request_info *info;
  const uint8_t *msg;
  size_t len;
} echo_reply_ctx;

static size_t echo_write_fn(void *context, uint8_t *out, size_t capacity) {
  echo_reply_ctx *c = context;
  CHECK(capacity >= echo_reply_size(c->info->method.len, c->len));
  return echo_write_reply(out, c->info->method.data, c->info->method.len, c->info->thrift_seqid, c->msg, c->len);
}

/* ---- a worker thread that answers calls after their callback returned ---- */

typedef struct job {
  octo_responder *responder;
  octo_buf *body;     /* the retained request body */
  size_t args_offset; /* where the args struct starts in it */
  char method[64];
  size_t method_len;
  int32_t seqid;
  int delay_ms; /* wait this long before answering */
  struct job *next;
} job;

static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jobs_cond = PTHREAD_COND_INITIALIZER;
static job *jobs_head;
static bool jobs_stop;

static void *worker(void *arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&jobs_lock);
    while (!jobs_head && !jobs_stop) pthread_cond_wait(&jobs_cond, &jobs_lock);
    job *j = jobs_head;
    if (j) jobs_head = j->next;
    pthread_mutex_unlock(&jobs_lock);
    if (!j) return NULL;
    if (j->delay_ms > 0) usleep((useconds_t)j->delay_ms * 1000);
    const uint8_t *body;
    size_t body_len;
    CHECK_OK(octo_buf_data(j->body, &body, &body_len));
    const uint8_t *msg = NULL;
    size_t len = 0;
    CHECK(echo_read_args(body + j->args_offset, body_len - j->args_offset, &msg, &len));
    octo_request_info info;
    memset(&info, 0, sizeof info);
    info.method.data = j->method;
    info.method.len = j->method_len;
    info.thrift_seqid = j->seqid;
    if (len >= 11 && memcmp(msg, "later-with:", 11) == 0) {
      echo_reply_ctx ctx = {&info, msg, len};
      CHECK_OK(octo_responder_reply_with(j->responder, OCTO_STATUS_OK, echo_reply_size(info.method.len, len),
                                         echo_write_fn, &ctx));
    } else {
      CHECK_OK(echo_answer(j->responder, &info, msg, len));
    }
    CHECK_STATUS(octo_responder_ok(j->responder, msg, len), OCTO_STATUS_ALREADY_ANSWERED);
    octo_responder_free(j->responder);
    octo_buf_free(j->body);
    free(j);
  }
}

static void push_job(job *j) {
  pthread_mutex_lock(&jobs_lock);
  j->next = jobs_head;
  jobs_head = j;
  pthread_cond_signal(&jobs_cond);
  pthread_mutex_unlock(&jobs_lock);
}

/* ---- an answer given by another thread while the callback still runs ---- */

typedef struct {
  octo_responder *responder;
  const octo_request_info *info;
  const uint8_t *msg;
  size_t len;
  atomic_int done;
} racer;

static void *race_answer(void *arg) {
  racer *r = arg;
  /* The callback is still running (it waits for `done`): the answer is held until it returns. */
  uint8_t reply[512];
  size_t n = echo_write_reply(reply, r->info->method.data, r->info->method.len, r->info->thrift_seqid,
                              r->msg, r->len);
  CHECK_OK(octo_responder_ok(r->responder, reply, n));
  CHECK_STATUS(octo_responder_ok(r->responder, reply, n), OCTO_STATUS_ALREADY_ANSWERED);
  atomic_store(&r->done, 1);
  return NULL;
}

static void *free_responder(void *resp) {
  octo_responder_free(resp);
  return NULL;
}

static size_t empty_write(void *context, uint8_t *out, size_t capacity) {
  (void)context;
  (void)out;
  (void)capacity;
  return 0;
}

static size_t overflowing_write(void *context, uint8_t *out, size_t capacity) {
  (void)context;
  (void)out;
  return capacity + 1;
}

static void *race_answer_with(void *arg) {
  racer *r = arg;
  echo_reply_ctx ctx = {r->info, r->msg, r->len};
  CHECK_OK(octo_responder_reply_with(r->responder, OCTO_STATUS_OK, echo_reply_size(r->info->method.len, r->len),
                                     echo_write_fn, &ctx));
  /* Off the callback's thread the message is written before the answer is claimed. */
  CHECK_STATUS(octo_responder_reply_with(r->responder, OCTO_STATUS_OK, 8, empty_write, NULL),
               OCTO_STATUS_ALREADY_ANSWERED);
  atomic_store(&r->done, 1);
  return NULL;
}

/* ---- the services ---- */

typedef struct {
  const char *name;
  atomic_int calls;
  atomic_int finalized;
} service_ctx;

static octo_engine *engine;
static octo_server *server;
static const octo_request *kept_request; /* misuse: a request kept past its callback */
static atomic_int one_way_seen;
static atomic_int slow_taken; /* a "slow:" call reached its handler */

static bool has_prefix(const uint8_t *msg, size_t len, const char *prefix) {
  size_t n = strlen(prefix);
  return len >= n && memcmp(msg, prefix, n) == 0;
}

/* Writes what the handler saw of the call into `out` (answered by "inspect:" calls). */
static size_t describe(const octo_request *req, const octo_request_info *info, char *out, size_t cap) {
  octo_trace_info t;
  CHECK_OK(octo_request_trace_info(req, &t));
  size_t g = 0, l = 0;
  CHECK_OK(octo_request_context_len(req, OCTO_CONTEXT_GLOBAL, &g));
  CHECK_OK(octo_request_context_len(req, OCTO_CONTEXT_LOCAL, &l));
  char gkv[128] = "-", lkv[128] = "-";
  if (g > 0) {
    octo_str k, v;
    CHECK_OK(octo_request_context_at(req, OCTO_CONTEXT_GLOBAL, 0, &k, &v));
    snprintf(gkv, sizeof gkv, "%.*s=%.*s", (int)k.len, k.data, (int)v.len, v.data);
    octo_str looked;
    CHECK_OK(octo_request_context_get(req, OCTO_CONTEXT_GLOBAL, k.data, k.len, &looked));
    CHECK(looked.data == v.data && looked.len == v.len);
  }
  if (l > 0) {
    octo_str k, v;
    CHECK_OK(octo_request_context_at(req, OCTO_CONTEXT_LOCAL, 0, &k, &v));
    snprintf(lkv, sizeof lkv, "%.*s=%.*s", (int)k.len, k.data, (int)v.len, v.data);
  }
  octo_str missing;
  missing.data = "x";
  CHECK_OK(octo_request_context_get(req, OCTO_CONTEXT_LOCAL, "no-such-key", 11, &missing));
  CHECK(missing.data == NULL && missing.len == 0);
  return (size_t)snprintf(
      out, cap, "svc=%.*s method=%.*s seq=%lld tseq=%d timeout=%d oneway=%d framing=%d trace=%d/%.*s/%.*s/%d/%d/%.*s/%s g=%s l=%s",
      (int)info->service.len, info->service.data, (int)info->method.len, info->method.data,
      (long long)info->sequence_id, info->thrift_seqid, info->timeout_ms, info->one_way, (int)info->framing,
      t.present, (int)t.client_appkey.len, t.client_appkey.data ? t.client_appkey.data : "",
      (int)t.trace_id.len, t.trace_id.data ? t.trace_id.data : "", t.debug, t.sample,
      (int)t.client_ip.len, t.client_ip.data ? t.client_ip.data : "", t.span_id.data ? "span" : "nospan",
      gkv, lkv);
}

/* Checks every refusal a handler can meet, then answers normally. */
static void misuse_inside_callback(const octo_request *req, octo_responder *resp, const octo_request_info *info,
                                   const uint8_t *msg, size_t len) {
  octo_request_info i2;
  CHECK_STATUS(octo_request_get_info(NULL, &i2), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_request_get_info(req, NULL), OCTO_STATUS_INVALID_ARGUMENT);
  size_t n;
  CHECK_STATUS(octo_request_context_len(req, 7, &n), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_request_context_len(req, OCTO_CONTEXT_GLOBAL, NULL), OCTO_STATUS_INVALID_ARGUMENT);
  octo_str k, v;
  CHECK_STATUS(octo_request_context_at(req, OCTO_CONTEXT_GLOBAL, 0, &k, &v), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_HAS("does not exist");
  CHECK_STATUS(octo_request_context_at(req, OCTO_CONTEXT_GLOBAL, 0, NULL, &v), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_request_context_get(req, OCTO_CONTEXT_GLOBAL, NULL, 3, &v), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_request_context_get(req, OCTO_CONTEXT_GLOBAL, "k", 1, NULL), OCTO_STATUS_INVALID_ARGUMENT);
  octo_trace_info t;
  CHECK_STATUS(octo_request_trace_info(req, NULL), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_request_trace_info(NULL, &t), OCTO_STATUS_INVALID_ARGUMENT);
  octo_buf *b;
  CHECK_STATUS(octo_request_body_retain(req, NULL), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_request_body_retain(NULL, &b), OCTO_STATUS_INVALID_ARGUMENT);
  /* The counters are read without asking the shards: they count this call already. */
  octo_server_stats s;
  CHECK_OK(octo_server_get_stats(server, &s));
  CHECK(s.requests >= 1 && s.connections_open >= 1);
  /* Blocking calls would wait for this very thread. */
  CHECK_STATUS(octo_server_shutdown(server, 0), OCTO_STATUS_BUSY);
  CHECK_LAST_ERROR_HAS("never block inside a callback");
  CHECK_STATUS(octo_server_start(server), OCTO_STATUS_BUSY);
  octo_engine_free(engine); /* refused: does nothing but set the last error */
  CHECK_LAST_ERROR_HAS("inside a callback");
  octo_server_free(server); /* likewise */
  CHECK_LAST_ERROR_HAS("inside a callback");
  /* Bad answers leave the call unanswered. */
  CHECK_STATUS(octo_responder_ok(NULL, msg, len), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_responder_ok(resp, NULL, 5), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_responder_reply(resp, 42, msg, len), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_responder_reply(resp, OCTO_STATUS_BUSY, msg, len), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_responder_error(resp, 0, "success is no error"), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_responder_error(resp, 3, "\xff\xfe not utf-8"), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_responder_ok_buf(resp, NULL), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_responder_reply_buf(resp, 77, NULL), OCTO_STATUS_INVALID_ARGUMENT);
  octo_buf *consumed;
  CHECK_OK(octo_buf_new(4, &consumed));
  CHECK_STATUS(octo_responder_reply_buf(resp, 99, consumed), OCTO_STATUS_INVALID_ARGUMENT); /* consumed anyway */
  CHECK_STATUS(octo_responder_ok_buf(NULL, NULL), OCTO_STATUS_INVALID_ARGUMENT);
  kept_request = req;
  CHECK_OK(echo_answer(resp, info, msg, len));
}

static void handle(void *user_data, const octo_request *req, octo_responder *resp) {
  service_ctx *ctx = user_data;
  atomic_fetch_add(&ctx->calls, 1);
  octo_request_info info;
  CHECK_OK(octo_request_get_info(req, &info));
  const uint8_t *msg = NULL;
  size_t len = 0;
  if (!echo_read_args(info.args, info.args_len, &msg, &len)) {
    CHECK_OK(octo_responder_error(resp, OCTO_STATUS_PROTOCOL_EXCEPTION, "bad echo args"));
    octo_responder_free(resp);
    return;
  }
  if (info.one_way) {
    atomic_fetch_add(&one_way_seen, 1);
    CHECK_OK(octo_responder_ok(resp, msg, len)); /* accepted, discarded by the engine */
    octo_responder_free(resp);
    return;
  }
  if (has_prefix(msg, len, "inline:")) {
    uint8_t reply[512];
    size_t n = echo_write_reply(reply, info.method.data, info.method.len, info.thrift_seqid, msg, len);
    CHECK_OK(octo_responder_ok(resp, reply, n));
    octo_responder_free(resp);
  } else if (has_prefix(msg, len, "buf:")) {
    CHECK_OK(echo_answer(resp, &info, msg, len));
    octo_responder_free(resp);
  } else if (has_prefix(msg, len, "later:") || has_prefix(msg, len, "later-with:") ||
             has_prefix(msg, len, "slow:")) {
    job *j = calloc(1, sizeof *j);
    if (has_prefix(msg, len, "slow:")) {
      j->delay_ms = 300;
      atomic_store(&slow_taken, 1);
    }
    j->responder = resp; /* ownership moves to the worker */
    CHECK_OK(octo_request_body_retain(req, &j->body));
    j->args_offset = (size_t)(info.args - info.body);
    CHECK(info.method.len < sizeof j->method);
    memcpy(j->method, info.method.data, info.method.len);
    j->method_len = info.method.len;
    j->seqid = info.thrift_seqid;
    push_job(j);
  } else if (has_prefix(msg, len, "race:")) {
    racer r = {resp, &info, msg, len, 0};
    pthread_t t;
    pthread_create(&t, NULL, race_answer, &r);
    pthread_join(t, NULL); /* a test may wait; a real handler must not */
    CHECK(atomic_load(&r.done) == 1);
    octo_responder_free(resp);
  } else if (has_prefix(msg, len, "double:")) {
    CHECK_OK(echo_answer(resp, &info, msg, len));
    CHECK_STATUS(echo_answer(resp, &info, msg, len), OCTO_STATUS_ALREADY_ANSWERED);
    CHECK_LAST_ERROR_HAS("answered already");
    CHECK_STATUS(octo_responder_error(resp, 3, "again"), OCTO_STATUS_ALREADY_ANSWERED);
    octo_responder_free(resp);
  } else if (has_prefix(msg, len, "drop-now:")) {
    octo_responder_free(resp); /* freed unanswered inside the callback */
  } else if (has_prefix(msg, len, "drop-later:")) {
    /* freed unanswered by another thread after the callback returned */
    pthread_t t;
    pthread_create(&t, NULL, free_responder, resp);
    pthread_detach(t);
  } else if (has_prefix(msg, len, "error:")) {
    CHECK_OK(octo_responder_error(resp, OCTO_STATUS_SECURITY_EXCEPTION, "denied"));
    octo_responder_free(resp);
  } else if (has_prefix(msg, len, "declared:")) {
    uint8_t reply[512];
    size_t n = echo_write_reply(reply, info.method.data, info.method.len, info.thrift_seqid, msg, len);
    CHECK_OK(octo_responder_reply(resp, OCTO_STATUS_APPLICATION_EXCEPTION, reply, n));
    octo_responder_free(resp);
  } else if (has_prefix(msg, len, "declared-buf:")) {
    octo_buf *b = NULL;
    CHECK_OK(octo_buf_new(0, &b));
    uint8_t reply[512];
    size_t n = echo_write_reply(reply, info.method.data, info.method.len, info.thrift_seqid, msg, len);
    CHECK_OK(octo_buf_write(b, reply, n));
    CHECK_OK(octo_responder_reply_buf(resp, OCTO_STATUS_APPLICATION_EXCEPTION, b)); /* consumed */
    octo_responder_free(resp);
  } else if (has_prefix(msg, len, "with:")) {
    echo_reply_ctx ctx = {&info, msg, len};
    CHECK_OK(octo_responder_reply_with(resp, OCTO_STATUS_OK, echo_reply_size(info.method.len, len),
                                       echo_write_fn, &ctx));
    CHECK_STATUS(octo_responder_reply_with(resp, OCTO_STATUS_OK, 10, echo_write_fn, &ctx),
                 OCTO_STATUS_ALREADY_ANSWERED);
    octo_responder_free(resp);
  } else if (has_prefix(msg, len, "with-race:")) {
    racer r = {resp, &info, msg, len, 0};
    pthread_t t;
    pthread_create(&t, NULL, race_answer_with, &r);
    pthread_join(t, NULL);
    CHECK(atomic_load(&r.done) == 1);
    octo_responder_free(resp);
  } else if (has_prefix(msg, len, "with-overflow:")) {
    CHECK_STATUS(octo_responder_reply_with(resp, OCTO_STATUS_OK, 1024, NULL, NULL), OCTO_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(octo_responder_reply_with(resp, OCTO_STATUS_OK, (size_t)INT32_MAX + 1, overflowing_write, NULL),
                 OCTO_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(octo_responder_reply_with(resp, 12, 16, overflowing_write, NULL), OCTO_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(octo_responder_reply_with(resp, OCTO_STATUS_OK, 16, overflowing_write, NULL),
                 OCTO_STATUS_INVALID_ARGUMENT); /* answered, with an empty body */
    CHECK_LAST_ERROR_HAS("more than the capacity");
    CHECK_STATUS(octo_responder_ok(resp, msg, len), OCTO_STATUS_ALREADY_ANSWERED);
    octo_responder_free(resp);
  } else if (has_prefix(msg, len, "inspect:")) {
    char text[1024];
    size_t n = describe(req, &info, text, sizeof text);
    CHECK_OK(echo_answer(resp, &info, (const uint8_t *)text, n));
    octo_responder_free(resp);
  } else if (has_prefix(msg, len, "misuse:")) {
    misuse_inside_callback(req, resp, &info, msg, len);
    octo_responder_free(resp);
  } else {
    CHECK_OK(echo_answer(resp, &info, msg, len));
    octo_responder_free(resp);
  }
}

static void finalize(void *user_data) {
  service_ctx *ctx = user_data;
  atomic_fetch_add(&ctx->finalized, 1);
}

/* ---- the peer's side ---- */

static wbuf req_buf;

static answer call_octo(int fd, const char *service, int64_t seq, const char *msg) {
  octo_call c = {service, seq, false, 5000, false, NULL, NULL};
  req_buf.len = 0;
  put_octo_request(&req_buf, &c, "echo", msg, strlen(msg));
  answer a;
  CHECK(roundtrip(fd, &req_buf, &a));
  CHECK(a.octo);
  CHECK(a.sequence_id == seq);
  return a;
}

static answer call_thrift(int fd, int32_t seqid, const char *msg) {
  req_buf.len = 0;
  put_thrift_request(&req_buf, "echo", seqid, msg, strlen(msg), false);
  answer a;
  CHECK(roundtrip(fd, &req_buf, &a));
  CHECK(!a.octo);
  CHECK(a.seqid == seqid);
  return a;
}

static void expect_echo(answer a, const char *msg) {
  CHECK(a.status == 0);
  CHECK(a.msg_type == 2);
  CHECK(a.result_len == strlen(msg) && memcmp(a.result, msg, a.result_len) == 0);
}

static service_ctx echo_ctx = {"Echo", 0, 0};
static service_ctx other_ctx = {"Other", 0, 0};
static uint16_t port;

static void configuration_misuse_is_refused(void) {
  octo_server *s = NULL;
  CHECK_STATUS(octo_server_new(NULL, "127.0.0.1:0", &s), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_server_new(engine, NULL, &s), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_server_new(engine, "127.0.0.1:0", NULL), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_server_new(engine, "not an address", &s), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_HAS("IP:PORT");
  CHECK(s == NULL);
  CHECK_OK(octo_server_new(engine, "127.0.0.1:0", &s));
  uint16_t p;
  octo_server_stats st;
  CHECK_STATUS(octo_server_port(s, &p), OCTO_STATUS_BUSY);
  CHECK_STATUS(octo_server_get_stats(s, &st), OCTO_STATUS_BUSY);
  CHECK_STATUS(octo_server_start(s), OCTO_STATUS_INVALID_ARGUMENT); /* no service */
  CHECK_LAST_ERROR_HAS("no service");
  service_ctx never = {"never", 0, 0};
  CHECK_STATUS(octo_server_add_service(NULL, "X", handle, &never, finalize), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_server_add_service(s, NULL, handle, &never, finalize), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_server_add_service(s, "", handle, &never, finalize), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_server_add_service(s, "X", NULL, &never, finalize), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_server_add_service(s, "\xc3\x28", handle, &never, finalize), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_server_set_default_service(s, "X"), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_server_set_default_service(s, NULL), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_server_set_default_service(NULL, "X"), OCTO_STATUS_INVALID_ARGUMENT);
  service_ctx dup = {"dup", 0, 0};
  CHECK_OK(octo_server_add_service(s, "X", handle, &dup, finalize));
  CHECK_STATUS(octo_server_add_service(s, "X", handle, &never, finalize), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_HAS("exists already");
  CHECK_STATUS(octo_server_port(NULL, &p), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_server_port(s, NULL), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_server_get_stats(NULL, &st), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_server_get_stats(s, NULL), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_server_start(NULL), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(octo_server_shutdown(NULL, 0), OCTO_STATUS_INVALID_ARGUMENT);
  octo_server_free(s); /* never started: the registered service is finalized */
  CHECK(atomic_load(&dup.finalized) == 1);
  CHECK(atomic_load(&never.finalized) == 0); /* refusals keep nothing */
  octo_server_free(NULL);
}

static void a_taken_port_is_refused(void) {
  octo_server *s = NULL;
  char addr[32];
  snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
  CHECK_OK(octo_server_new(engine, addr, &s));
  service_ctx c = {"c", 0, 0};
  CHECK_OK(octo_server_add_service(s, "Echo", handle, &c, finalize));
  CHECK_STATUS(octo_server_start(s), OCTO_STATUS_IO);
  CHECK_STATUS(octo_server_start(s), OCTO_STATUS_CLOSED); /* a failed start closes it */
  octo_server_free(s);
  CHECK(atomic_load(&c.finalized) == 1);
}

static void start_the_server(void) {
  CHECK_OK(octo_server_new(engine, "127.0.0.1:0", &server));
  CHECK_OK(octo_server_add_service(server, "Echo", handle, &echo_ctx, finalize));
  CHECK_OK(octo_server_add_service(server, "Other", handle, &other_ctx, finalize));
  CHECK_OK(octo_server_set_default_service(server, "Other"));
  CHECK_OK(octo_server_start(server));
  CHECK_OK(octo_server_port(server, &port));
  CHECK(port != 0);
  CHECK_STATUS(octo_server_start(server), OCTO_STATUS_BUSY);
  CHECK_STATUS(octo_server_add_service(server, "Late", handle, &echo_ctx, NULL), OCTO_STATUS_BUSY);
  CHECK_LAST_ERROR_HAS("has started");
  CHECK_STATUS(octo_server_set_default_service(server, "Echo"), OCTO_STATUS_BUSY);
}

static void octo_and_thrift_calls_are_echoed_and_routed(int fd, int tfd) {
  expect_echo(call_octo(fd, "Echo", 1, "hello"), "hello");
  expect_echo(call_octo(fd, "Echo", 0x123456789abLL, "a 64-bit sequence id"), "a 64-bit sequence id");
  int before = atomic_load(&other_ctx.calls);
  expect_echo(call_thrift(tfd, 7, "native thrift"), "native thrift");
  CHECK(atomic_load(&other_ctx.calls) == before + 1); /* native Thrift goes to the default service */
  expect_echo(call_octo(fd, "Other", 2, "routed"), "routed");
}

static void every_way_of_answering_arrives(int fd, int tfd) {
  expect_echo(call_octo(fd, "Echo", 10, "inline:x"), "inline:x");
  expect_echo(call_octo(fd, "Echo", 11, "buf:x"), "buf:x");
  expect_echo(call_octo(fd, "Echo", 12, "later:x"), "later:x");
  expect_echo(call_thrift(tfd, 13, "later:thrift"), "later:thrift");
  expect_echo(call_octo(fd, "Echo", 14, "race:x"), "race:x");
  expect_echo(call_octo(fd, "Echo", 15, "double:x"), "double:x");
  answer a = call_octo(fd, "Echo", 16, "declared:x");
  CHECK(a.status == 1 && a.msg_type == 2);
  expect_echo(call_octo(fd, "Echo", 22, "with:x"), "with:x");
  expect_echo(call_thrift(tfd, 23, "with:thrift"), "with:thrift");
  expect_echo(call_octo(fd, "Echo", 24, "with-race:x"), "with-race:x");
  expect_echo(call_octo(fd, "Echo", 26, "later-with:x"), "later-with:x");
  a = call_octo(fd, "Echo", 25, "with-overflow:x");
  CHECK(a.status == 0 && a.msg_type == 0); /* status 0 and an empty body */
  a = call_octo(fd, "Echo", 19, "declared-buf:x");
  CHECK(a.status == 1 && a.msg_type == 2 && strcmp(a.result, "declared-buf:x") == 0);
  a = call_octo(fd, "Echo", 17, "error:x");
  CHECK(a.status == 7 && a.msg_type == 3);
  CHECK(strcmp(a.result, "denied") == 0);
  a = call_thrift(tfd, 18, "error:x");
  CHECK(a.status == -1 && strcmp(a.result, "denied") == 0); /* a TApplicationException */
}

static void a_responder_freed_unanswered_sends_rpc_exception(int fd) {
  answer a = call_octo(fd, "Echo", 20, "drop-now:x");
  CHECK(a.status == 3 && a.msg_type == 3);
  a = call_octo(fd, "Echo", 21, "drop-later:x");
  CHECK(a.status == 3 && a.msg_type == 3);
}

static void the_handler_sees_the_whole_request(int fd) {
  octo_call c = {"Echo", 30, false, 1234, true, "gk=gv", "lk=lv"};
  req_buf.len = 0;
  put_octo_request(&req_buf, &c, "echo", "inspect:", 8);
  answer a;
  CHECK(roundtrip(fd, &req_buf, &a));
  const char *want =
      "svc=Echo method=echo seq=30 tseq=30 timeout=1234 oneway=0 framing=0 "
      "trace=1/test-app/t-1/1/-1/127.0.0.1/nospan g=gk=gv l=lk=lv";
  CHECK(a.status == 0);
  if (strcmp(a.result, want) != 0) fprintf(stderr, "got  %s\nwant %s\n", a.result, want);
  CHECK(strcmp(a.result, want) == 0);
}

static void a_thrift_request_has_no_header_parts(int tfd) {
  answer a = call_thrift(tfd, 31, "inspect:");
  const char *want =
      "svc=Other method=echo seq=31 tseq=31 timeout=0 oneway=0 framing=1 trace=0///-1/-1//nospan g=- l=-";
  if (strcmp(a.result, want) != 0) fprintf(stderr, "got  %s\nwant %s\n", a.result, want);
  CHECK(strcmp(a.result, want) == 0);
}

static void misuse_inside_a_callback_is_refused(int fd) {
  expect_echo(call_octo(fd, "Echo", 40, "misuse:x"), "misuse:x");
  /* The request was lent for the callback only. */
  octo_request_info info;
  CHECK(kept_request != NULL);
  CHECK_STATUS(octo_request_get_info(kept_request, &info), OCTO_STATUS_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_HAS("only inside its handler callback");
  octo_buf *b;
  CHECK_STATUS(octo_request_body_retain(kept_request, &b), OCTO_STATUS_INVALID_ARGUMENT);
}

static void unknown_service_is_status_8(int fd) {
  answer a = call_octo(fd, "Nobody", 50, "x");
  CHECK(a.status == 8 && a.msg_type == 3);
}

static void one_way_calls_get_no_answer(int fd) {
  octo_call c = {"Echo", 60, true, 0, false, NULL, NULL};
  req_buf.len = 0;
  put_octo_request(&req_buf, &c, "echo", "one way", 7);
  CHECK(send_all(fd, req_buf.data, req_buf.len));
  /* The next answer on the connection is the next call's: nothing was sent for the one-way. */
  expect_echo(call_octo(fd, "Echo", 61, "after one-way"), "after one-way");
  CHECK(atomic_load(&one_way_seen) == 1);
}

/* ---- 8 host threads calling at once ---- */

enum { THREADS = 8, CALLS_PER_THREAD = 200 };

static void *caller(void *arg) {
  long id = (long)arg;
  int fd = tcp_connect(port);
  CHECK(fd >= 0);
  wbuf *rq = malloc(sizeof *rq);
  for (int i = 0; i < CALLS_PER_THREAD && fd >= 0; i++) {
    char msg[64];
    snprintf(msg, sizeof msg, "%s%ld-%d", i % 3 == 0 ? "later:" : i % 3 == 1 ? "inline:" : "", id, i);
    octo_call c = {"Echo", id * 1000000 + i, false, 5000, false, NULL, NULL};
    rq->len = 0;
    put_octo_request(rq, &c, "echo", msg, strlen(msg));
    answer a;
    CHECK(roundtrip(fd, rq, &a));
    CHECK(a.sequence_id == c.sequence_id && a.status == 0);
    CHECK(strcmp(a.result, msg) == 0);
  }
  free(rq);
  if (fd >= 0) close(fd);
  return NULL;
}

static void eight_threads_call_concurrently(void) {
  pthread_t t[THREADS];
  for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, caller, (void *)i);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
}

static void counters_add_up(void) {
  octo_server_stats s;
  CHECK_OK(octo_server_get_stats(server, &s));
  CHECK(s.connections_accepted >= 2 + THREADS);
  CHECK(s.requests >= (uint64_t)THREADS * CALLS_PER_THREAD + 20);
  CHECK(s.answers_by_status[0] >= (uint64_t)THREADS * CALLS_PER_THREAD + 15);
  CHECK(s.answers_by_status[1] == 2); /* declared, declared-buf */
  CHECK(s.answers_by_status[3] == 2); /* two responders freed unanswered */
  CHECK(s.answers_by_status[7] == 2); /* error: x2 */
  CHECK(s.answers_by_status[8] == 1); /* unknown service */
  CHECK(s.expired == 0);
}

static void shutdown_waits_for_answers_in_flight(int fd) {
  octo_call c = {"Echo", 70, false, 5000, false, NULL, NULL};
  req_buf.len = 0;
  put_octo_request(&req_buf, &c, "echo", "slow:x", 6);
  CHECK(send_all(fd, req_buf.data, req_buf.len));
  for (int i = 0; i < 2000 && !atomic_load(&slow_taken); i++) usleep(1000);
  CHECK(atomic_load(&slow_taken));
  /* The call is in flight (its answer comes 300 ms later, from the worker): a graceful shutdown
   * lets it finish and flushes the answer before closing the connection. */
  CHECK_OK(octo_server_shutdown(server, 5000));
  wbuf *in = malloc(sizeof *in);
  answer a;
  CHECK(read_frame(fd, in) && parse_answer(in, &a));
  CHECK(a.sequence_id == 70 && a.status == 0 && strcmp(a.result, "slow:x") == 0);
  CHECK(!read_frame(fd, in)); /* then the connection is closed */
  free(in);
}

static void use_after_shutdown_is_refused(void) {
  uint16_t p;
  octo_server_stats s;
  CHECK_STATUS(octo_server_shutdown(server, 0), OCTO_STATUS_CLOSED);
  CHECK_STATUS(octo_server_port(server, &p), OCTO_STATUS_CLOSED);
  CHECK_STATUS(octo_server_get_stats(server, &s), OCTO_STATUS_CLOSED);
  CHECK_STATUS(octo_server_start(server), OCTO_STATUS_CLOSED);
  CHECK_STATUS(octo_server_add_service(server, "Late", handle, &echo_ctx, NULL), OCTO_STATUS_CLOSED);
  CHECK_STATUS(octo_server_set_default_service(server, "Echo"), OCTO_STATUS_CLOSED);
  int fd = tcp_connect(port);
  CHECK(fd < 0); /* nobody listens any more */
  if (fd >= 0) close(fd);
}

int main(void) {
  octo_engine_config cfg;
  CHECK_OK(octo_engine_config_default(&cfg));
  cfg.shards = 2;
  cfg.pin_shards = false;
  CHECK_OK(octo_engine_new(&cfg, &engine));
  pthread_t w;
  pthread_create(&w, NULL, worker, NULL);

  configuration_misuse_is_refused();
  start_the_server();
  a_taken_port_is_refused();
  int fd = tcp_connect(port), tfd = tcp_connect(port);
  CHECK(fd >= 0 && tfd >= 0);
  octo_and_thrift_calls_are_echoed_and_routed(fd, tfd);
  every_way_of_answering_arrives(fd, tfd);
  a_responder_freed_unanswered_sends_rpc_exception(fd);
  the_handler_sees_the_whole_request(fd);
  a_thrift_request_has_no_header_parts(tfd);
  misuse_inside_a_callback_is_refused(fd);
  unknown_service_is_status_8(fd);
  one_way_calls_get_no_answer(fd);
  eight_threads_call_concurrently();
  counters_add_up();
  close(tfd);
  shutdown_waits_for_answers_in_flight(fd);
  close(fd);
  use_after_shutdown_is_refused();

  pthread_mutex_lock(&jobs_lock);
  jobs_stop = true;
  pthread_cond_signal(&jobs_cond);
  pthread_mutex_unlock(&jobs_lock);
  pthread_join(w, NULL);

  octo_server_free(server);
  octo_engine_free(engine);
  /* Every handler's user data was finalized exactly once, by the time the engine is gone. */
  CHECK(atomic_load(&echo_ctx.finalized) == 1);
  CHECK(atomic_load(&other_ctx.finalized) == 1);
  return check_done("test_server");
}
