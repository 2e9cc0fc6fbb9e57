// What several tests share: the Echo service implementations, a plain Apache Thrift client
// (TSocket + TFramedTransport), and a child process (the Rust Echo server) with its output.
#ifndef OCTO_TESTS_SUPPORT_HPP
#define OCTO_TESTS_SUPPORT_HPP

#include <octo/thrift.hpp>

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/server/TNonblockingServer.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TNonblockingServerSocket.h>
#include <thrift/transport/TSocket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "Echo.h"

extern char** environ;

namespace octo_test {

/// The Echo reference service: answers with the message it got.
class EchoHandler : public octo_idl::EchoIf {
 public:
  void echo(std::string& result, const std::string& message) override {
    calls.fetch_add(1);
    if (message == "throw") throw std::runtime_error("asked to throw");
    result = message;
  }
  std::atomic<int> calls{0};
};

/// A generated EchoClient over Apache Thrift's own TSocket + TFramedTransport (plain Thrift).
struct ThriftSocketClient {
  explicit ThriftSocketClient(uint16_t port) {
    socket = std::make_shared<apache::thrift::transport::TSocket>("127.0.0.1", port);
    socket->setRecvTimeout(20000);
    transport = std::make_shared<apache::thrift::transport::TFramedTransport>(socket);
    auto protocol = std::make_shared<apache::thrift::protocol::TBinaryProtocol>(transport);
    client = std::make_unique<octo_idl::EchoClient>(protocol);
    transport->open();
  }
  std::string echo(const std::string& message) {
    std::string out;
    client->echo(out, message);
    return out;
  }
  std::shared_ptr<apache::thrift::transport::TSocket> socket;
  std::shared_ptr<apache::thrift::transport::TTransport> transport;
  std::unique_ptr<octo_idl::EchoClient> client;
};

/// Apache Thrift's own TNonblockingServer (libevent, framed, TBinaryProtocol) serving Echo on a
/// free loopback port, on a thread of its own; stopped on destruction.
class ThriftNonblockingEchoServer {
 public:
  ThriftNonblockingEchoServer() : handler_(std::make_shared<EchoHandler>()) {
    auto socket =
        std::make_shared<apache::thrift::transport::TNonblockingServerSocket>("127.0.0.1", 0);
    server_ = std::make_unique<apache::thrift::server::TNonblockingServer>(
        std::make_shared<octo_idl::EchoProcessor>(handler_),
        std::make_shared<apache::thrift::protocol::TBinaryProtocolFactory>(), socket);
    server_->setServerEventHandler(std::make_shared<Ready>(this, socket));
    thread_ = std::thread([this] { server_->serve(); });
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(30), [this] { return port_ != 0; })) {
      throw std::runtime_error("TNonblockingServer did not start");
    }
  }
  ~ThriftNonblockingEchoServer() {
    server_->stop();
    thread_.join();
  }
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  EchoHandler& handler() { return *handler_; }

 private:
  class Ready : public apache::thrift::server::TServerEventHandler {
   public:
    Ready(ThriftNonblockingEchoServer* owner,
          std::shared_ptr<apache::thrift::transport::TNonblockingServerSocket> socket)
        : owner_(owner), socket_(std::move(socket)) {}
    void preServe() override {
      std::lock_guard<std::mutex> lock(owner_->mu_);
      owner_->port_ = static_cast<uint16_t>(socket_->getListenPort());
      owner_->cv_.notify_all();
    }

   private:
    ThriftNonblockingEchoServer* owner_;
    std::shared_ptr<apache::thrift::transport::TNonblockingServerSocket> socket_;
  };

  std::shared_ptr<EchoHandler> handler_;
  std::unique_ptr<apache::thrift::server::TNonblockingServer> server_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint16_t port_ = 0;
};

/// A child process whose stdout is read line by line; SIGTERM and reaped on destruction.
class ChildProcess {
 public:
  explicit ChildProcess(const std::vector<std::string>& argv) {
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    if (rc != 0) {
      close(fds[0]);
      throw std::runtime_error("cannot start " + argv[0] + ": " + std::to_string(rc));
    }
    out_ = fds[0];
  }
  ~ChildProcess() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    close(out_);
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  /// The next line of output; throws if none comes within `limit` or the child exits.
  std::string read_line(std::chrono::seconds limit) {
    auto until = std::chrono::steady_clock::now() + limit;
    std::string line;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) throw std::runtime_error("no output line in time: " + line);
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char c = 0;
      ssize_t n = read(out_, &c, 1);
      if (n <= 0) throw std::runtime_error("the child exited before a whole line: " + line);
      if (c == '\n') return line;
      line.push_back(c);
    }
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
};

/// The Rust Echo server (octo-bench serve) on a free loopback port; gives its address.
class RustEchoServer {
 public:
  RustEchoServer()
      : child_({OCTO_BENCH_BIN, "serve", "--addr", "127.0.0.1:0", "--shards", "1"}) {
    // "listening on 127.0.0.1:PORT pid PID (...)"
    std::string line = child_.read_line(std::chrono::seconds(60));
    const std::string prefix = "listening on ";
    if (line.rfind(prefix, 0) != 0) throw std::runtime_error("unexpected: " + line);
    address_ = line.substr(prefix.size(), line.find(' ', prefix.size()) - prefix.size());
  }
  const std::string& address() const { return address_; }

 private:
  ChildProcess child_;
  std::string address_;
};

/// The Echo CALL message for `message`, as generated code writes it.
inline std::string echo_call(const std::string& message, int32_t seqid = 0) {
  octo::thrift::MessageCodec codec;
  codec.begin({});
  codec.out->writeMessageBegin("echo", apache::thrift::protocol::T_CALL, seqid);
  octo_idl::Echo_echo_pargs args;
  args.message = &message;
  args.write(codec.out.get());
  codec.out->writeMessageEnd();
  return std::string(codec.transport->output());
}

/// The Echo REPLY message carrying `value`, as generated code writes it.
inline std::string echo_reply_message(const std::string& value, int32_t seqid = 0) {
  octo::thrift::MessageCodec codec;
  codec.begin({});
  codec.out->writeMessageBegin("echo", apache::thrift::protocol::T_REPLY, seqid);
  octo_idl::Echo_echo_result result;
  result.success = value;
  result.__isset.success = true;
  result.write(codec.out.get());
  codec.out->writeMessageEnd();
  return std::string(codec.transport->output());
}

/// The string an Echo REPLY message carries (throws what an EXCEPTION message holds).
inline std::string echo_result(std::string_view reply) {
  octo::thrift::MessageCodec codec;
  codec.begin(reply);
  std::string name;
  apache::thrift::protocol::TMessageType type;
  int32_t seqid = 0;
  codec.in->readMessageBegin(name, type, seqid);
  if (type == apache::thrift::protocol::T_EXCEPTION) {
    apache::thrift::TApplicationException x;
    x.read(codec.in.get());
    throw x;
  }
  octo_idl::Echo_echo_result result;
  result.read(codec.in.get());
  if (!result.__isset.success) throw std::runtime_error("no result in the reply");
  return result.success;
}

inline std::string text_of_size(size_t n) {
  std::string s(n, 'x');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

}  // namespace octo_test

#endif  // OCTO_TESTS_SUPPORT_HPP
