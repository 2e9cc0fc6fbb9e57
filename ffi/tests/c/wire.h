/* wire.h: a peer for octo's C ABI tests, written independently of octo: blocking loopback
 * sockets, OCTO and Thrift-framed Echo requests encoded by hand from PROTOCOL.md, and a small
 * Thrift-binary reader for the answers. */
#ifndef OCTO_TEST_WIRE_H
#define OCTO_TEST_WIRE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
  uint8_t data[1 << 16];
  size_t len;
} wbuf;

static inline void put_u8(wbuf *b, uint8_t v) { b->data[b->len++] = v; }
static inline void put_i16(wbuf *b, int16_t v) {
  put_u8(b, (uint8_t)((uint16_t)v >> 8));
  put_u8(b, (uint8_t)v);
}
static inline void put_i32(wbuf *b, int32_t v) {
  for (int s = 24; s >= 0; s -= 8) put_u8(b, (uint8_t)((uint32_t)v >> s));
}
static inline void put_i64(wbuf *b, int64_t v) {
  for (int s = 56; s >= 0; s -= 8) put_u8(b, (uint8_t)((uint64_t)v >> s));
}
static inline void put_bytes(wbuf *b, const void *p, size_t n) {
  memcpy(b->data + b->len, p, n);
  b->len += n;
}
static inline void put_str(wbuf *b, const char *s, size_t n) {
  put_i32(b, (int32_t)n);
  put_bytes(b, s, n);
}
static inline void put_field(wbuf *b, uint8_t type, int16_t id) {
  put_u8(b, type);
  put_i16(b, id);
}
static inline void patch_i32(wbuf *b, size_t at, int32_t v) {
  for (int i = 0; i < 4; i++) b->data[at + i] = (uint8_t)((uint32_t)v >> (24 - 8 * i));
}

enum { T_STOP = 0, T_BOOL = 2, T_BYTE = 3, T_I16 = 6, T_I32 = 8, T_I64 = 10, T_STRING = 11,
       T_STRUCT = 12, T_MAP = 13, T_SET = 14, T_LIST = 15, T_DOUBLE = 4 };

/* A Thrift CALL (or ONEWAY) message for `method` with one string argument, field 1. */
static inline void put_call_message(wbuf *b, const char *method, int32_t seqid, const char *msg,
                                    size_t msg_len, bool oneway) {
  put_i32(b, (int32_t)(0x80010000u | (oneway ? 4u : 1u)));
  put_str(b, method, strlen(method));
  put_i32(b, seqid);
  put_field(b, T_STRING, 1);
  put_str(b, msg, msg_len);
  put_u8(b, T_STOP);
}

/* What an OCTO request carries beyond the call itself. */
typedef struct {
  const char *service;
  int64_t sequence_id;
  bool one_way;
  int32_t timeout_ms;
  bool trace;             /* send TraceInfo (appkey "test-app", traceId "t-1", debug true, ip) */
  const char *global_kv;  /* one globalContext entry "key=value", or NULL */
  const char *local_kv;   /* one localContext entry, or NULL */
} octo_call;

static inline void put_context(wbuf *b, int16_t field, const char *kv) {
  const char *eq = strchr(kv, '=');
  put_field(b, T_MAP, field);
  put_u8(b, T_STRING);
  put_u8(b, T_STRING);
  put_i32(b, 1);
  put_str(b, kv, (size_t)(eq - kv));
  put_str(b, eq + 1, strlen(eq + 1));
}

/* An OCTO frame (PROTOCOL.md §2-4): Header{messageType, requestInfo, traceInfo?, contexts?},
 * then the Thrift message, with no checksum or compression. */
static inline void put_octo_request(wbuf *b, const octo_call *c, const char *method,
                                    const char *msg, size_t msg_len) {
  size_t start = b->len;
  put_u8(b, 0xAB);
  put_u8(b, 0xBA);
  put_u8(b, 0);   /* version */
  put_u8(b, 1);   /* Thrift serialization */
  put_i32(b, 0);  /* total_length, patched */
  put_i16(b, 0);  /* header_length, patched */
  size_t header = b->len;
  put_field(b, T_BYTE, 1);
  put_u8(b, 0);
  put_field(b, T_STRUCT, 2);
  put_field(b, T_STRING, 1);
  put_str(b, c->service, strlen(c->service));
  put_field(b, T_I64, 2);
  put_i64(b, c->sequence_id);
  put_field(b, T_BYTE, 3);
  put_u8(b, c->one_way ? 1 : 0);
  put_field(b, T_I32, 4);
  put_i32(b, c->timeout_ms);
  put_u8(b, T_STOP);
  if (c->trace) {
    put_field(b, T_STRUCT, 4);
    put_field(b, T_STRING, 1);
    put_str(b, "test-app", 8);
    put_field(b, T_STRING, 2);
    put_str(b, "t-1", 3);
    put_field(b, T_BOOL, 7);
    put_u8(b, 1);
    put_field(b, T_STRING, 9);
    put_str(b, "127.0.0.1", 9);
    put_u8(b, T_STOP);
  }
  if (c->global_kv) put_context(b, 5, c->global_kv);
  if (c->local_kv) put_context(b, 6, c->local_kv);
  put_u8(b, T_STOP);
  size_t header_len = b->len - header;
  put_call_message(b, method, (int32_t)c->sequence_id, msg, msg_len, false);
  patch_i32(b, start + 4, (int32_t)(2 + (b->len - header)));
  b->data[start + 8] = (uint8_t)(header_len >> 8);
  b->data[start + 9] = (uint8_t)header_len;
}

/* A Thrift framed-transport request: 4-byte length, then the message. */
static inline void put_thrift_request(wbuf *b, const char *method, int32_t seqid, const char *msg,
                                      size_t msg_len, bool oneway) {
  size_t start = b->len;
  put_i32(b, 0);
  put_call_message(b, method, seqid, msg, msg_len, oneway);
  patch_i32(b, start, (int32_t)(b->len - start - 4));
}

static inline int tcp_connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct timeval tv = {.tv_sec = 20, .tv_usec = 0}; /* a lost answer fails the test, not hangs it */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

static inline bool send_all(int fd, const void *p, size_t n) {
  const uint8_t *q = p;
  while (n > 0) {
    ssize_t w = send(fd, q, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    q += w;
    n -= (size_t)w;
  }
  return true;
}

static inline bool recv_all(int fd, void *p, size_t n) {
  uint8_t *q = p;
  while (n > 0) {
    ssize_t r = recv(fd, q, n, 0);
    if (r <= 0) return false;
    q += r;
    n -= (size_t)r;
  }
  return true;
}

/* Reads one whole frame (OCTO or Thrift-framed) into `out`; false on EOF, timeout or overflow. */
static inline bool read_frame(int fd, wbuf *out) {
  out->len = 0;
  if (!recv_all(fd, out->data, 4)) return false;
  size_t rest;
  if (out->data[0] == 0xAB && out->data[1] == 0xBA) {
    if (!recv_all(fd, out->data + 4, 4)) return false;
    uint32_t total = ((uint32_t)out->data[4] << 24) | ((uint32_t)out->data[5] << 16) |
                     ((uint32_t)out->data[6] << 8) | out->data[7];
    out->len = 8;
    rest = total;
  } else {
    uint32_t n = ((uint32_t)out->data[0] << 24) | ((uint32_t)out->data[1] << 16) |
                 ((uint32_t)out->data[2] << 8) | out->data[3];
    out->len = 4;
    rest = n;
  }
  if (rest > sizeof out->data - out->len) return false;
  if (!recv_all(fd, out->data + out->len, rest)) return false;
  out->len += rest;
  return true;
}

/* A bounds-checked reader of Thrift binary values. */
typedef struct {
  const uint8_t *p;
  size_t len, at;
  bool bad;
} rd;

static inline uint64_t rd_n(rd *r, int n) {
  uint64_t v = 0;
  if (r->at + (size_t)n > r->len) {
    r->bad = true;
    return 0;
  }
  for (int i = 0; i < n; i++) v = (v << 8) | r->p[r->at++];
  return v;
}

static inline bool rd_skip(rd *r, uint8_t type, int depth) {
  if (depth > 16) return false;
  switch (type) {
    case T_BOOL: case T_BYTE: rd_n(r, 1); break;
    case T_I16: rd_n(r, 2); break;
    case T_I32: rd_n(r, 4); break;
    case T_I64: case T_DOUBLE: rd_n(r, 8); break;
    case T_STRING: {
      uint32_t n = (uint32_t)rd_n(r, 4);
      if (r->bad || n > r->len - r->at) return false;
      r->at += n;
      break;
    }
    case T_STRUCT:
      for (;;) {
        uint8_t t = (uint8_t)rd_n(r, 1);
        if (r->bad) return false;
        if (t == T_STOP) break;
        rd_n(r, 2);
        if (!rd_skip(r, t, depth + 1)) return false;
      }
      break;
    case T_MAP: {
      uint8_t kt = (uint8_t)rd_n(r, 1), vt = (uint8_t)rd_n(r, 1);
      uint32_t n = (uint32_t)rd_n(r, 4);
      for (uint32_t i = 0; i < n && !r->bad; i++)
        if (!rd_skip(r, kt, depth + 1) || !rd_skip(r, vt, depth + 1)) return false;
      break;
    }
    case T_SET: case T_LIST: {
      uint8_t et = (uint8_t)rd_n(r, 1);
      uint32_t n = (uint32_t)rd_n(r, 4);
      for (uint32_t i = 0; i < n && !r->bad; i++)
        if (!rd_skip(r, et, depth + 1)) return false;
      break;
    }
    default: return false;
  }
  return !r->bad;
}

/* What came back for one call. */
typedef struct {
  bool octo;              /* an OCTO frame (else Thrift-framed) */
  int64_t sequence_id;    /* ResponseInfo.sequenceId (OCTO) */
  int status;             /* ResponseInfo.status (OCTO); 0 for a Thrift REPLY, -1 for EXCEPTION */
  int32_t seqid;          /* the Thrift message's seqid */
  int msg_type;           /* 2 REPLY, 3 EXCEPTION */
  char result[4096];      /* REPLY: result field 0 (string); EXCEPTION: the message (field 1) */
  size_t result_len;
} answer;

/* Parses the Thrift message at r (REPLY with a string field 0, or a TApplicationException). */
static inline bool parse_message(rd *r, answer *a) {
  uint32_t v = (uint32_t)rd_n(r, 4);
  if ((v & 0xffff0000u) != 0x80010000u) return false;
  a->msg_type = (int)(v & 0xff);
  if (!rd_skip(r, T_STRING, 0)) return false;
  a->seqid = (int32_t)rd_n(r, 4);
  int16_t want = a->msg_type == 3 ? 1 : 0;
  for (;;) {
    uint8_t t = (uint8_t)rd_n(r, 1);
    if (r->bad) return false;
    if (t == T_STOP) break;
    int16_t id = (int16_t)rd_n(r, 2);
    if (id == want && t == T_STRING) {
      uint32_t n = (uint32_t)rd_n(r, 4);
      if (r->bad || n > r->len - r->at || n >= sizeof a->result) return false;
      memcpy(a->result, r->p + r->at, n);
      a->result[n] = 0;
      a->result_len = n;
      r->at += n;
    } else if (!rd_skip(r, t, 1)) {
      return false;
    }
  }
  return true;
}

/* Parses a whole answer frame read by read_frame. */
static inline bool parse_answer(const wbuf *f, answer *a) {
  memset(a, 0, sizeof *a);
  if (f->len >= 10 && f->data[0] == 0xAB && f->data[1] == 0xBA) {
    a->octo = true;
    if (f->data[3] & 0xE0) return false; /* the tests send no checksum or compression */
    size_t header_len = ((size_t)f->data[8] << 8) | f->data[9];
    rd h = {f->data + 10, header_len, 0, false};
    if (10 + header_len > f->len) return false;
    for (;;) {
      uint8_t t = (uint8_t)rd_n(&h, 1);
      if (h.bad) return false;
      if (t == T_STOP) break;
      int16_t id = (int16_t)rd_n(&h, 2);
      if (id == 3 && t == T_STRUCT) {
        for (;;) {
          uint8_t ft = (uint8_t)rd_n(&h, 1);
          if (h.bad) return false;
          if (ft == T_STOP) break;
          int16_t fid = (int16_t)rd_n(&h, 2);
          if (fid == 1 && ft == T_I64) a->sequence_id = (int64_t)rd_n(&h, 8);
          else if (fid == 2 && ft == T_BYTE) a->status = (int)rd_n(&h, 1);
          else if (!rd_skip(&h, ft, 1)) return false;
        }
      } else if (!rd_skip(&h, t, 0)) {
        return false;
      }
    }
    rd b = {f->data + 10 + header_len, f->len - 10 - header_len, 0, false};
    if (b.len == 0) return true; /* heartbeat */
    return parse_message(&b, a);
  }
  rd b = {f->data + 4, f->len - 4, 0, false};
  if (!parse_message(&b, a)) return false;
  a->status = a->msg_type == 3 ? -1 : 0;
  return true;
}

/* Sends `req` on fd and reads and parses one answer. */
static inline bool roundtrip(int fd, const wbuf *req, answer *a) {
  wbuf *in = malloc(sizeof *in);
  bool ok = in && send_all(fd, req->data, req->len) && read_frame(fd, in) && parse_answer(in, a);
  free(in);
  return ok;
}

#endif
