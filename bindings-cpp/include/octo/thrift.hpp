// octo/thrift.hpp: Apache Thrift C++ (0.13+, Debian's libthrift-dev) on octo, in the manner of
// Whale's server and client classes.
//
// Server side: octo::thrift::Server runs a generated TProcessor (EchoProcessor, ...) on octo's
// shards, for OCTO and plain framed Thrift callers on one port. Client side:
// octo::thrift::Client gives a TProtocol that a generated client (EchoClient, ...) calls
// through: each call becomes one octo call, over OCTO or plain framed Thrift.
//
//   auto processor = std::make_shared<octo_idl::EchoProcessor>(std::make_shared<MyEcho>());
//   octo::thrift::Server server(engine, "0.0.0.0:9001", "Echo", processor);
//   server.start();
//
//   octo::thrift::Client client(engine, octo::ClientConfig("127.0.0.1:9001", "Echo"));
//   octo_idl::EchoClient echo(client.protocol());
//   std::string out;
//   echo.echo(out, "hello");
//
// Errors: the server answers a processor's TApplicationException with the OCTO status it
// means (UNKNOWN_METHOD: 8, protocol errors: 5, other: 2). On the client, a remote error
// whose answer carries a Thrift message is handed to the generated code, which throws the
// TApplicationException as with any Thrift server; failures without one (timeouts, lost
// connections) are thrown as octo::thrift::TransportError, a TTransportException that also
// carries the OCTO status.
#ifndef OCTO_THRIFT_HPP
#define OCTO_THRIFT_HPP

#include <octo/octo.hpp>

#include <thrift/TApplicationException.h>
#include <thrift/TProcessor.h>
#include <thrift/async/TAsyncChannel.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TTransportException.h>
#include <thrift/transport/TVirtualTransport.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace octo {
namespace thrift {

/// One whole Thrift message in memory: reads come from a lent byte range (no copy), writes go
/// to an owned buffer that is reused from call to call. What a TProtocol sees for one call on
/// either side.
class MessageTransport
    : public apache::thrift::transport::TVirtualTransport<MessageTransport> {
 public:
  /// Reads will come from `message` (lent: it must outlive the reads).
  void reset_input(std::string_view message) noexcept {
    pos_ = reinterpret_cast<const uint8_t*>(message.data());
    end_ = pos_ + message.size();
  }
  /// Forgets what was written; keeps the buffer unless a large answer grew it past 4 MiB.
  void reset_output() noexcept {
    out_size_ = 0;
    if (out_capacity_ > (size_t{4} << 20)) {
      out_.reset();
      out_capacity_ = 0;
    }
  }
  /// What was written since reset_output(); valid until the next write or reset.
  std::string_view output() const noexcept { return std::string_view(out_.get(), out_size_); }
  size_t input_remaining() const noexcept { return static_cast<size_t>(end_ - pos_); }

  bool isOpen() const override { return true; }
  bool peek() override { return pos_ < end_; }
  void open() override {}
  void close() override {}

  uint32_t read(uint8_t* buf, uint32_t len) {
    uint32_t n = static_cast<uint32_t>(std::min<size_t>(len, input_remaining()));
    if (n > 0) std::memcpy(buf, pos_, n);
    pos_ += n;
    return n;
  }
  uint32_t readAll(uint8_t* buf, uint32_t len) {
    if (input_remaining() < len) {
      throw apache::thrift::transport::TTransportException(
          apache::thrift::transport::TTransportException::END_OF_FILE,
          "the Thrift message ends early");
    }
    return read(buf, len);
  }
  void write(const uint8_t* buf, uint32_t len) {
    if (out_capacity_ - out_size_ < len) grow(len);
    std::memcpy(out_.get() + out_size_, buf, len);
    out_size_ += len;
  }
  const uint8_t* borrow(uint8_t* /*buf*/, uint32_t* len) {
    if (input_remaining() < *len) return nullptr;
    *len = static_cast<uint32_t>(std::min<size_t>(input_remaining(),
                                                  std::numeric_limits<uint32_t>::max()));
    return pos_;
  }
  void consume(uint32_t len) {
    if (input_remaining() < len) {
      throw apache::thrift::transport::TTransportException(
          apache::thrift::transport::TTransportException::BAD_ARGS, "consume past the message");
    }
    pos_ += len;
  }

 private:
  void grow(size_t more) {
    size_t need = out_size_ + more;
    size_t capacity = std::max<size_t>({need, out_capacity_ * 2, 4096});
    std::unique_ptr<char[]> bigger(new char[capacity]);
    if (out_size_ > 0) std::memcpy(bigger.get(), out_.get(), out_size_);
    out_ = std::move(bigger);
    out_capacity_ = capacity;
  }

  const uint8_t* pos_ = nullptr;
  const uint8_t* end_ = nullptr;
  std::unique_ptr<char[]> out_;
  size_t out_size_ = 0;
  size_t out_capacity_ = 0;
};

/// TBinaryProtocol over a MessageTransport, with non-virtual transport calls.
using MessageProtocol = apache::thrift::protocol::TBinaryProtocolT<MessageTransport>;

/// A transport and the protocols over it, for one call at a time on one thread.
///
/// `transport`, `in` and `out` are non-owning shared_ptrs (aliasing an empty owner) on objects
/// this codec owns: copying them, as TProcessor::process and generated code's getTransport()
/// do several times per call, touches no reference count. They must not outlive the codec.
class MessageCodec {
 public:
  MessageCodec()
      : owned_transport_(std::make_unique<MessageTransport>()),
        transport(unowned(owned_transport_.get())),
        owned_in_(std::make_unique<MessageProtocol>(transport)),
        owned_out_(std::make_unique<MessageProtocol>(transport)),
        in(unowned(owned_in_.get())),
        out(unowned(owned_out_.get())) {}
  MessageCodec(const MessageCodec&) = delete;
  MessageCodec& operator=(const MessageCodec&) = delete;

  /// Readies the codec for `message`: reads from it, empty output, and no string or container
  /// longer than the message itself (so a lying length never allocates past what arrived).
  void begin(std::string_view message) {
    transport->reset_input(message);
    transport->reset_output();
    int32_t limit = static_cast<int32_t>(
        std::min<size_t>(message.size(), std::numeric_limits<int32_t>::max()));
    in->setStringSizeLimit(limit);
    in->setContainerSizeLimit(limit);
  }

 private:
  template <class T>
  static std::shared_ptr<T> unowned(T* p) noexcept {
    return std::shared_ptr<T>(std::shared_ptr<T>(), p);
  }
  std::unique_ptr<MessageTransport> owned_transport_;

 public:
  const std::shared_ptr<MessageTransport> transport;

 private:
  std::unique_ptr<MessageProtocol> owned_in_;
  std::unique_ptr<MessageProtocol> owned_out_;

 public:
  const std::shared_ptr<MessageProtocol> in;
  const std::shared_ptr<MessageProtocol> out;
};

namespace detail {

/// The Thrift message type of a strict TBinaryProtocol message, or -1 if it is not one.
inline int message_type(std::string_view message) noexcept {
  if (message.size() < 4) return -1;
  auto b0 = static_cast<uint8_t>(message[0]), b1 = static_cast<uint8_t>(message[1]);
  if (b0 != 0x80 || b1 != 0x01) return -1;
  return static_cast<uint8_t>(message[3]) & 0x07;
}

/// The OCTO status that a processor's EXCEPTION answer means.
inline Status status_of_exception(std::string_view message) {
  using apache::thrift::TApplicationException;
  try {
    MessageCodec codec;
    codec.begin(message);
    std::string name;
    apache::thrift::protocol::TMessageType type;
    int32_t seqid = 0;
    codec.in->readMessageBegin(name, type, seqid);
    TApplicationException x;
    x.read(codec.in.get());
    switch (x.getType()) {
      case TApplicationException::UNKNOWN_METHOD:
      case TApplicationException::WRONG_METHOD_NAME:
        return Status::ServiceException;
      case TApplicationException::PROTOCOL_ERROR:
      case TApplicationException::INVALID_PROTOCOL:
      case TApplicationException::INVALID_MESSAGE_TYPE:
        return Status::ProtocolException;
      default:
        return Status::RuntimeException;
    }
  } catch (const std::exception&) {
    return Status::RuntimeException;
  }
}

/// This thread's codec for processor calls; a fresh one if this thread is inside one already.
class CodecLease {
 public:
  CodecLease() {
    Slot& s = slot();
    if (!s.busy) {
      s.busy = true;
      codec_ = &s.codec;
      leased_ = true;
    } else {
      own_ = std::make_unique<MessageCodec>();
      codec_ = own_.get();
    }
  }
  ~CodecLease() {
    if (leased_) slot().busy = false;
  }
  CodecLease(const CodecLease&) = delete;
  CodecLease& operator=(const CodecLease&) = delete;
  MessageCodec& operator*() const noexcept { return *codec_; }
  MessageCodec* operator->() const noexcept { return codec_; }

 private:
  struct Slot {
    MessageCodec codec;
    bool busy = false;
  };
  static Slot& slot() {
    thread_local Slot s;
    return s;
  }
  MessageCodec* codec_ = nullptr;
  std::unique_ptr<MessageCodec> own_;
  bool leased_ = false;
};

}  // namespace detail

/// Runs `processor` for one call whose whole Thrift message is `body` and answers through
/// `responder`. The processor gets `context` as its connection context (nullptr: none).
inline void process(apache::thrift::TProcessor& processor, std::string_view body, bool one_way,
                    Responder& responder, void* context = nullptr) {
  detail::CodecLease codec;
  codec->begin(body);
  bool ok = false;
  try {
    ok = processor.process(codec->in, codec->out, context);
  } catch (const apache::thrift::TException& e) {
    responder.error(Status::ProtocolException, e.what());
    return;
  }
  if (!ok) {
    responder.error(Status::ProtocolException, "the processor refused the message");
    return;
  }
  std::string_view out = codec->transport->output();
  if (out.empty()) {
    // A one-way method writes nothing; nothing is sent back either way.
    if (one_way) {
      responder.ok(std::string_view());
    } else {
      responder.error(Status::RpcException, "the processor wrote no answer");
    }
    return;
  }
  if (detail::message_type(out) == apache::thrift::protocol::T_EXCEPTION) {
    responder.reply(detail::status_of_exception(out), out);
  } else {
    responder.ok(out);
  }
}

/// Where a processor runs when its handler may block: a function that runs a task on some other
/// thread (or throws to refuse it). Empty: inline on the shard thread.
using Executor = std::function<void(std::function<void()> task)>;

/// An octo Handler that runs `processor` for each call: inline on the shard thread that
/// received it when `executor` is empty (the fastest way; the processor's handler must not
/// block), else on the executor (the body is kept without a copy; the answer goes back from
/// that thread; a refused task is answered with DegradeException). Inline, the octo::Request
/// is the processor's connection context.
inline Handler processor_handler(std::shared_ptr<apache::thrift::TProcessor> processor,
                                 Executor executor = {}) {
  if (!executor) {
    return [processor = std::move(processor)](const Request& request, Responder& responder) {
      process(*processor, request.body(), request.one_way(), responder,
              const_cast<Request*>(&request));
    };
  }
  return [processor = std::move(processor), executor = std::move(executor)](
             const Request& request, Responder& responder) {
    auto body = std::make_shared<Buffer>(request.retain_body());
    auto answer = std::make_shared<Responder>(std::move(responder));
    bool one_way = request.one_way();
    try {
      executor([processor, body, answer, one_way] {
        try {
          process(*processor, body->view(), one_way, *answer);
        } catch (const std::exception& e) {
          if (*answer) answer->error(Status::RuntimeException, e.what());
        }
      });
    } catch (const std::exception& e) {
      answer->error(Status::DegradeException, std::string("the executor refused the call: ") +
                                                  e.what());
    }
  };
}

/// A fixed set of threads running tasks from a bounded queue: an Executor for processors whose
/// handlers block (as Whale's worker threads). A full queue refuses the task (the call is
/// answered with DegradeException). Stops and joins its threads on destruction, after the
/// queued tasks ran.
class Workers {
 public:
  explicit Workers(size_t threads, size_t max_queued = 4096) : max_queued_(max_queued) {
    for (size_t i = 0; i < std::max<size_t>(threads, 1); ++i) {
      threads_.emplace_back([this] { run(); });
    }
  }
  ~Workers() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  /// Queues `task`; throws Error(Busy) when the queue is full or the workers are stopping.
  void post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ || queue_.size() >= max_queued_) {
        throw Error(Status::Busy, "the worker queue is full");
      }
      queue_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

  /// This pool as an Executor (the pool must outlive the servers using it).
  Executor executor() {
    return [this](std::function<void()> task) { post(std::move(task)); };
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
    }
  }

  size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

/// Whale's server class on octo: a port on every shard of an Engine serving generated Thrift
/// processors, for OCTO callers (routed by service name) and plain framed Thrift callers (the
/// default service: the first one given). Without an executor, processors run inline on shard
/// threads and their handlers must not block; with one (e.g. Workers), they run there.
class Server {
 public:
  Server(Engine engine, const std::string& address, const std::string& service,
         std::shared_ptr<apache::thrift::TProcessor> processor, Executor executor = {})
      : server_(std::move(engine), address) {
    add(service, std::move(processor), std::move(executor));
  }

  /// Serves another processor on the same port, as service `name`.
  Server& add(const std::string& name, std::shared_ptr<apache::thrift::TProcessor> processor,
              Executor executor = {}) {
    server_.service(name, processor_handler(std::move(processor), std::move(executor)));
    return *this;
  }
  Server& default_service(const std::string& name) {
    server_.default_service(name);
    return *this;
  }
  Server& start() {
    server_.start();
    return *this;
  }
  uint16_t port() const { return server_.port(); }
  ServerStats stats() const { return server_.stats(); }
  void shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds(5000)) {
    server_.shutdown(grace);
  }
  /// The octo server underneath.
  octo::Server& octo_server() noexcept { return server_; }

 private:
  octo::Server server_;
};


// ------------------------------------------------------------------------------------------
// Client side

/// A call that failed without a Thrift answer to hand to the generated client (timeout, lost
/// connection, closed client): a TTransportException, as Thrift C++ callers expect, that also
/// carries the OCTO status.
class TransportError : public apache::thrift::transport::TTransportException {
 public:
  explicit TransportError(const Error& e)
      : TTransportException(type_of(e.status()), e.what()), status_(e.status()) {}
  Status status() const noexcept { return status_; }

 private:
  static TTransportExceptionType type_of(Status s) noexcept {
    switch (s) {
      case Status::Timeout:
        return TIMED_OUT;
      case Status::Closed:
        return NOT_OPEN;
      case Status::InvalidArgument:
        return BAD_ARGS;
      default:
        return UNKNOWN;
    }
  }
  Status status_;
};

namespace detail {

/// Where the seqid of a strict TBinaryProtocol message starts, or 0 if it is not one.
inline size_t seqid_offset(std::string_view message) noexcept {
  if (message_type(message) < 0 || message.size() < 8) return 0;
  auto u8 = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(message[i])); };
  uint32_t name_len = (u8(4) << 24) | (u8(5) << 16) | (u8(6) << 8) | u8(7);
  if (name_len > message.size() || message.size() - 8 - name_len < 4) return 0;
  return 8 + name_len;
}

}  // namespace detail

/// The TTransport a generated client writes its call to and reads its answer from: flush()
/// sends what was written as one octo call and waits for the answer (a T_ONEWAY message is
/// sent one-way). The answer carries the seqid the caller wrote (octo uses its own on the
/// wire), so generated concurrent clients match it too. One caller at a time (as any Thrift
/// transport); make one per generated client with octo::thrift::Client::protocol().
class ClientTransport : public apache::thrift::transport::TVirtualTransport<ClientTransport> {
 public:
  ClientTransport(std::shared_ptr<octo::Client> client, std::chrono::milliseconds timeout)
      : client_(std::move(client)), timeout_(timeout) {}

  bool isOpen() const override { return true; }
  bool peek() override { return pos_ < head_.size() + rest_.size(); }
  void open() override {}
  void close() override {}

  void write(const uint8_t* buf, uint32_t len) {
    request_.append(reinterpret_cast<const char*>(buf), len);
  }

  void flush() override {
    struct Forget {  // the written call is gone once flushed, whatever happens
      std::string& s;
      ~Forget() { s.clear(); }
    } forget{request_};
    const std::string& request = request_;
    clear_answer();
    if (request.empty()) return;
    if (detail::message_type(request) == apache::thrift::protocol::T_ONEWAY) {
      run([&] { client_->send_one_way(request); });
      return;
    }
    size_t at = detail::seqid_offset(request);
    try {
      answer_ = client_->call_sync(request, timeout_);
      rest_ = answer_.view();
    } catch (const Error& e) {
      if (e.body().empty()) throw TransportError(e);
      // The server's error answer (a TApplicationException, or a REPLY with a declared
      // exception): the generated client reads it and throws what it holds.
      error_body_ = e.body();
      rest_ = error_body_;
    }
    // Give the answer the caller's seqid back (the first bytes up to it are copied; the rest is
    // read where it lies).
    size_t answer_at = detail::seqid_offset(rest_);
    if (at != 0 && answer_at != 0) {
      head_.assign(rest_.data(), answer_at);
      head_.append(request, at, 4);
      rest_.remove_prefix(answer_at + 4);
    }
  }

  uint32_t read(uint8_t* buf, uint32_t len) {
    uint32_t done = 0;
    while (done < len && peek()) {
      std::string_view from = pos_ < head_.size() ? std::string_view(head_).substr(pos_)
                                                  : rest_.substr(pos_ - head_.size());
      size_t n = std::min<size_t>(len - done, from.size());
      std::memcpy(buf + done, from.data(), n);
      done += static_cast<uint32_t>(n);
      pos_ += n;
    }
    return done;
  }
  uint32_t readAll(uint8_t* buf, uint32_t len) {
    if (read(buf, len) < len) {
      throw apache::thrift::transport::TTransportException(
          apache::thrift::transport::TTransportException::END_OF_FILE,
          "the answer ends early");
    }
    return len;
  }
  const uint8_t* borrow(uint8_t* /*buf*/, uint32_t* len) {
    if (pos_ < head_.size()) return nullptr;  // only the few header bytes; read() them
    std::string_view from = rest_.substr(pos_ - head_.size());
    if (from.size() < *len) return nullptr;
    *len = static_cast<uint32_t>(std::min<size_t>(from.size(), UINT32_MAX));
    return reinterpret_cast<const uint8_t*>(from.data());
  }
  void consume(uint32_t len) {
    if (pos_ < head_.size() || rest_.size() - (pos_ - head_.size()) < len) {
      throw apache::thrift::transport::TTransportException(
          apache::thrift::transport::TTransportException::BAD_ARGS, "consume past the answer");
    }
    pos_ += len;
  }
  uint32_t readEnd() override {
    clear_answer();
    return 0;
  }

 private:
  template <class F>
  static void run(F&& f) {
    try {
      f();
    } catch (const Error& e) {
      throw TransportError(e);
    }
  }
  void clear_answer() {
    answer_ = Buffer::adopt(nullptr);
    error_body_.clear();
    head_.clear();
    rest_ = std::string_view();
    pos_ = 0;
  }

  std::shared_ptr<octo::Client> client_;
  std::chrono::milliseconds timeout_;
  std::string request_;
  Buffer answer_ = Buffer::adopt(nullptr);
  std::string error_body_;
  std::string head_;       // the answer's message header up to its seqid, then the caller's seqid
  std::string_view rest_;  // the rest of the answer (in answer_ or error_body_)
  size_t pos_ = 0;         // read position over head_ then rest_
};

/// The asynchronous side of Whale's client: a TAsyncChannel for generated "cob style" clients
/// (thrift --gen cpp:cob_style, e.g. EchoCobClient). Each call is one octo call; the
/// continuation runs on a shard thread when the answer is in (never block in it), and the
/// generated recv_ method then reads the answer. A failure without a Thrift answer (timeout,
/// lost connection) reaches recv_ as a TApplicationException (INTERNAL_ERROR) whose message
/// starts with the OCTO status name ("Timeout: ..."). One call at a time per cob client (its
/// buffers are per client), any number per channel.
class AsyncChannel : public apache::thrift::async::TAsyncChannel {
 public:
  AsyncChannel(std::shared_ptr<octo::Client> client, std::chrono::milliseconds timeout)
      : client_(std::move(client)), timeout_(timeout) {}

  bool good() const override { return true; }
  bool error() const override { return false; }
  bool timedOut() const override { return false; }

  /// A one-way call: sent, then `cob` runs (on this thread).
  void sendMessage(const VoidCallback& cob,
                   apache::thrift::transport::TMemoryBuffer* message) override {
    try {
      client_->send_one_way(contents(message));
    } catch (const Error& e) {
      throw TransportError(e);
    }
    cob();
  }

  /// Not offered: every octo call's answer comes through sendAndRecvMessage.
  void recvMessage(const VoidCallback&, apache::thrift::transport::TMemoryBuffer*) override {
    throw apache::thrift::transport::TTransportException(
        apache::thrift::transport::TTransportException::NOT_OPEN,
        "octo::thrift::AsyncChannel answers calls through sendAndRecvMessage only");
  }

  /// Calls with what `send` holds; when the answer is in, puts it in `recv` (with the
  /// caller's seqid) and runs `cob` on the shard thread. Throws TransportError if the call is
  /// not taken (closed client, not a Thrift call); `cob` then never runs.
  void sendAndRecvMessage(const VoidCallback& cob, apache::thrift::transport::TMemoryBuffer* send,
                          apache::thrift::transport::TMemoryBuffer* recv) override {
    std::string_view request = contents(send);
    size_t at = detail::seqid_offset(request);
    std::string head;  // the request's message header through its seqid
    if (at != 0) head.assign(request.data(), at + 4);
    try {
      client_->call(
          request,
          [cob, recv, head = std::move(head)](CallResult result) {
            std::string synthesized;
            std::string_view answer;
            Buffer reply = Buffer::adopt(nullptr);
            if (result.ok()) {
              reply = result.get();
              answer = reply.view();
            } else {
              Error e = result.error();
              synthesized = e.body().empty() ? exception_message(head, e) : e.body();
              answer = synthesized;
            }
            recv->resetBuffer();
            size_t answer_at = detail::seqid_offset(answer);
            if (!head.empty() && answer_at != 0) {
              recv->write(reinterpret_cast<const uint8_t*>(answer.data()),
                          static_cast<uint32_t>(answer_at));
              recv->write(reinterpret_cast<const uint8_t*>(head.data() + head.size() - 4), 4);
              answer.remove_prefix(answer_at + 4);
            }
            recv->write(reinterpret_cast<const uint8_t*>(answer.data()),
                        static_cast<uint32_t>(answer.size()));
            cob();
          },
          timeout_);
    } catch (const Error& e) {
      throw TransportError(e);
    }
  }

 private:
  static std::string_view contents(apache::thrift::transport::TMemoryBuffer* buffer) {
    uint8_t* data = nullptr;
    uint32_t len = 0;
    buffer->getBuffer(&data, &len);
    return std::string_view(reinterpret_cast<const char*>(data), len);
  }

  /// An EXCEPTION message for the call whose header is `head`, carrying `e` as a
  /// TApplicationException (INTERNAL_ERROR, "Status: message").
  static std::string exception_message(const std::string& head, const Error& e) {
    std::string name = "unknown";
    int32_t seqid = 0;
    if (!head.empty()) {
      MessageCodec codec;
      codec.begin(head);
      apache::thrift::protocol::TMessageType type;
      try {
        codec.in->readMessageBegin(name, type, seqid);
      } catch (const apache::thrift::TException&) {
      }
    }
    MessageCodec codec;
    codec.begin({});
    codec.out->writeMessageBegin(name, apache::thrift::protocol::T_EXCEPTION, seqid);
    apache::thrift::TApplicationException(apache::thrift::TApplicationException::INTERNAL_ERROR,
                                          e.what())
        .write(codec.out.get());
    codec.out->writeMessageEnd();
    return std::string(codec.transport->output());
  }

  std::shared_ptr<octo::Client> client_;
  std::chrono::milliseconds timeout_;
};

/// Whale's client class on octo: one octo::Client (thread-safe, multiplexed) for a service,
/// handing out the TProtocol that generated clients call through:
///
///   octo::thrift::Client client(engine, octo::ClientConfig("Echo").endpoint("10.0.0.1:9001"));
///   octo_idl::EchoClient echo(client.protocol());   // one per thread, as with any Thrift client
///   echo.echo(result, "hello");
///
/// Failures without a Thrift answer are thrown as TransportError (a TTransportException with
/// the OCTO status); a server's error answer is thrown by the generated code, as from any
/// Thrift server (TApplicationException, or the declared exception).
class Client {
 public:
  Client(Engine engine, const ClientConfig& config)
      : client_(std::make_shared<octo::Client>(std::move(engine), config)) {}

  /// A new protocol for one generated client (use each from one thread at a time). A zero
  /// timeout uses the client's.
  std::shared_ptr<apache::thrift::protocol::TProtocol> protocol(
      std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) const {
    return std::make_shared<apache::thrift::protocol::TBinaryProtocolT<ClientTransport>>(
        std::make_shared<ClientTransport>(client_, timeout));
  }

  /// A channel for generated cob-style (asynchronous) clients, e.g.
  /// `octo_idl::EchoCobClient echo(client.channel(), &protocol_factory)` with a
  /// TBinaryProtocolFactory. A zero timeout uses the client's.
  std::shared_ptr<AsyncChannel> channel(
      std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) const {
    return std::make_shared<AsyncChannel>(client_, timeout);
  }

  /// The octo client underneath (for calls with raw Thrift messages, futures, callbacks).
  octo::Client& octo_client() const noexcept { return *client_; }

 private:
  std::shared_ptr<octo::Client> client_;
};

}  // namespace thrift
}  // namespace octo

#endif  // OCTO_THRIFT_HPP
