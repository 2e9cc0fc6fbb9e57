// octo/octo.hpp: octo's C++17 API, header-only, over the C ABI of include/octo.h (libocto.so).
//
// It owns nothing of the protocol: every byte on the wire, every timeout and every connection
// is handled by libocto. This header adds what a C++ user expects (the wasmtime.hh pattern):
//
//   - RAII owners for every C handle (Engine, Buffer, Server, Responder, Client): each frees
//     its handle exactly once; they move, they do not copy (Engine is a shared, copyable
//     handle, kept alive by everything made on it).
//   - std::function handlers and calls that return std::future or take a callback.
//   - One way to report failure, used everywhere: an exception of type octo::Error, which
//     carries the OCTO status (octo::Status, the same codes as octo_status) and the message.
//     Futures deliver it through std::future::get().
//
// Threads: handlers and call callbacks run on octo's shard threads. Never block in them (no
// sync call, no waiting on a future, no lock held for long); hand slow work to your own
// threads and answer from there through the Responder, which may move to any thread.
//
//   octo::Engine engine(octo::EngineConfig().shards(2));
//   octo::Server server(engine, "127.0.0.1:9001");
//   server.service("Echo", [](const octo::Request& req, octo::Responder& res) {
//     res.ok(req.body());  // a whole Thrift REPLY message, normally from generated code
//   });
//   server.start();
//
//   octo::Client client(engine, octo::ClientConfig("Echo").endpoint("127.0.0.1:9001"));
//   std::future<octo::Buffer> reply = client.call(call_message);  // get() throws octo::Error
#ifndef OCTO_OCTO_HPP
#define OCTO_OCTO_HPP

#include <octo.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace octo {

// ------------------------------------------------------------------------------------------
// Status and Error

/// The outcome of a call: 0 success, 1..9 the OCTO wire status codes (PROTOCOL.md), 100 and
/// up local to this process. Same values as the C enum octo_status.
enum class Status : uint32_t {
  Ok = OCTO_STATUS_OK,
  ApplicationException = OCTO_STATUS_APPLICATION_EXCEPTION,
  RuntimeException = OCTO_STATUS_RUNTIME_EXCEPTION,
  RpcException = OCTO_STATUS_RPC_EXCEPTION,
  TransportException = OCTO_STATUS_TRANSPORT_EXCEPTION,
  ProtocolException = OCTO_STATUS_PROTOCOL_EXCEPTION,
  DegradeException = OCTO_STATUS_DEGRADE_EXCEPTION,
  SecurityException = OCTO_STATUS_SECURITY_EXCEPTION,
  ServiceException = OCTO_STATUS_SERVICE_EXCEPTION,
  RemoteException = OCTO_STATUS_REMOTE_EXCEPTION,
  InvalidArgument = OCTO_STATUS_INVALID_ARGUMENT,
  Closed = OCTO_STATUS_CLOSED,
  Timeout = OCTO_STATUS_TIMEOUT,
  Busy = OCTO_STATUS_BUSY,
  Panic = OCTO_STATUS_PANIC,
  AlreadyAnswered = OCTO_STATUS_ALREADY_ANSWERED,
  Io = OCTO_STATUS_IO,
};

/// The status's name ("Success", "TransportException", "Timeout", ...), from libocto.
inline const char* status_name(Status status) noexcept {
  return octo_status_name(static_cast<uint32_t>(status));
}

/// True for the statuses that travel on the wire (0..9, ResponseInfo.status).
constexpr bool is_wire_status(Status status) noexcept {
  return static_cast<uint32_t>(status) <= 9;
}

/// The one failure type of this API: an OCTO status and a message. Remote failures (a server's
/// error answer) may also carry the answer's body, a whole Thrift message (usually an
/// EXCEPTION holding a TApplicationException), for generated code to read.
class Error : public std::runtime_error {
 public:
  Error(Status status, const std::string& message, std::string body = {})
      : std::runtime_error(std::string(status_name(status)) + ": " + message),
        status_(status),
        message_(message),
        body_(std::make_shared<const std::string>(std::move(body))) {}

  /// The OCTO status this failure is reported with.
  Status status() const noexcept { return status_; }
  /// The message alone (what() is "StatusName: message").
  const std::string& message() const noexcept { return message_; }
  /// The server's answer body for remote failures; empty otherwise.
  const std::string& body() const noexcept { return *body_; }
  /// True when no answer came in time.
  bool is_timeout() const noexcept { return status_ == Status::Timeout; }

 private:
  Status status_;
  std::string message_;
  std::shared_ptr<const std::string> body_;  // shared: exceptions are copied when thrown
};

namespace detail {

/// Throws the Error for a failed C call (its message is the thread's octo_last_error()).
[[noreturn]] inline void fail(octo_status status) {
  const char* message = octo_last_error();
  throw Error(static_cast<Status>(status), message != nullptr ? message : "");
}

inline void check(octo_status status) {
  if (status != OCTO_STATUS_OK) fail(status);
}

inline std::string_view view(octo_str s) noexcept {
  return s.data != nullptr ? std::string_view(s.data, s.len) : std::string_view();
}

}  // namespace detail

/// The version of the loaded libocto ("MAJOR.MINOR.PATCH"); compare with OCTO_VERSION_STRING,
/// the version of the header this was compiled against.
inline std::string_view version() noexcept { return octo_version(); }

// ------------------------------------------------------------------------------------------
// Buffer

/// Bytes owned by octo (an octo_buf): writable until first shared, then a read-only view of
/// reference-counted memory. Handing a Buffer to octo (Responder::ok(Buffer&&), a call's
/// body) transfers it without a copy. Move-only; share() makes a second handle, not a copy.
///
/// Threads: a Buffer may move between threads; one Buffer must not be used by two at once.
class Buffer {
 public:
  /// An empty writable buffer with room for `capacity` bytes.
  explicit Buffer(size_t capacity = 0) {
    octo_buf* raw = nullptr;
    detail::check(octo_buf_new(capacity, &raw));
    raw_.reset(raw);
  }

  /// A writable buffer holding a copy of `bytes`.
  static Buffer copy_of(std::string_view bytes) {
    Buffer b(bytes.size());
    b.append(bytes);
    return b;
  }

  /// Takes ownership of a handle made by libocto.
  static Buffer adopt(octo_buf* raw) noexcept { return Buffer(raw, Adopt{}); }

  /// Appends a copy of `bytes` (grows as needed). Error(Busy) once shared.
  void append(std::string_view bytes) {
    detail::check(octo_buf_write(raw_.get(), reinterpret_cast<const uint8_t*>(bytes.data()),
                                 bytes.size()));
  }

  /// Direct access for writing in place: `data` has room for `capacity` bytes; the first
  /// size() of them are the current contents. Then set_size(). Error(Busy) once shared.
  struct Writable {
    uint8_t* data;
    size_t capacity;
  };
  Writable writable() {
    Writable w{nullptr, 0};
    detail::check(octo_buf_data_mut(raw_.get(), &w.data, &w.capacity));
    return w;
  }

  /// Declares how many bytes written through writable() are valid.
  void set_size(size_t size) { detail::check(octo_buf_set_len(raw_.get(), size)); }

  /// The valid bytes; the view lives until this Buffer changes or goes.
  std::string_view view() const {
    const uint8_t* data = nullptr;
    size_t len = 0;
    detail::check(octo_buf_data(raw_.get(), &data, &len));
    return std::string_view(reinterpret_cast<const char*>(data), len);
  }
  size_t size() const noexcept { return octo_buf_len(raw_.get()); }
  bool empty() const noexcept { return size() == 0; }
  std::string to_string() const { return std::string(view()); }

  /// A second handle on the same bytes (no copy); both are read-only from now on.
  Buffer share() {
    octo_buf* raw = nullptr;
    detail::check(octo_buf_clone(raw_.get(), &raw));
    return adopt(raw);
  }

  octo_buf* raw() const noexcept { return raw_.get(); }
  /// Gives the handle up (to a C function that consumes it).
  octo_buf* release() noexcept { return raw_.release(); }

 private:
  struct Adopt {};
  Buffer(octo_buf* raw, Adopt) noexcept : raw_(raw) {}
  struct Free {
    void operator()(octo_buf* b) const noexcept { octo_buf_free(b); }
  };
  std::unique_ptr<octo_buf, Free> raw_;
};

// ------------------------------------------------------------------------------------------
// Engine

/// How an Engine starts; starts from libocto's defaults. Chainable:
/// `EngineConfig().shards(2).pin_shards(false)`.
class EngineConfig {
 public:
  EngineConfig() { detail::check(octo_engine_config_default(&raw_)); }

  /// Shard threads (each owns an io_uring ring); 0 = one per CPU.
  EngineConfig& shards(uint32_t n) { raw_.shards = n; return *this; }
  /// Pin shard i to cpus[i % cpus.size()] (or to the i-th CPU when cpus is empty); false: unpinned.
  EngineConfig& pin_shards(bool pin) { raw_.pin_shards = pin; return *this; }
  EngineConfig& cpus(std::vector<uint32_t> cpus) { cpus_ = std::move(cpus); return *this; }
  EngineConfig& ring_entries(uint32_t n) { raw_.ring_entries = n; return *this; }
  /// Largest frame a peer may send; a larger claim closes the connection before allocating.
  EngineConfig& max_frame_size(uint32_t bytes) { raw_.max_frame_size = bytes; return *this; }
  EngineConfig& max_connections_per_shard(uint32_t n) {
    raw_.max_connections_per_shard = n;
    return *this;
  }
  /// Calls answered later (Responder kept past the handler) per connection; more get status 6.
  EngineConfig& max_in_flight_per_connection(uint32_t n) {
    raw_.max_in_flight_per_connection = n;
    return *this;
  }
  /// Server connections idle this long are closed; zero: never.
  EngineConfig& idle_timeout(std::chrono::milliseconds t) {
    raw_.idle_timeout_ms = static_cast<uint32_t>(t.count());
    return *this;
  }
  EngineConfig& write_water_marks(uint32_t low, uint32_t high) {
    raw_.write_low_water = low;
    raw_.write_high_water = high;
    return *this;
  }

  /// The C struct, pointing into this object's CPU list (valid while this lives unchanged).
  const octo_engine_config& raw() const {
    raw_.cpus = cpus_.empty() ? nullptr : cpus_.data();
    raw_.cpus_len = cpus_.size();
    return raw_;
  }

 private:
  mutable octo_engine_config raw_{};
  std::vector<uint32_t> cpus_;
};

/// Running shard threads on which servers and clients run. A shared handle: copies refer to
/// the same engine, and every Server and Client made on it keeps it alive; the shards stop
/// when the last reference goes. Do not let that happen inside a handler or callback (libocto
/// cannot stop a shard from its own thread; it would then leak the engine).
class Engine {
 public:
  explicit Engine(const EngineConfig& config = EngineConfig()) {
    octo_engine* raw = nullptr;
    detail::check(octo_engine_new(&config.raw(), &raw));
    raw_.reset(raw, [](octo_engine* e) { octo_engine_free(e); });
  }

  uint32_t shard_count() const noexcept { return octo_engine_shard_count(raw_.get()); }
  octo_engine* raw() const noexcept { return raw_.get(); }

 private:
  std::shared_ptr<octo_engine> raw_;
};

// ------------------------------------------------------------------------------------------
// Server side: Request, Responder, Server

/// How a call arrived.
enum class Framing : uint32_t { Octo = OCTO_FRAMING_OCTO, Thrift = OCTO_FRAMING_THRIFT };

/// Which context map of the OCTO header.
enum class Context : uint32_t { Global = 0, Local = 1 };

/// The TraceInfo an OCTO call carried (views lent for the handler's duration).
struct TraceInfo {
  bool present = false;
  std::string_view client_appkey, trace_id, span_id, root_message_id, current_message_id,
      server_message_id, client_ip;
  std::optional<bool> debug, sample;
};

/// A call as a handler sees it. Lent for the handler's duration only, on its thread: every
/// view it gives dies when the handler returns (copy what you keep, or retain_body()).
class Request {
 public:
  explicit Request(const octo_request* raw) : raw_(raw) {
    detail::check(octo_request_get_info(raw, &info_));
  }
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  /// The service called (the default service for native Thrift).
  std::string_view service() const noexcept { return detail::view(info_.service); }
  /// The Thrift method name.
  std::string_view method() const noexcept { return detail::view(info_.method); }
  /// The 64-bit sequence id (OCTO) or the Thrift seqid (native Thrift).
  int64_t sequence_id() const noexcept { return info_.sequence_id; }
  /// The seqid in the Thrift message header: write it back in the REPLY.
  int32_t thrift_seqid() const noexcept { return info_.thrift_seqid; }
  /// The caller's timeout; zero when it sent none.
  std::chrono::milliseconds timeout() const noexcept {
    return std::chrono::milliseconds(info_.timeout_ms);
  }
  /// True for a one-way call: any answer is discarded (still answer or drop the Responder).
  bool one_way() const noexcept { return info_.one_way; }
  Framing framing() const noexcept { return static_cast<Framing>(info_.framing); }
  /// The shard (thread) running this handler.
  uint32_t shard() const noexcept { return info_.shard; }
  /// The whole Thrift message: message header, then the args struct.
  std::string_view body() const noexcept {
    return std::string_view(reinterpret_cast<const char*>(info_.body), info_.body_len);
  }
  /// The args struct alone.
  std::string_view args() const noexcept {
    return std::string_view(reinterpret_cast<const char*>(info_.args), info_.args_len);
  }
  /// Keeps the body past the handler without copying it.
  Buffer retain_body() const {
    octo_buf* raw = nullptr;
    detail::check(octo_request_body_retain(raw_, &raw));
    return Buffer::adopt(raw);
  }
  /// The value of `key` in a context map, if present.
  std::optional<std::string_view> context(Context which, std::string_view key) const {
    octo_str value{nullptr, 0};
    detail::check(octo_request_context_get(raw_, static_cast<uint32_t>(which), key.data(),
                                           key.size(), &value));
    if (value.data == nullptr) return std::nullopt;
    return detail::view(value);
  }
  /// Every entry of a context map, in wire order.
  std::vector<std::pair<std::string_view, std::string_view>> contexts(Context which) const {
    size_t n = 0;
    detail::check(octo_request_context_len(raw_, static_cast<uint32_t>(which), &n));
    std::vector<std::pair<std::string_view, std::string_view>> out;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      octo_str k{nullptr, 0}, v{nullptr, 0};
      detail::check(octo_request_context_at(raw_, static_cast<uint32_t>(which), i, &k, &v));
      out.emplace_back(detail::view(k), detail::view(v));
    }
    return out;
  }
  TraceInfo trace_info() const {
    octo_trace_info t{};
    detail::check(octo_request_trace_info(raw_, &t));
    TraceInfo out;
    out.present = t.present;
    out.client_appkey = detail::view(t.client_appkey);
    out.trace_id = detail::view(t.trace_id);
    out.span_id = detail::view(t.span_id);
    out.root_message_id = detail::view(t.root_message_id);
    out.current_message_id = detail::view(t.current_message_id);
    out.server_message_id = detail::view(t.server_message_id);
    out.client_ip = detail::view(t.client_ip);
    if (t.debug >= 0) out.debug = t.debug != 0;
    if (t.sample >= 0) out.sample = t.sample != 0;
    return out;
  }

  const octo_request* raw() const noexcept { return raw_; }

 private:
  const octo_request* raw_;
  octo_request_info info_{};
};

/// The answer to one call: answer it once (ok, reply or error), now or later, from any thread.
/// Move it out of the handler to answer later. Dropped unanswered, the caller gets status 3
/// (RpcException). Move-only.
class Responder {
 public:
  explicit Responder(octo_responder* raw) noexcept : raw_(raw) {}

  /// Success with `body`, a whole Thrift REPLY message (copied).
  void ok(std::string_view body) {
    detail::check(octo_responder_ok(get(), reinterpret_cast<const uint8_t*>(body.data()),
                                    body.size()));
  }
  /// Success with `body`, handed over without a copy.
  void ok(Buffer&& body) { detail::check(octo_responder_ok_buf(get(), body.release())); }
  /// `status` (0..9) with `body`, a whole Thrift message (copied); e.g. ApplicationException
  /// for a declared exception carried in the result struct.
  void reply(Status status, std::string_view body) {
    detail::check(octo_responder_reply(get(), static_cast<uint32_t>(status),
                                       reinterpret_cast<const uint8_t*>(body.data()),
                                       body.size()));
  }
  void reply(Status status, Buffer&& body) {
    detail::check(octo_responder_reply_buf(get(), static_cast<uint32_t>(status), body.release()));
  }
  /// `status` (0..9) with a whole Thrift message that `write(out, capacity)` writes straight
  /// into octo's output (no copy; inside the handler, into the connection's buffer) and whose
  /// size it returns (at most `capacity`). `write` runs once, before this returns, and must not
  /// use this Responder. If it throws, the call is answered with an empty body and the
  /// exception is rethrown here.
  template <class Write>
  void reply_with(Status status, size_t capacity, Write&& write) {
    struct Writing {
      Write& write;
      std::exception_ptr failed;
    } context{write, nullptr};
    auto trampoline = [](void* c, uint8_t* out, size_t cap) noexcept -> size_t {
      auto* ctx = static_cast<Writing*>(c);
      try {
        return ctx->write(out, cap);
      } catch (...) {
        ctx->failed = std::current_exception();
        return 0;
      }
    };
    octo_status s = octo_responder_reply_with(get(), static_cast<uint32_t>(status), capacity,
                                              trampoline, &context);
    if (context.failed) std::rethrow_exception(context.failed);
    detail::check(s);
  }
  /// Success, written in place (see reply_with).
  template <class Write>
  void ok_with(size_t capacity, Write&& write) {
    reply_with(Status::Ok, capacity, std::forward<Write>(write));
  }
  /// An error (status 1..9) with `message`; a native Thrift caller sees a TApplicationException.
  void error(Status status, const std::string& message) {
    detail::check(octo_responder_error(get(), static_cast<uint32_t>(status), message.c_str()));
  }

  /// False once moved from.
  explicit operator bool() const noexcept { return raw_ != nullptr; }
  octo_responder* raw() const noexcept { return raw_.get(); }

 private:
  octo_responder* get() const {
    if (!raw_) throw Error(Status::InvalidArgument, "this Responder was moved from");
    return raw_.get();
  }
  struct Free {
    void operator()(octo_responder* r) const noexcept { octo_responder_free(r); }
  };
  std::unique_ptr<octo_responder, Free> raw_;
};

/// A service's handler. Runs on shard threads, several at once: never block in it. Answer
/// through `responder`, or move the Responder out and answer later from any thread. An
/// exception escaping the handler answers the call with its status (octo::Error) or with
/// RuntimeException (any other exception), if the Responder was still there to answer.
using Handler = std::function<void(const Request& request, Responder& responder)>;

/// A server's counters, summed over its shards.
struct ServerStats {
  uint64_t connections_accepted = 0, connections_refused = 0, connections_open = 0;
  uint64_t requests = 0, expired = 0, heartbeats = 0, closed_on_bad_input = 0;
  uint64_t answers_by_status[10] = {};
};

namespace detail {

/// True on a thread while it runs an octo callback (a handler or a call's completion): a
/// blocking call there would wait for its own shard.
inline bool& in_callback() noexcept {
  thread_local bool flag = false;
  return flag;
}

struct CallbackScope {
  CallbackScope() noexcept : outer(in_callback()) { in_callback() = true; }
  ~CallbackScope() { in_callback() = outer; }
  bool outer;
};

inline void run_handler(void* user_data, const octo_request* request,
                        octo_responder* responder) noexcept {
  CallbackScope scope;
  Responder r(responder);
  try {
    Request req(request);
    (*static_cast<Handler*>(user_data))(req, r);
  } catch (const Error& e) {
    if (r) {
      Status s = is_wire_status(e.status()) && e.status() != Status::Ok ? e.status()
                                                                        : Status::RuntimeException;
      octo_responder_error(r.raw(), static_cast<uint32_t>(s), e.message().c_str());
    }
  } catch (const std::exception& e) {
    if (r) octo_responder_error(r.raw(), OCTO_STATUS_RUNTIME_EXCEPTION, e.what());
  } catch (...) {
    if (r) octo_responder_error(r.raw(), OCTO_STATUS_RUNTIME_EXCEPTION, "unknown C++ exception");
  }
}

inline void delete_handler(void* user_data) noexcept { delete static_cast<Handler*>(user_data); }

}  // namespace detail

/// A port served on every shard of an Engine, with services routed by name (OCTO) and a
/// default service for native Thrift. Configure (service, default_service), start(), and
/// shutdown() or let the destructor stop it (without grace). Move-only.
///
/// Threads: any thread. Inside a handler (a shard thread) port() and stats() work; start(),
/// shutdown() and the destructor there would wait for that very thread (Error(Busy), or for the
/// destructor, nothing freed).
class Server {
 public:
  /// A server for `address` ("IP:PORT"; port 0 picks a free one, see port()).
  Server(Engine engine, const std::string& address) : engine_(std::move(engine)) {
    octo_server* raw = nullptr;
    detail::check(octo_server_new(engine_.raw(), address.c_str(), &raw));
    raw_.reset(raw);
  }

  /// Adds the service `name`. The first one added is the default for native Thrift.
  Server& service(const std::string& name, Handler handler) {
    auto* h = new Handler(std::move(handler));
    octo_status s =
        octo_server_add_service(raw_.get(), name.c_str(), &detail::run_handler, h,
                               &detail::delete_handler);
    if (s != OCTO_STATUS_OK) {
      delete h;  // on failure octo keeps nothing
      detail::fail(s);
    }
    return *this;
  }

  /// The service native Thrift calls go to.
  Server& default_service(const std::string& name) {
    detail::check(octo_server_set_default_service(raw_.get(), name.c_str()));
    return *this;
  }

  /// Binds on every shard and serves. Error(Io) if the address cannot be bound.
  Server& start() {
    detail::check(octo_server_start(raw_.get()));
    return *this;
  }

  /// The port listened on (after start()).
  uint16_t port() const {
    uint16_t port = 0;
    detail::check(octo_server_port(raw_.get(), &port));
    return port;
  }

  ServerStats stats() const {
    octo_server_stats raw{};
    detail::check(octo_server_get_stats(raw_.get(), &raw));
    ServerStats s;
    s.connections_accepted = raw.connections_accepted;
    s.connections_refused = raw.connections_refused;
    s.connections_open = raw.connections_open;
    s.requests = raw.requests;
    s.expired = raw.expired;
    s.heartbeats = raw.heartbeats;
    s.closed_on_bad_input = raw.closed_on_bad_input;
    std::memcpy(s.answers_by_status, raw.answers_by_status, sizeof s.answers_by_status);
    return s;
  }

  /// Stops accepting, lets calls in flight finish for up to `grace`, closes every connection.
  void shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds(5000)) {
    detail::check(octo_server_shutdown(raw_.get(), static_cast<uint32_t>(grace.count())));
  }

  const Engine& engine() const noexcept { return engine_; }
  octo_server* raw() const noexcept { return raw_.get(); }

 private:
  Engine engine_;  // declared first: destroyed after the server
  struct Free {
    void operator()(octo_server* s) const noexcept { octo_server_free(s); }
  };
  std::unique_ptr<octo_server, Free> raw_;
};

// ------------------------------------------------------------------------------------------
// Client side: ClientConfig, CallResult, Client

/// How a Client calls: the service, its endpoints, timeouts and limits; starts from libocto's
/// defaults. Chainable: `ClientConfig("Echo").endpoint("127.0.0.1:9001").timeout(500ms)`.
class ClientConfig {
 public:
  /// A client of `service_name` (RequestInfo.serviceName on OCTO; unused on plain Thrift).
  explicit ClientConfig(std::string service_name) : service_(std::move(service_name)) {
    detail::check(octo_client_config_default(&raw_));
  }

  /// Adds a server to call: "IP:PORT", speaking OCTO or plain framed Thrift (Whale, Apache
  /// Thrift servers). Calls go round-robin over the endpoints that are up.
  ClientConfig& endpoint(std::string address, Framing framing = Framing::Octo) {
    endpoints_.push_back({std::move(address), framing});
    return *this;
  }
  /// TraceInfo.clientAppkey sent with OCTO calls.
  ClientConfig& appkey(std::string appkey) {
    appkey_ = std::move(appkey);
    return *this;
  }
  /// The default call timeout (a call may give its own).
  ClientConfig& timeout(std::chrono::milliseconds t) {
    raw_.timeout_ms = static_cast<uint32_t>(t.count());
    return *this;
  }
  ClientConfig& connect_timeout(std::chrono::milliseconds t) {
    raw_.connect_timeout_ms = static_cast<uint32_t>(t.count());
    return *this;
  }
  /// Connections per endpoint on each shard.
  ClientConfig& pool_size(uint32_t n) {
    raw_.pool_size = n;
    return *this;
  }
  ClientConfig& max_in_flight_per_connection(uint32_t n) {
    raw_.max_in_flight_per_connection = n;
    return *this;
  }
  /// Heartbeat a connection silent for `interval`; close it if unanswered within `timeout`.
  /// A zero interval sends none.
  ClientConfig& heartbeat(std::chrono::milliseconds interval, std::chrono::milliseconds timeout) {
    raw_.heartbeat_interval_ms = static_cast<uint32_t>(interval.count());
    raw_.heartbeat_timeout_ms = static_cast<uint32_t>(timeout.count());
    return *this;
  }
  /// Largest answer accepted; a larger one closes its connection.
  ClientConfig& max_frame_size(uint32_t bytes) {
    raw_.max_frame_size = bytes;
    return *this;
  }

  const std::string& service_name() const noexcept { return service_; }

  /// The C structs, pointing into this object (valid while it lives unchanged).
  const octo_client_config& raw() const {
    raw_.service_name = service_.c_str();
    raw_.appkey = appkey_.empty() ? nullptr : appkey_.c_str();
    return raw_;
  }
  std::vector<octo_endpoint> raw_endpoints() const {
    std::vector<octo_endpoint> out;
    out.reserve(endpoints_.size());
    for (const auto& e : endpoints_) {
      out.push_back(octo_endpoint{e.first.c_str(), static_cast<uint32_t>(e.second)});
    }
    return out;
  }

 private:
  std::string service_;
  std::string appkey_;
  std::vector<std::pair<std::string, Framing>> endpoints_;
  mutable octo_client_config raw_{};
};

/// A call's outcome as a callback receives it: get() gives the reply (a whole Thrift REPLY
/// message) or throws the octo::Error, exactly as std::future::get() does for call().
class CallResult {
 public:
  CallResult(Status status, Buffer reply, std::string message)
      : status_(status), reply_(std::move(reply)), message_(std::move(message)) {}

  /// Ok, or why the call failed (the server's status, TransportException, Timeout, Closed).
  Status status() const noexcept { return status_; }
  bool ok() const noexcept { return status_ == Status::Ok; }
  /// The reply; throws the call's Error (with the server's answer body, if any) on failure.
  Buffer get() {
    if (status_ != Status::Ok) throw error();
    return std::move(reply_);
  }
  /// The failure as an Error (status Ok if the call succeeded).
  Error error() const {
    return Error(status_, message_,
                 reply_.raw() != nullptr ? std::string(reply_.view()) : std::string());
  }

 private:
  Status status_;
  Buffer reply_;  // empty handle (raw() == nullptr) when the call failed without an answer
  std::string message_;
};

namespace detail {

inline Buffer adopt_reply(octo_buf* reply) noexcept { return Buffer::adopt(reply); }

template <class Deliver>
void deliver_call(void* user_data, octo_status status, octo_buf* reply,
                  const char* message) noexcept {
  CallbackScope scope;
  std::unique_ptr<Deliver> deliver(static_cast<Deliver*>(user_data));
  try {
    (*deliver)(CallResult(static_cast<Status>(status), adopt_reply(reply),
                          message != nullptr ? message : ""));
  } catch (...) {
    // A callback's exception has nowhere to go on a shard thread; it ends here.
  }
}

}  // namespace detail

/// A client of one service over its endpoints, on an Engine's shards: multiplexed
/// connections, per-call deadlines, reconnects with backoff, heartbeats (all in libocto).
/// Bodies are whole Thrift CALL messages (what generated code writes; see octo/thrift.hpp).
///
/// Threads: every call may be made from any thread, concurrently. Callbacks run on shard
/// threads: never block in them. call_sync() and waiting on a future must not happen inside
/// an octo callback or handler (Error(Busy) there). Move-only; closes on destruction.
class Client {
 public:
  Client(Engine engine, const ClientConfig& config) : engine_(std::move(engine)) {
    std::vector<octo_endpoint> endpoints = config.raw_endpoints();
    octo_client* raw = nullptr;
    detail::check(octo_client_new(engine_.raw(), &config.raw(), endpoints.data(),
                                  endpoints.size(), &raw));
    raw_.reset(raw);
  }

  using Callback = std::function<void(CallResult result)>;

  /// Calls with `body`; `callback` receives the outcome exactly once, on a shard thread.
  /// A zero timeout uses the client's. Throws (and never runs the callback) if the call was
  /// not taken: Error(Closed) after close(), Error(InvalidArgument) for a body that is not a
  /// Thrift CALL message.
  void call(std::string_view body, Callback callback,
            std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
    auto* deliver = new Callback(std::move(callback));
    octo_status s = octo_client_call(raw_.get(), reinterpret_cast<const uint8_t*>(body.data()),
                                     body.size(), timeout_ms(timeout),
                                     &detail::deliver_call<Callback>, deliver);
    if (s != OCTO_STATUS_OK) {
      delete deliver;  // not taken: the callback will not run
      detail::fail(s);
    }
  }

  /// Calls with `body`; the future gives the reply, or throws the octo::Error.
  std::future<Buffer> call(std::string_view body,
                           std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
    auto promise = std::make_shared<std::promise<Buffer>>();
    std::future<Buffer> future = promise->get_future();
    call(
        body,
        [promise](CallResult result) {
          if (result.ok()) {
            promise->set_value(result.get());
          } else {
            promise->set_exception(std::make_exception_ptr(result.error()));
          }
        },
        timeout);
    return future;
  }

  /// Calls and waits: the reply, or throws the octo::Error (Timeout, TransportException,
  /// the server's status with its answer body, ...). Not inside an octo callback.
  Buffer call_sync(std::string_view body,
                   std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
    if (detail::in_callback()) {
      throw Error(Status::Busy,
                  "a blocking call inside an octo callback would wait for its own shard");
    }
    return call(body, timeout).get();
  }

  /// Sends `body` as a one-way call: no answer, no knowing whether it arrived.
  void send_one_way(std::string_view body) {
    detail::check(octo_client_send_one_way(
        raw_.get(), reinterpret_cast<const uint8_t*>(body.data()), body.size()));
  }

  /// Closes the connections; calls in flight complete with Closed, later calls throw Closed.
  void close() { detail::check(octo_client_close(raw_.get())); }

  const Engine& engine() const noexcept { return engine_; }
  octo_client* raw() const noexcept { return raw_.get(); }

 private:
  static uint32_t timeout_ms(std::chrono::milliseconds t) {
    if (t.count() < 0) throw Error(Status::InvalidArgument, "negative timeout");
    return static_cast<uint32_t>(std::min<int64_t>(t.count(), UINT32_MAX));
  }

  Engine engine_;  // declared first: destroyed after the client
  struct Free {
    void operator()(octo_client* c) const noexcept { octo_client_free(c); }
  };
  std::unique_ptr<octo_client, Free> raw_;
};

}  // namespace octo

#endif  // OCTO_OCTO_HPP
