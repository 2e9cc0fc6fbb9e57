// The Apache Thrift C++ bench peer: the Echo reference service (idl/echo.thrift, PROTOCOL.md
// section 6) on Thrift's own TNonblockingServer (libevent, framed transport, TBinaryProtocol),
// built from Debian's libthrift-dev exactly as a Thrift C++ user would deploy it.
//
// Usage: echo_server PORT [IO_THREADS] [WORKER_THREADS]
//   IO_THREADS      libevent I/O threads (default 1; the first also accepts)
//   WORKER_THREADS  0 (default): calls run on the I/O thread, the fastest setup on one core;
//                   N > 0: calls run on a ThreadManager pool of N threads, Thrift's other setup.
// Environment: OCTO_PEER_BIND (listen address, default 127.0.0.1),
//              OCTO_PEER_MAX_FRAME_BYTES (largest frame accepted, default 16 MiB).
// Prints "thrift-cpp-echo pid PID listening on PORT" once listening; serves until SIGTERM/SIGINT,
// then stops the server and exits 0.

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include <thrift/concurrency/ThreadFactory.h>
#include <thrift/concurrency/ThreadManager.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/server/TNonblockingServer.h>
#include <thrift/transport/TNonblockingServerSocket.h>

#include "Echo.h"

using apache::thrift::concurrency::ThreadFactory;
using apache::thrift::concurrency::ThreadManager;
using apache::thrift::protocol::TBinaryProtocolFactory;
using apache::thrift::server::TNonblockingServer;
using apache::thrift::server::TServerEventHandler;
using apache::thrift::transport::TNonblockingServerSocket;

namespace {

class EchoHandler : public octo_idl::EchoIf {
 public:
  void echo(std::string& result, const std::string& message) override { result = message; }
};

// Announces readiness once the listening socket exists (TNonblockingServer calls preServe then).
class ReadyAnnouncer : public TServerEventHandler {
 public:
  ReadyAnnouncer(std::shared_ptr<TNonblockingServerSocket> socket, size_t io_threads,
                 size_t workers)
      : socket_(std::move(socket)), io_threads_(io_threads), workers_(workers) {}

  void preServe() override {
    std::printf("thrift-cpp-echo pid %d listening on %d (io threads %zu, workers %zu)\n",
                static_cast<int>(getpid()), socket_->getListenPort(), io_threads_, workers_);
    std::fflush(stdout);
  }

 private:
  std::shared_ptr<TNonblockingServerSocket> socket_;
  size_t io_threads_;
  size_t workers_;
};

bool parse_count(const char* text, long min, long max, long* out) {
  char* end = nullptr;
  long value = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || value < min || value > max) return false;
  *out = value;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  long port = 0, io_threads = 1, workers = 0;
  if (argc < 2 || argc > 4 || !parse_count(argv[1], 0, 65535, &port) ||
      (argc > 2 && !parse_count(argv[2], 1, 64, &io_threads)) ||
      (argc > 3 && !parse_count(argv[3], 0, 1024, &workers))) {
    std::fprintf(stderr, "usage: %s PORT [IO_THREADS 1..64] [WORKER_THREADS 0..1024]\n", argv[0]);
    return 2;
  }
  const char* bind = std::getenv("OCTO_PEER_BIND");
  long max_frame = 16L << 20;
  if (const char* text = std::getenv("OCTO_PEER_MAX_FRAME_BYTES")) {
    if (!parse_count(text, 64, 1L << 30, &max_frame)) {
      std::fprintf(stderr, "OCTO_PEER_MAX_FRAME_BYTES must be 64..2^30\n");
      return 2;
    }
  }

  // Block the stop signals in every thread; one thread waits for them and stops the server.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto socket = std::make_shared<TNonblockingServerSocket>(
      bind != nullptr ? std::string(bind) : std::string("127.0.0.1"), static_cast<int>(port));
  socket->setAcceptBacklog(1024);
  socket->setAcceptCallback([](THRIFT_SOCKET fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  });

  auto processor = std::make_shared<octo_idl::EchoProcessor>(std::make_shared<EchoHandler>());
  auto protocol = std::make_shared<TBinaryProtocolFactory>();
  std::shared_ptr<ThreadManager> thread_manager;
  if (workers > 0) {
    thread_manager = ThreadManager::newSimpleThreadManager(static_cast<size_t>(workers));
    thread_manager->threadFactory(std::make_shared<ThreadFactory>());
    thread_manager->start();
  }
  TNonblockingServer server(processor, protocol, socket, thread_manager);
  server.setNumIOThreads(static_cast<size_t>(io_threads));
  server.setMaxFrameSize(static_cast<size_t>(max_frame));
  server.setServerEventHandler(std::make_shared<ReadyAnnouncer>(
      socket, static_cast<size_t>(io_threads), static_cast<size_t>(workers)));

  std::thread stopper([&server, stop_signals] {
    int signo = 0;
    sigwait(&stop_signals, &signo);
    server.stop();
  });

  try {
    server.serve();
  } catch (const std::exception& e) {
    // serve() failed before any stop signal (e.g. the port is taken): nothing to shut down.
    std::fprintf(stderr, "thrift-cpp-echo: %s\n", e.what());
    std::fflush(stderr);
    _exit(1);
  }
  stopper.join();
  if (thread_manager) thread_manager->stop();
  return 0;
}
