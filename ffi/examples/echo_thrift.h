/* echo_thrift.h: the Thrift side of `service Echo { string echo(1: string message) }` for C
 * tests and examples: read the argument from the args struct, write a REPLY message. What a
 * generated Thrift processor would do, by hand, over the octo_request_info of a call. */
#ifndef OCTO_ECHO_THRIFT_H
#define OCTO_ECHO_THRIFT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "octo.h"

/* Finds the string field 1 in a Thrift-binary args struct; false if malformed or absent.
 * Skips other fields of simple types. */
static inline bool echo_read_args(const uint8_t *p, size_t n, const uint8_t **msg, size_t *len) {
  size_t at = 0;
  bool found = false;
  while (at < n) {
    uint8_t type = p[at++];
    if (type == 0) return found;
    if (n - at < 2) return false;
    int16_t id = (int16_t)((p[at] << 8) | p[at + 1]);
    at += 2;
    size_t skip;
    switch (type) {
      case 2: case 3: skip = 1; break;
      case 6: skip = 2; break;
      case 8: skip = 4; break;
      case 4: case 10: skip = 8; break;
      case 11: {
        if (n - at < 4) return false;
        uint32_t l = ((uint32_t)p[at] << 24) | ((uint32_t)p[at + 1] << 16) |
                     ((uint32_t)p[at + 2] << 8) | p[at + 3];
        at += 4;
        if (l > n - at) return false;
        if (id == 1) {
          *msg = p + at;
          *len = l;
          found = true;
        }
        skip = l;
        break;
      }
      default: return false;
    }
    if (skip > n - at) return false;
    at += skip;
  }
  return false;
}

static inline size_t echo_put_i32(uint8_t *o, uint32_t v) {
  o[0] = (uint8_t)(v >> 24);
  o[1] = (uint8_t)(v >> 16);
  o[2] = (uint8_t)(v >> 8);
  o[3] = (uint8_t)v;
  return 4;
}

/* The size of the REPLY message echo_write_reply writes. */
static inline size_t echo_reply_size(size_t method_len, size_t len) {
  return 4 + 4 + method_len + 4 + 3 + 4 + len + 1;
}

/* Writes the REPLY message for `method` with the result string (field 0) into `o`, which
 * has room for echo_reply_size(); returns the bytes written. */
static inline size_t echo_write_reply(uint8_t *o, const char *method, size_t method_len,
                                      int32_t seqid, const uint8_t *msg, size_t len) {
  size_t at = 0;
  at += echo_put_i32(o + at, 0x80010002u);
  at += echo_put_i32(o + at, (uint32_t)method_len);
  memcpy(o + at, method, method_len);
  at += method_len;
  at += echo_put_i32(o + at, (uint32_t)seqid);
  o[at++] = 11; /* string */
  o[at++] = 0;
  o[at++] = 0; /* field 0: success */
  at += echo_put_i32(o + at, (uint32_t)len);
  memcpy(o + at, msg, len);
  at += len;
  o[at++] = 0; /* stop */
  return at;
}

/* Answers `info`'s call with `msg` echoed, written straight into an engine buffer and handed
 * over without a copy. */
static inline octo_status echo_answer(octo_responder *responder, const octo_request_info *info,
                                      const uint8_t *msg, size_t len) {
  octo_buf *buf = NULL;
  octo_status st = octo_buf_new(echo_reply_size(info->method.len, len), &buf);
  if (st != OCTO_STATUS_OK) return st;
  uint8_t *out;
  size_t cap;
  st = octo_buf_data_mut(buf, &out, &cap);
  if (st != OCTO_STATUS_OK) {
    octo_buf_free(buf);
    return st;
  }
  size_t n = echo_write_reply(out, info->method.data, info->method.len, info->thrift_seqid, msg, len);
  st = octo_buf_set_len(buf, n);
  if (st != OCTO_STATUS_OK) {
    octo_buf_free(buf);
    return st;
  }
  return octo_responder_ok_buf(responder, buf);
}

/* A REPLY to write with octo_responder_reply_with: straight into octo's output, no copy. */
typedef struct {
  const octo_request_info *info;
  const uint8_t *msg;
  size_t len;
} echo_reply;

static inline size_t echo_reply_write(void *context, uint8_t *out, size_t capacity) {
  const echo_reply *r = context;
  if (capacity < echo_reply_size(r->info->method.len, r->len)) return 0;
  return echo_write_reply(out, r->info->method.data, r->info->method.len, r->info->thrift_seqid, r->msg,
                          r->len);
}

#endif
