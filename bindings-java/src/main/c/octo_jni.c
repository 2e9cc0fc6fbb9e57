/*
 * octo_jni.c: the JNI glue between com.meituan.octo.Native and libocto's C ABI (include/octo.h).
 *
 * It calls only octo.h. Natives are registered in JNI_OnLoad (RegisterNatives), never looked up by
 * name. Threads that octo runs callbacks on (shard threads, or whichever thread frees a server) are
 * attached to the JVM once, as daemons, and detached when they exit (a pthread key destructor);
 * the JNIEnv is cached per thread. Every local reference made on a callback thread is deleted
 * before the callback returns (those threads never return to Java, so nothing else would free
 * them).
 *
 * Ownership across the boundary:
 * - A service's handler object is held by a global reference, in a service_ref given to octo as
 *   user_data; octo's finalizer deletes both when no call can reach the handler any more.
 * - A responder passed to Service.dispatch belongs to Java from then on (Java answers and frees it
 *   exactly once: see Responder.java).
 */
#include <jni.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "octo.h"

#define EXPORT __attribute__((visibility("default")))
#define JNI_VERSION JNI_VERSION_10

static JavaVM *g_vm;
static jclass g_native;           /* com.meituan.octo.Native */
static jclass g_octo_exception;   /* com.meituan.octo.OctoException */
static jmethodID g_exception_new; /* OctoException(int, String) */
static jmethodID g_utf8;          /* static String Native.utf8(byte[]) */
static jclass g_service;          /* com.meituan.octo.Service */
static jmethodID g_dispatch;      /* boolean Service.dispatch(long, long, ByteBuffer, long, int, int, int, int) */
static jmethodID g_dispatch_array; /* void Service.dispatchArray(long, byte[], int, int, int) */
static jclass g_byte_array;       /* byte[] */
static jclass g_pending_call;     /* com.meituan.octo.PendingCall */
static jmethodID g_call_done;     /* void PendingCall.done(int, byte[], String) */
static jclass g_shard_threads;    /* com.meituan.octo.ShardThreads */
static jmethodID g_shard_enter;   /* static void ShardThreads.enter() */
static pthread_key_t g_detach_key;
/* java.nio.Buffer's fields, to point a thread's reused body buffer at each call's bytes. */
static jfieldID g_buffer_address, g_buffer_capacity, g_buffer_limit;

/* ------------------------------------------------------------------------------------------ */
/* Threads and the JVM                                                                        */

static __thread JNIEnv *tls_env;
/* This thread's direct ByteBuffer that is re-pointed at each call's body (a global reference). */
static __thread jobject tls_body;
/* This thread's byte[] that inline services' request bodies are copied into (a global reference),
 * and its length. */
static __thread jbyteArray tls_input;
static __thread jsize tls_input_len;
/* A scratch copy of a Java byte[] request body (octo copies it again before the call returns). */
static __thread uint8_t *tls_scratch;
static __thread size_t tls_scratch_len;
static pthread_key_t g_scratch_key;

static void free_scratch(void *p) {
    free(p);
    tls_scratch = NULL;
    tls_scratch_len = 0;
}

static void detach_at_exit(void *unused) {
    (void)unused;
    if (tls_env != NULL && tls_body != NULL) {
        (*tls_env)->DeleteGlobalRef(tls_env, tls_body);
        tls_body = NULL;
    }
    if (tls_env != NULL && tls_input != NULL) {
        (*tls_env)->DeleteGlobalRef(tls_env, tls_input);
        tls_input = NULL;
        tls_input_len = 0;
    }
    if (g_vm != NULL) {
        (*g_vm)->DetachCurrentThread(g_vm);
    }
    tls_env = NULL;
}

/* The JNIEnv of this thread, attaching it (once, as a daemon named `name`) if it is not a Java
 * thread; a thread attached to run handlers or completions (`shard`) is marked as a shard thread
 * on the Java side (ShardThreads), where blocking calls are refused. NULL if the JVM refuses. */
static JNIEnv *thread_env(const char *name, int shard) {
    if (tls_env != NULL) {
        return tls_env;
    }
    JNIEnv *env = NULL;
    jint rc = (*g_vm)->GetEnv(g_vm, (void **)&env, JNI_VERSION);
    if (rc == JNI_OK) {
        tls_env = env; /* a Java thread (or attached by someone else): never detached by us */
        return env;
    }
    if (rc != JNI_EDETACHED) {
        return NULL;
    }
    JavaVMAttachArgs args = {JNI_VERSION, (char *)name, NULL};
    if ((*g_vm)->AttachCurrentThreadAsDaemon(g_vm, (void **)&env, &args) != JNI_OK) {
        return NULL;
    }
    pthread_setspecific(g_detach_key, (void *)1);
    tls_env = env;
    if (shard) {
        (*env)->CallStaticVoidMethod(env, g_shard_threads, g_shard_enter);
        if ((*env)->ExceptionCheck(env)) {
            (*env)->ExceptionClear(env);
        }
    }
    return env;
}

/* ------------------------------------------------------------------------------------------ */
/* Errors and strings                                                                         */

/* A Java String from `len` bytes of UTF-8 (octo's text is real UTF-8, not modified UTF-8). */
static jstring utf8_string(JNIEnv *env, const char *data, size_t len) {
    if (len > INT32_MAX) {
        len = INT32_MAX;
    }
    jbyteArray bytes = (*env)->NewByteArray(env, (jsize)len);
    if (bytes == NULL) {
        return NULL;
    }
    (*env)->SetByteArrayRegion(env, bytes, 0, (jsize)len, (const jbyte *)data);
    jstring s = (jstring)(*env)->CallStaticObjectMethod(env, g_native, g_utf8, bytes);
    (*env)->DeleteLocalRef(env, bytes);
    return s;
}

static jstring cstring(JNIEnv *env, const char *s) {
    return utf8_string(env, s == NULL ? "" : s, s == NULL ? 0 : strlen(s));
}

/* Throws OctoException(status, message); message NULL means octo_last_error(). */
static void throw_status(JNIEnv *env, int status, const char *message) {
    if ((*env)->ExceptionCheck(env)) {
        return;
    }
    jstring m = cstring(env, message != NULL ? message : octo_last_error());
    if (m == NULL) {
        return; /* an OutOfMemoryError is pending */
    }
    jobject ex = (*env)->NewObject(env, g_octo_exception, g_exception_new, (jint)status, m);
    if (ex != NULL) {
        (*env)->Throw(env, (jthrowable)ex);
        (*env)->DeleteLocalRef(env, ex);
    }
    (*env)->DeleteLocalRef(env, m);
}

/* True (and an OctoException thrown) if `st` is not OK. */
static int failed(JNIEnv *env, octo_status st) {
    if (st == OCTO_STATUS_OK) {
        return 0;
    }
    throw_status(env, (int)st, NULL);
    return 1;
}

/* A NUL-terminated UTF-8 copy of a Java String (malloc'd; free it), or NULL with an exception. */
static char *string_utf8(JNIEnv *env, jstring s, const char *what) {
    if (s == NULL) {
        char m[96];
        snprintf(m, sizeof m, "%s is null", what);
        throw_status(env, OCTO_STATUS_INVALID_ARGUMENT, m);
        return NULL;
    }
    /* GetStringUTFChars gives modified UTF-8; real UTF-8 needs String.getBytes, done in Java for
     * hot paths. Names and addresses here are ASCII in practice; supplementary characters and NUL
     * are refused rather than sent wrong. */
    const char *chars = (*env)->GetStringUTFChars(env, s, NULL);
    if (chars == NULL) {
        return NULL;
    }
    size_t n = strlen(chars);
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)chars[i] == 0xed && i + 1 < n && ((unsigned char)chars[i + 1] & 0xf0) == 0xa0) {
            (*env)->ReleaseStringUTFChars(env, s, chars);
            char m[96];
            snprintf(m, sizeof m, "%s has characters outside the Basic Multilingual Plane", what);
            throw_status(env, OCTO_STATUS_INVALID_ARGUMENT, m);
            return NULL;
        }
    }
    char *copy = malloc(n + 1);
    if (copy != NULL) {
        memcpy(copy, chars, n + 1);
    }
    (*env)->ReleaseStringUTFChars(env, s, chars);
    if (copy == NULL) {
        throw_status(env, OCTO_STATUS_INVALID_ARGUMENT, "out of memory");
    }
    return copy;
}

static void *ptr(jlong address) {
    return (void *)(uintptr_t)address;
}

static jlong addr(const void *p) {
    return (jlong)(uintptr_t)p;
}

/* ------------------------------------------------------------------------------------------ */
/* The library                                                                                */

static jstring n_version(JNIEnv *env, jclass c) {
    return cstring(env, octo_version());
}

static jstring n_last_error(JNIEnv *env, jclass c) {
    return cstring(env, octo_last_error());
}

static jstring n_status_name(JNIEnv *env, jclass c, jint code) {
    return cstring(env, octo_status_name((uint32_t)code));
}

/* ------------------------------------------------------------------------------------------ */
/* Engines                                                                                    */

static jlong n_engine_new(JNIEnv *env, jclass c, jint shards, jboolean pin, jintArray cpus, jint ring_entries,
                          jint max_frame_size, jint max_connections, jint max_in_flight, jint idle_timeout_ms,
                          jint high_water, jint low_water) {
    octo_engine_config config;
    if (failed(env, octo_engine_config_default(&config))) {
        return 0;
    }
    if (shards >= 0) config.shards = (uint32_t)shards;
    config.pin_shards = pin == JNI_TRUE;
    if (ring_entries >= 0) config.ring_entries = (uint32_t)ring_entries;
    if (max_frame_size >= 0) config.max_frame_size = (uint32_t)max_frame_size;
    if (max_connections >= 0) config.max_connections_per_shard = (uint32_t)max_connections;
    if (max_in_flight >= 0) config.max_in_flight_per_connection = (uint32_t)max_in_flight;
    if (idle_timeout_ms >= 0) config.idle_timeout_ms = (uint32_t)idle_timeout_ms;
    if (high_water >= 0) config.write_high_water = (uint32_t)high_water;
    if (low_water >= 0) config.write_low_water = (uint32_t)low_water;

    uint32_t *cpu_ids = NULL;
    if (cpus != NULL) {
        jsize n = (*env)->GetArrayLength(env, cpus);
        cpu_ids = calloc(n > 0 ? (size_t)n : 1, sizeof *cpu_ids);
        if (cpu_ids == NULL) {
            throw_status(env, OCTO_STATUS_INVALID_ARGUMENT, "out of memory");
            return 0;
        }
        jint *ids = (*env)->GetIntArrayElements(env, cpus, NULL);
        if (ids == NULL) {
            free(cpu_ids);
            return 0;
        }
        for (jsize i = 0; i < n; i++) {
            cpu_ids[i] = (uint32_t)ids[i];
        }
        (*env)->ReleaseIntArrayElements(env, cpus, ids, JNI_ABORT);
        config.cpus = cpu_ids;
        config.cpus_len = (size_t)n;
    }
    octo_engine *engine = NULL;
    octo_status st = octo_engine_new(&config, &engine);
    free(cpu_ids);
    return failed(env, st) ? 0 : addr(engine);
}

static jint n_engine_shard_count(JNIEnv *env, jclass c, jlong engine) {
    return (jint)octo_engine_shard_count(ptr(engine));
}

static void n_engine_free(JNIEnv *env, jclass c, jlong engine) {
    octo_engine_free(ptr(engine));
}

/* ------------------------------------------------------------------------------------------ */
/* Servers and the calls they route                                                           */

/* An answer given by the glue itself when Java cannot take the call. */
static void answer_unhandled(octo_responder *responder, const char *why) {
    octo_responder_error(responder, OCTO_STATUS_RPC_EXCEPTION, why);
    octo_responder_free(responder);
}

/* A direct ByteBuffer over `len` bytes at `data`; `*local` says whether it is a local reference
 * the caller must delete (the reused buffer is this thread's global reference).
 *
 * NewDirectByteBuffer costs a Java constructor call per call. Instead each attached thread keeps
 * one direct buffer and points it at the call's bytes by setting java.nio.Buffer's fields
 * (address, capacity, limit), which JNI may do; Service.dispatch takes a read-only view of it at
 * once and never moves it, so the re-pointing never changes what a handler sees. Falls back
 * to NewDirectByteBuffer if the JDK lacks those fields. */
static jobject body_buffer(JNIEnv *env, const uint8_t *data, size_t len, int *local) {
    static uint8_t empty;
    void *at = data != NULL ? (void *)data : (void *)&empty;
    *local = 0;
    if (g_buffer_address == NULL || len > INT32_MAX) {
        *local = 1;
        return (*env)->NewDirectByteBuffer(env, at, (jlong)len);
    }
    if (tls_body == NULL) {
        jobject b = (*env)->NewDirectByteBuffer(env, &empty, 0);
        if (b == NULL) {
            return NULL;
        }
        tls_body = (*env)->NewGlobalRef(env, b);
        (*env)->DeleteLocalRef(env, b);
        if (tls_body == NULL) {
            return NULL;
        }
    }
    /* position stays 0 and mark -1 from creation: Java only ever takes views of this buffer. */
    (*env)->SetLongField(env, tls_body, g_buffer_address, addr(at));
    (*env)->SetIntField(env, tls_body, g_buffer_capacity, (jint)len);
    (*env)->SetIntField(env, tls_body, g_buffer_limit, (jint)len);
    return tls_body;
}

/* What octo holds as a service's user_data: the Service (a global reference) and whether it answers
 * inline from a byte[] (Service.dispatchArray) rather than from a direct buffer (Service.dispatch). */
typedef struct {
    jobject service;
    int inline_array;
} service_ref;

/* Bodies up to this size go to inline services in this thread's reused byte[]; larger ones take
 * the direct buffer (no array of that size is kept per thread). */
#define INLINE_ARRAY_MAX (1 << 20)

/* This thread's input array with room for `len` bytes (grown once in a while), or NULL with an
 * exception pending. */
static jbyteArray input_array(JNIEnv *env, jsize len) {
    if (tls_input != NULL && len <= tls_input_len) {
        return tls_input;
    }
    jsize want = len < 4096 ? 4096 : len;
    if (tls_input_len > 0 && want < tls_input_len * 2 && (size_t)tls_input_len * 2 <= INLINE_ARRAY_MAX) {
        want = tls_input_len * 2;
    }
    jbyteArray local = (*env)->NewByteArray(env, want);
    if (local == NULL) {
        return NULL;
    }
    jbyteArray global = (jbyteArray)(*env)->NewGlobalRef(env, local);
    (*env)->DeleteLocalRef(env, local);
    if (global == NULL) {
        return NULL;
    }
    if (tls_input != NULL) {
        (*env)->DeleteGlobalRef(env, tls_input);
    }
    tls_input = global;
    tls_input_len = want;
    return global;
}

/* An inline service's call: the body copied into this thread's byte[], one upcall
 * (Service.dispatchArray) with five arguments and no buffer to re-point. */
static void on_call_array(JNIEnv *env, jobject service, const octo_request_info *info, octo_responder *responder) {
    jsize len = (jsize)info->body_len;
    jbyteArray input = input_array(env, len);
    if (input == NULL) {
        (*env)->ExceptionClear(env);
        answer_unhandled(responder, "the JVM could not hold the request body");
        return;
    }
    if (len > 0) {
        (*env)->SetByteArrayRegion(env, input, 0, len, (const jbyte *)info->body);
    }
    jint flags = (info->one_way ? 1 : 0) | (info->framing == OCTO_FRAMING_THRIFT ? 2 : 0) | (jint)(info->shard << 8);
    jvalue args[5];
    args[0].j = addr(responder);
    args[1].l = input;
    args[2].i = len;
    args[3].i = (jint)info->thrift_seqid;
    args[4].i = flags;
    (*env)->CallVoidMethodA(env, service, g_dispatch_array, args);
    if ((*env)->ExceptionCheck(env)) {
        /* As in on_call: an Error on the way; the responder may be Java's by now. */
        (*env)->ExceptionClear(env);
    }
}

/* octo_handler_fn: one call, on a shard thread. One upcall into Java (Service.dispatch) with
 * everything it needs; the body crosses as a direct ByteBuffer over octo's memory (or, for an
 * inline service, in this thread's byte[]: on_call_array). */
static void on_call(void *user_data, const octo_request *request, octo_responder *responder) {
    const service_ref *ref = (const service_ref *)user_data;
    octo_request_info info;
    if (octo_request_get_info(request, &info) != OCTO_STATUS_OK) {
        answer_unhandled(responder, octo_last_error());
        return;
    }
    JNIEnv *env = tls_env;
    if (env == NULL) {
        char name[32];
        snprintf(name, sizeof name, "octo-shard-%u", info.shard);
        env = thread_env(name, 1);
        if (env == NULL) {
            answer_unhandled(responder, "the JVM could not attach this shard thread");
            return;
        }
    }
    if (ref->inline_array && info.body_len <= INLINE_ARRAY_MAX) {
        on_call_array(env, ref->service, &info, responder);
        return;
    }
    int local = 0;
    jobject body = body_buffer(env, info.body, info.body_len, &local);
    if (body == NULL) {
        (*env)->ExceptionClear(env);
        answer_unhandled(responder, "the JVM could not wrap the request body");
        return;
    }
    jint flags = (info.one_way ? 1 : 0) | (info.framing == OCTO_FRAMING_THRIFT ? 2 : 0) | (jint)(info.shard << 8);
    jint args_offset = info.args != NULL && info.body != NULL ? (jint)(info.args - info.body) : 0;
    jvalue args[8];
    args[0].j = addr(request);
    args[1].j = addr(responder);
    args[2].l = body;
    args[3].j = (jlong)info.sequence_id;
    args[4].i = (jint)info.thrift_seqid;
    args[5].i = (jint)info.timeout_ms;
    args[6].i = args_offset;
    args[7].i = flags;
    (*env)->CallBooleanMethodA(env, ref->service, g_dispatch, args);
    if ((*env)->ExceptionCheck(env)) {
        /* Service.dispatch catches every Throwable once it owns the responder; an exception here
         * is an Error thrown on the way (e.g. out of memory). The responder may be Java's by now,
         * so it is not freed here: at worst the call stays unanswered until its connection closes. */
        (*env)->ExceptionClear(env);
    }
    if (local) {
        (*env)->DeleteLocalRef(env, body);
    }
}

/* octo_finalizer_fn: the service can no longer be called; drop the handler's global reference. */
static void on_service_finalized(void *user_data) {
    service_ref *ref = (service_ref *)user_data;
    JNIEnv *env = thread_env("octo-finalizer", 0);
    if (env != NULL) {
        (*env)->DeleteGlobalRef(env, ref->service);
    }
    free(ref);
}

static jlong n_server_new(JNIEnv *env, jclass c, jlong engine, jstring address) {
    char *a = string_utf8(env, address, "address");
    if (a == NULL) {
        return 0;
    }
    octo_server *server = NULL;
    octo_status st = octo_server_new(ptr(engine), a, &server);
    free(a);
    return failed(env, st) ? 0 : addr(server);
}

static void n_server_add_service(JNIEnv *env, jclass c, jlong server, jstring name, jobject service,
                                 jboolean inline_array) {
    if (service == NULL) {
        throw_status(env, OCTO_STATUS_INVALID_ARGUMENT, "service is null");
        return;
    }
    char *n = string_utf8(env, name, "name");
    if (n == NULL) {
        return;
    }
    service_ref *ref = malloc(sizeof *ref);
    if (ref == NULL) {
        free(n);
        throw_status(env, OCTO_STATUS_INVALID_ARGUMENT, "out of memory");
        return;
    }
    ref->inline_array = inline_array == JNI_TRUE;
    ref->service = (*env)->NewGlobalRef(env, service);
    if (ref->service == NULL) {
        free(ref);
        free(n);
        return;
    }
    octo_status st = octo_server_add_service(ptr(server), n, on_call, ref, on_service_finalized);
    free(n);
    if (st != OCTO_STATUS_OK) {
        (*env)->DeleteGlobalRef(env, ref->service); /* octo keeps nothing on failure */
        free(ref);
        failed(env, st);
    }
}

static void n_server_set_default_service(JNIEnv *env, jclass c, jlong server, jstring name) {
    char *n = string_utf8(env, name, "name");
    if (n == NULL) {
        return;
    }
    octo_status st = octo_server_set_default_service(ptr(server), n);
    free(n);
    failed(env, st);
}

static void n_server_start(JNIEnv *env, jclass c, jlong server) {
    failed(env, octo_server_start(ptr(server)));
}

static jint n_server_port(JNIEnv *env, jclass c, jlong server) {
    uint16_t port = 0;
    return failed(env, octo_server_port(ptr(server), &port)) ? 0 : (jint)port;
}

static jlongArray n_server_stats(JNIEnv *env, jclass c, jlong server) {
    octo_server_stats s;
    if (failed(env, octo_server_get_stats(ptr(server), &s))) {
        return NULL;
    }
    jlong v[17] = {(jlong)s.connections_accepted, (jlong)s.connections_refused, (jlong)s.connections_open,
                   (jlong)s.requests, (jlong)s.expired, (jlong)s.heartbeats, (jlong)s.closed_on_bad_input};
    for (int i = 0; i < 10; i++) {
        v[7 + i] = (jlong)s.answers_by_status[i];
    }
    jlongArray out = (*env)->NewLongArray(env, 17);
    if (out != NULL) {
        (*env)->SetLongArrayRegion(env, out, 0, 17, v);
    }
    return out;
}

static void n_server_shutdown(JNIEnv *env, jclass c, jlong server, jint deadline_ms) {
    failed(env, octo_server_shutdown(ptr(server), deadline_ms < 0 ? 0u : (uint32_t)deadline_ms));
}

static void n_server_free(JNIEnv *env, jclass c, jlong server) {
    octo_server_free(ptr(server));
}

/* ------------------------------------------------------------------------------------------ */
/* The call a handler is running                                                              */

/* A byte[] of the text, or NULL (no exception) when it is absent. */
static jbyteArray str_bytes(JNIEnv *env, octo_str s) {
    if (s.data == NULL) {
        return NULL;
    }
    jsize n = s.len > INT32_MAX ? INT32_MAX : (jsize)s.len;
    jbyteArray b = (*env)->NewByteArray(env, n);
    if (b != NULL) {
        (*env)->SetByteArrayRegion(env, b, 0, n, (const jbyte *)s.data);
    }
    return b;
}

/* Sets element i of `array` to `value` (may be NULL) and drops the local reference. */
static int set_element(JNIEnv *env, jobjectArray array, jsize i, jobject value) {
    (*env)->SetObjectArrayElement(env, array, i, value);
    if (value != NULL) {
        (*env)->DeleteLocalRef(env, value);
    }
    return !(*env)->ExceptionCheck(env);
}

static jobjectArray n_request_trace_info(JNIEnv *env, jclass c, jlong request) {
    octo_trace_info t;
    if (failed(env, octo_request_trace_info(ptr(request), &t)) || !t.present) {
        return NULL;
    }
    jobjectArray out = (*env)->NewObjectArray(env, 9, g_byte_array, NULL);
    if (out == NULL) {
        return NULL;
    }
    octo_str strings[6] = {t.client_appkey, t.trace_id, t.span_id, t.root_message_id, t.current_message_id,
                           t.server_message_id};
    for (jsize i = 0; i < 6; i++) {
        jbyteArray b = str_bytes(env, strings[i]);
        if ((*env)->ExceptionCheck(env) || !set_element(env, out, i, b)) {
            return NULL;
        }
    }
    int8_t tri[2] = {t.debug, t.sample};
    for (jsize i = 0; i < 2; i++) {
        jbyteArray b = (*env)->NewByteArray(env, 1);
        if (b == NULL) {
            return NULL;
        }
        (*env)->SetByteArrayRegion(env, b, 0, 1, (const jbyte *)&tri[i]);
        if (!set_element(env, out, 6 + i, b)) {
            return NULL;
        }
    }
    jbyteArray ip = str_bytes(env, t.client_ip);
    if ((*env)->ExceptionCheck(env) || !set_element(env, out, 8, ip)) {
        return NULL;
    }
    return out;
}

static jobjectArray n_request_context(JNIEnv *env, jclass c, jlong request, jint which) {
    size_t len = 0;
    if (failed(env, octo_request_context_len(ptr(request), (uint32_t)which, &len))) {
        return NULL;
    }
    if (len > (size_t)(INT32_MAX / 2)) {
        len = INT32_MAX / 2;
    }
    jobjectArray out = (*env)->NewObjectArray(env, (jsize)(2 * len), g_byte_array, NULL);
    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        octo_str k, v;
        if (failed(env, octo_request_context_at(ptr(request), (uint32_t)which, i, &k, &v))) {
            return NULL;
        }
        jbyteArray kb = str_bytes(env, k);
        if ((*env)->ExceptionCheck(env) || !set_element(env, out, (jsize)(2 * i), kb)) {
            return NULL;
        }
        jbyteArray vb = str_bytes(env, v);
        if ((*env)->ExceptionCheck(env) || !set_element(env, out, (jsize)(2 * i + 1), vb)) {
            return NULL;
        }
    }
    return out;
}

static jlong n_request_body_retain(JNIEnv *env, jclass c, jlong request) {
    octo_buf *buf = NULL;
    return failed(env, octo_request_body_retain(ptr(request), &buf)) ? 0 : addr(buf);
}

/* ------------------------------------------------------------------------------------------ */
/* Responders: answer, then free, in one crossing                                             */

static jint n_responder_reply(JNIEnv *env, jclass c, jlong responder, jint status, jobject body, jint position,
                              jint length) {
    octo_responder *r = ptr(responder);
    uint8_t *data = body == NULL ? NULL : (*env)->GetDirectBufferAddress(env, body);
    jlong capacity = body == NULL ? 0 : (*env)->GetDirectBufferCapacity(env, body);
    octo_status st;
    if (position < 0 || length < 0 || (jlong)position + (jlong)length > capacity || (data == NULL && length > 0)) {
        octo_responder_error(r, OCTO_STATUS_RUNTIME_EXCEPTION, "the reply body was not a valid direct buffer");
        st = OCTO_STATUS_INVALID_ARGUMENT;
    } else {
        st = octo_responder_reply(r, (uint32_t)status, data == NULL ? NULL : data + position, (size_t)length);
    }
    octo_responder_free(r);
    return (jint)st;
}

static jint n_responder_reply_array(JNIEnv *env, jclass c, jlong responder, jint status, jbyteArray body,
                                    jint offset, jint length) {
    octo_responder *r = ptr(responder);
    jsize n = body == NULL ? 0 : (*env)->GetArrayLength(env, body);
    octo_status st;
    if (offset < 0 || length < 0 || (jlong)offset + (jlong)length > (jlong)n) {
        octo_responder_error(r, OCTO_STATUS_RUNTIME_EXCEPTION, "the reply body was out of its array's bounds");
        st = OCTO_STATUS_INVALID_ARGUMENT;
    } else if (length == 0) {
        st = octo_responder_reply(r, (uint32_t)status, NULL, 0);
    } else {
        /* Critical: no copy of the array; octo copies the bytes out before this returns. */
        uint8_t *data = (*env)->GetPrimitiveArrayCritical(env, body, NULL);
        if (data == NULL) {
            octo_responder_free(r);
            return OCTO_STATUS_RPC_EXCEPTION;
        }
        st = octo_responder_reply(r, (uint32_t)status, data + offset, (size_t)length);
        (*env)->ReleasePrimitiveArrayCritical(env, body, data, JNI_ABORT);
    }
    octo_responder_free(r);
    return (jint)st;
}

/* The context of write_array: a Java array region to copy into the connection's output. */
typedef struct {
    JNIEnv *env;
    jbyteArray array;
    jint offset;
} array_region;

/* octo_write_fn: copies the region straight from the Java array into octo's output (one copy, no
 * critical region). An out-of-bounds region copies nothing and reports more than `capacity`, so
 * octo sends no uninitialized bytes (it answers with an empty body); the exception stays pending
 * for the caller. */
static size_t write_array(void *context, uint8_t *out, size_t capacity) {
    array_region *r = context;
    (*r->env)->GetByteArrayRegion(r->env, r->array, r->offset, (jsize)capacity, (jbyte *)out);
    return (*r->env)->ExceptionCheck(r->env) ? capacity + 1 : capacity;
}

/* The inline path's answer: the region of `body` (bounds checked by the caller, InlineCall.reply;
 * a wrong region is still caught by write_array) written straight into the connection's output,
 * then the responder freed. */
static jint n_responder_reply_inline(JNIEnv *env, jclass c, jlong responder, jint status, jbyteArray body,
                                     jint offset, jint length) {
    octo_responder *r = ptr(responder);
    octo_status st;
    if (body == NULL || offset < 0 || length < 0) {
        octo_responder_error(r, OCTO_STATUS_RUNTIME_EXCEPTION, "the reply body was out of its array's bounds");
        st = OCTO_STATUS_INVALID_ARGUMENT;
    } else {
        array_region region = {env, body, offset};
        st = octo_responder_reply_with(r, (uint32_t)status, (size_t)length, write_array, &region);
    }
    octo_responder_free(r);
    return (jint)st;
}

static jint n_responder_error(JNIEnv *env, jclass c, jlong responder, jint status, jstring message) {
    octo_responder *r = ptr(responder);
    char *m = message == NULL ? NULL : string_utf8(env, message, "message");
    if (message != NULL && m == NULL) {
        (*env)->ExceptionClear(env); /* answer anyway, without the text */
    }
    octo_status st = octo_responder_error(r, (uint32_t)status, m);
    free(m);
    octo_responder_free(r);
    return (jint)st;
}

static void n_responder_free(JNIEnv *env, jclass c, jlong responder) {
    octo_responder_free(ptr(responder));
}

/* ------------------------------------------------------------------------------------------ */
/* Clients                                                                                    */

static jlong n_client_new(JNIEnv *env, jclass c, jlong engine, jstring service, jobjectArray endpoints,
                          jint framing, jint timeout_ms, jint connect_timeout_ms, jstring appkey) {
    octo_client_config config;
    if (failed(env, octo_client_config_default(&config))) {
        return 0;
    }
    jsize n = endpoints == NULL ? 0 : (*env)->GetArrayLength(env, endpoints);
    if (n <= 0) {
        throw_status(env, OCTO_STATUS_INVALID_ARGUMENT, "a client needs at least one endpoint");
        return 0;
    }
    char *service_name = string_utf8(env, service, "serviceName");
    char *app = (service_name != NULL && appkey != NULL) ? string_utf8(env, appkey, "appkey") : NULL;
    octo_endpoint *eps = calloc((size_t)n, sizeof *eps);
    char **addresses = calloc((size_t)n, sizeof *addresses);
    octo_client *client = NULL;
    if (service_name == NULL || (appkey != NULL && app == NULL) || eps == NULL || addresses == NULL) {
        if (!(*env)->ExceptionCheck(env)) {
            throw_status(env, OCTO_STATUS_INVALID_ARGUMENT, "out of memory");
        }
        goto done;
    }
    for (jsize i = 0; i < n; i++) {
        jstring a = (jstring)(*env)->GetObjectArrayElement(env, endpoints, i);
        addresses[i] = string_utf8(env, a, "endpoint");
        if (a != NULL) {
            (*env)->DeleteLocalRef(env, a);
        }
        if (addresses[i] == NULL) {
            goto done;
        }
        eps[i].address = addresses[i];
        eps[i].framing = (uint32_t)framing;
    }
    config.service_name = service_name;
    config.appkey = (app != NULL && app[0] != '\0') ? app : NULL;
    if (timeout_ms > 0) config.timeout_ms = (uint32_t)timeout_ms;
    if (connect_timeout_ms > 0) config.connect_timeout_ms = (uint32_t)connect_timeout_ms;
    failed(env, octo_client_new(ptr(engine), &config, eps, (size_t)n, &client));
done:
    if (addresses != NULL) {
        for (jsize i = 0; i < n; i++) {
            free(addresses[i]);
        }
    }
    free(addresses);
    free(eps);
    free(app);
    free(service_name);
    return addr(client);
}

/* octo_call_fn: a call's outcome, on a shard thread (or on the calling thread when the engine has
 * stopped). The reply is copied into a byte[] (the Java heap then owns it) and freed at once;
 * PendingCall.done completes the caller's future. */
static void on_call_done(void *user_data, octo_status status, octo_buf *reply, const char *message) {
    JNIEnv *env = thread_env("octo-shard", 1);
    if (env == NULL) {
        octo_buf_free(reply); /* cannot happen short of a broken JVM; the future stays pending */
        return;
    }
    jobject pending = (jobject)user_data;
    jbyteArray body = NULL;
    if (reply != NULL) {
        const uint8_t *data = NULL;
        size_t len = 0;
        if (octo_buf_data(reply, &data, &len) == OCTO_STATUS_OK && len <= INT32_MAX) {
            body = (*env)->NewByteArray(env, (jsize)len);
            if (body != NULL && len > 0) {
                (*env)->SetByteArrayRegion(env, body, 0, (jsize)len, (const jbyte *)data);
            }
        }
        octo_buf_free(reply);
    }
    jstring text = NULL;
    if (status != OCTO_STATUS_OK && !(*env)->ExceptionCheck(env)) {
        text = cstring(env, message);
    }
    if ((*env)->ExceptionCheck(env)) {
        (*env)->ExceptionClear(env); /* out of memory: complete without the body or text */
    }
    (*env)->CallVoidMethod(env, pending, g_call_done, (jint)status, body, text);
    if ((*env)->ExceptionCheck(env)) {
        (*env)->ExceptionClear(env);
    }
    if (body != NULL) {
        (*env)->DeleteLocalRef(env, body);
    }
    if (text != NULL) {
        (*env)->DeleteLocalRef(env, text);
    }
    (*env)->DeleteGlobalRef(env, pending);
}

/* The request bytes of a direct buffer, or NULL with *status set. */
static const uint8_t *direct_bytes(JNIEnv *env, jobject body, jint position, jint length, octo_status *status) {
    uint8_t *data = body == NULL ? NULL : (*env)->GetDirectBufferAddress(env, body);
    jlong capacity = body == NULL ? -1 : (*env)->GetDirectBufferCapacity(env, body);
    if (data == NULL || position < 0 || length < 0 || (jlong)position + (jlong)length > capacity) {
        *status = OCTO_STATUS_INVALID_ARGUMENT;
        return NULL;
    }
    return data + position;
}

/* The request bytes of a byte[] region, copied into this thread's scratch buffer (not a critical
 * region: octo may run the callback, which calls into Java, before the call returns). */
static const uint8_t *array_bytes(JNIEnv *env, jbyteArray body, jint offset, jint length, octo_status *status) {
    jsize n = body == NULL ? -1 : (*env)->GetArrayLength(env, body);
    if (offset < 0 || length < 0 || (jlong)offset + (jlong)length > (jlong)n) {
        *status = OCTO_STATUS_INVALID_ARGUMENT;
        return NULL;
    }
    if ((size_t)length > tls_scratch_len || tls_scratch == NULL) {
        size_t want = (size_t)length < 4096 ? 4096 : (size_t)length;
        uint8_t *bigger = realloc(tls_scratch, want);
        if (bigger == NULL) {
            *status = OCTO_STATUS_INVALID_ARGUMENT;
            return NULL;
        }
        tls_scratch = bigger;
        tls_scratch_len = want;
        pthread_setspecific(g_scratch_key, tls_scratch);
    }
    (*env)->GetByteArrayRegion(env, body, offset, length, (jbyte *)tls_scratch);
    return tls_scratch;
}

static jint start_call(JNIEnv *env, jlong client, const uint8_t *data, jint length, jint timeout_ms,
                       jobject pending) {
    if (pending == NULL) {
        return OCTO_STATUS_INVALID_ARGUMENT;
    }
    jobject ref = (*env)->NewGlobalRef(env, pending);
    if (ref == NULL) {
        return OCTO_STATUS_BUSY;
    }
    octo_status st = octo_client_call(ptr(client), data, (size_t)length, timeout_ms < 0 ? 0u : (uint32_t)timeout_ms,
                                      on_call_done, ref);
    if (st != OCTO_STATUS_OK) {
        (*env)->DeleteGlobalRef(env, ref); /* the callback will not run */
    }
    return (jint)st;
}

static jint n_client_call(JNIEnv *env, jclass c, jlong client, jobject body, jint position, jint length,
                          jint timeout_ms, jobject pending) {
    octo_status st = OCTO_STATUS_OK;
    const uint8_t *data = direct_bytes(env, body, position, length, &st);
    return data == NULL ? (jint)st : start_call(env, client, data, length, timeout_ms, pending);
}

static jint n_client_call_array(JNIEnv *env, jclass c, jlong client, jbyteArray body, jint offset, jint length,
                                jint timeout_ms, jobject pending) {
    octo_status st = OCTO_STATUS_OK;
    const uint8_t *data = array_bytes(env, body, offset, length, &st);
    return data == NULL ? (jint)st : start_call(env, client, data, length, timeout_ms, pending);
}

static jint n_client_one_way(JNIEnv *env, jclass c, jlong client, jobject body, jint position, jint length) {
    octo_status st = OCTO_STATUS_OK;
    const uint8_t *data = direct_bytes(env, body, position, length, &st);
    return data == NULL ? (jint)st : (jint)octo_client_send_one_way(ptr(client), data, (size_t)length);
}

static jint n_client_one_way_array(JNIEnv *env, jclass c, jlong client, jbyteArray body, jint offset,
                                   jint length) {
    octo_status st = OCTO_STATUS_OK;
    const uint8_t *data = array_bytes(env, body, offset, length, &st);
    return data == NULL ? (jint)st : (jint)octo_client_send_one_way(ptr(client), data, (size_t)length);
}

static void n_client_free(JNIEnv *env, jclass c, jlong client) {
    octo_client_free(ptr(client));
}

/* ------------------------------------------------------------------------------------------ */
/* Buffers                                                                                    */

static jobject n_buf_view(JNIEnv *env, jclass c, jlong buf) {
    const uint8_t *data = NULL;
    size_t len = 0;
    if (failed(env, octo_buf_data(ptr(buf), &data, &len)) || len == 0) {
        return NULL;
    }
    return (*env)->NewDirectByteBuffer(env, (void *)data, (jlong)len);
}

static void n_buf_free(JNIEnv *env, jclass c, jlong buf) {
    octo_buf_free(ptr(buf));
}

/* ------------------------------------------------------------------------------------------ */
/* Registration                                                                               */

#define NATIVE(name, sig, fn) {(char *)(name), (char *)(sig), (void *)(fn)}

static const JNINativeMethod k_natives[] = {
    NATIVE("version", "()Ljava/lang/String;", n_version),
    NATIVE("lastError", "()Ljava/lang/String;", n_last_error),
    NATIVE("statusName", "(I)Ljava/lang/String;", n_status_name),
    NATIVE("engineNew", "(IZ[IIIIIIII)J", n_engine_new),
    NATIVE("engineShardCount", "(J)I", n_engine_shard_count),
    NATIVE("engineFree", "(J)V", n_engine_free),
    NATIVE("serverNew", "(JLjava/lang/String;)J", n_server_new),
    NATIVE("serverAddService", "(JLjava/lang/String;Lcom/meituan/octo/Service;Z)V", n_server_add_service),
    NATIVE("serverSetDefaultService", "(JLjava/lang/String;)V", n_server_set_default_service),
    NATIVE("serverStart", "(J)V", n_server_start),
    NATIVE("serverPort", "(J)I", n_server_port),
    NATIVE("serverStats", "(J)[J", n_server_stats),
    NATIVE("serverShutdown", "(JI)V", n_server_shutdown),
    NATIVE("serverFree", "(J)V", n_server_free),
    NATIVE("requestTraceInfoRaw", "(J)[[B", n_request_trace_info),
    NATIVE("requestContextRaw", "(JI)[[B", n_request_context),
    NATIVE("requestBodyRetain", "(J)J", n_request_body_retain),
    NATIVE("responderReply", "(JILjava/nio/ByteBuffer;II)I", n_responder_reply),
    NATIVE("responderReplyArray", "(JI[BII)I", n_responder_reply_array),
    NATIVE("responderReplyInline", "(JI[BII)I", n_responder_reply_inline),
    NATIVE("responderError", "(JILjava/lang/String;)I", n_responder_error),
    NATIVE("responderFree", "(J)V", n_responder_free),
    NATIVE("clientNew", "(JLjava/lang/String;[Ljava/lang/String;IIILjava/lang/String;)J", n_client_new),
    NATIVE("clientCall", "(JLjava/nio/ByteBuffer;IIILcom/meituan/octo/PendingCall;)I", n_client_call),
    NATIVE("clientCallArray", "(J[BIIILcom/meituan/octo/PendingCall;)I", n_client_call_array),
    NATIVE("clientOneWay", "(JLjava/nio/ByteBuffer;II)I", n_client_one_way),
    NATIVE("clientOneWayArray", "(J[BII)I", n_client_one_way_array),
    NATIVE("clientFree", "(J)V", n_client_free),
    NATIVE("bufView", "(J)Ljava/nio/ByteBuffer;", n_buf_view),
    NATIVE("bufFree", "(J)V", n_buf_free),
};

static jclass global_class(JNIEnv *env, const char *name) {
    jclass local = (*env)->FindClass(env, name);
    if (local == NULL) {
        return NULL;
    }
    jclass global = (jclass)(*env)->NewGlobalRef(env, local);
    (*env)->DeleteLocalRef(env, local);
    return global;
}

EXPORT jint JNI_OnLoad(JavaVM *vm, void *reserved) {
    JNIEnv *env = NULL;
    if ((*vm)->GetEnv(vm, (void **)&env, JNI_VERSION) != JNI_OK) {
        return JNI_ERR;
    }
    g_vm = vm;
    if (pthread_key_create(&g_detach_key, detach_at_exit) != 0 || pthread_key_create(&g_scratch_key, free_scratch) != 0) {
        return JNI_ERR;
    }
    if (strcmp(octo_version(), OCTO_VERSION_STRING) != 0) {
        fprintf(stderr, "octo-jni: libocto.so is version %s but the glue was built for %s\n", octo_version(),
                OCTO_VERSION_STRING);
        return JNI_ERR;
    }
    g_native = global_class(env, "com/meituan/octo/Native");
    g_octo_exception = global_class(env, "com/meituan/octo/OctoException");
    g_service = global_class(env, "com/meituan/octo/Service");
    g_byte_array = global_class(env, "[B");
    g_pending_call = global_class(env, "com/meituan/octo/PendingCall");
    g_shard_threads = global_class(env, "com/meituan/octo/ShardThreads");
    if (g_native == NULL || g_octo_exception == NULL || g_service == NULL || g_byte_array == NULL ||
        g_pending_call == NULL || g_shard_threads == NULL) {
        return JNI_ERR;
    }
    g_exception_new = (*env)->GetMethodID(env, g_octo_exception, "<init>", "(ILjava/lang/String;)V");
    g_utf8 = (*env)->GetStaticMethodID(env, g_native, "utf8", "([B)Ljava/lang/String;");
    g_dispatch = (*env)->GetMethodID(env, g_service, "dispatch", "(JJLjava/nio/ByteBuffer;JIIII)Z");
    g_dispatch_array = (*env)->GetMethodID(env, g_service, "dispatchArray", "(J[BIII)V");
    g_call_done = (*env)->GetMethodID(env, g_pending_call, "done", "(I[BLjava/lang/String;)V");
    g_shard_enter = (*env)->GetStaticMethodID(env, g_shard_threads, "enter", "()V");
    if (g_exception_new == NULL || g_utf8 == NULL || g_dispatch == NULL || g_dispatch_array == NULL || g_call_done == NULL ||
        g_shard_enter == NULL) {
        return JNI_ERR;
    }
    jclass buffer = (*env)->FindClass(env, "java/nio/Buffer");
    if (buffer == NULL) {
        return JNI_ERR;
    }
    g_buffer_address = (*env)->GetFieldID(env, buffer, "address", "J");
    g_buffer_capacity = g_buffer_address ? (*env)->GetFieldID(env, buffer, "capacity", "I") : NULL;
    g_buffer_limit = g_buffer_capacity ? (*env)->GetFieldID(env, buffer, "limit", "I") : NULL;
    if (g_buffer_limit == NULL) {
        (*env)->ExceptionClear(env); /* NoSuchFieldError: fall back to NewDirectByteBuffer */
        g_buffer_address = NULL;
    }
    (*env)->DeleteLocalRef(env, buffer);
    jint n = (jint)(sizeof k_natives / sizeof k_natives[0]);
    if ((*env)->RegisterNatives(env, g_native, k_natives, n) != 0) {
        return JNI_ERR;
    }
    return JNI_VERSION;
}
