/* echo_server.c: the reference Echo service (`service Echo { string echo(1: string message) }`)
 * served by octo through its C ABI: OCTO and plain Thrift on one port, answered inline on the
 * shard threads.
 *
 *   echo_server [--addr IP:PORT] [--shards N] [--cpus 0,1,...] [--service NAME]
 *
 * Prints "listening on IP:PORT pid PID" once it serves; SIGINT or SIGTERM shut it down
 * gracefully (2 s deadline) and print its counters. A plain Apache Thrift client (TSocket +
 * TFramedTransport + TBinaryProtocol, code generated from idl/echo.thrift) can call it. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "echo_thrift.h"
#include "octo.h"

static void echo(void *user_data, const octo_request *request, octo_responder *responder) {
  (void)user_data;
  octo_request_info info;
  if (octo_request_get_info(request, &info) != OCTO_STATUS_OK) {
    octo_responder_free(responder); /* unanswered: the engine sends RpcException */
    return;
  }
  const uint8_t *msg = NULL;
  size_t len = 0;
  if (info.method.len != 4 || memcmp(info.method.data, "echo", 4) != 0) {
    octo_responder_error(responder, OCTO_STATUS_SERVICE_EXCEPTION, "unknown method");
  } else if (!echo_read_args(info.args, info.args_len, &msg, &len)) {
    octo_responder_error(responder, OCTO_STATUS_PROTOCOL_EXCEPTION, "malformed echo_args");
  } else {
    /* The REPLY is written straight into the connection's output buffer: no copy. */
    echo_reply reply = {&info, msg, len};
    octo_responder_reply_with(responder, OCTO_STATUS_OK, echo_reply_size(info.method.len, len),
                              echo_reply_write, &reply);
  }
  octo_responder_free(responder);
}

static int fail(const char *what, octo_status st) {
  fprintf(stderr, "echo_server: %s: %s (%s)\n", what, octo_status_name(st), octo_last_error());
  return 1;
}

int main(int argc, char **argv) {
  const char *addr = "127.0.0.1:9090";
  const char *service = "Echo";
  octo_engine_config cfg;
  octo_engine_config_default(&cfg);
  cfg.shards = 1;
  uint32_t cpus[64];
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--addr") && i + 1 < argc) {
      addr = argv[++i];
    } else if (!strcmp(argv[i], "--shards") && i + 1 < argc) {
      cfg.shards = (uint32_t)atoi(argv[++i]);
    } else if (!strcmp(argv[i], "--service") && i + 1 < argc) {
      service = argv[++i];
    } else if (!strcmp(argv[i], "--cpus") && i + 1 < argc) {
      char *list = argv[++i];
      cfg.cpus_len = 0;
      for (char *tok = strtok(list, ","); tok && cfg.cpus_len < 64; tok = strtok(NULL, ","))
        cpus[cfg.cpus_len++] = (uint32_t)atoi(tok);
      cfg.cpus = cpus;
    } else {
      fprintf(stderr, "usage: %s [--addr IP:PORT] [--shards N] [--cpus LIST] [--service NAME]\n", argv[0]);
      return 2;
    }
  }

  /* Shard threads inherit this mask: the signals are taken by sigwait below only. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);

  octo_engine *engine = NULL;
  octo_server *server = NULL;
  octo_status st;
  if ((st = octo_engine_new(&cfg, &engine)) != OCTO_STATUS_OK) return fail("engine", st);
  if ((st = octo_server_new(engine, addr, &server)) != OCTO_STATUS_OK) return fail("server", st);
  if ((st = octo_server_add_service(server, service, echo, NULL, NULL)) != OCTO_STATUS_OK)
    return fail("service", st);
  if ((st = octo_server_start(server)) != OCTO_STATUS_OK) return fail("start", st);
  uint16_t port = 0;
  octo_server_port(server, &port);
  char host[64];
  snprintf(host, sizeof host, "%s", addr);
  char *colon = strrchr(host, ':');
  if (colon) *colon = 0;
  printf("listening on %s:%u pid %d\n", host, port, (int)getpid());
  fflush(stdout);

  int sig = 0;
  sigwait(&stop, &sig);
  octo_server_stats stats;
  if (octo_server_get_stats(server, &stats) == OCTO_STATUS_OK) {
    printf("requests %llu, connections %llu, answers ok %llu, errors %llu\n",
           (unsigned long long)stats.requests, (unsigned long long)stats.connections_accepted,
           (unsigned long long)stats.answers_by_status[0],
           (unsigned long long)(stats.requests - stats.answers_by_status[0]));
  }
  octo_server_shutdown(server, 2000);
  octo_server_free(server);
  octo_engine_free(engine);
  return 0;
}
