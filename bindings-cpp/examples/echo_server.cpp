// The Echo reference service (idl/echo.thrift) as a C++ team writes it on octo: a generated
// EchoProcessor over their handler, served by octo::thrift::Server for OCTO callers (service
// "Echo") and plain framed Thrift callers on one port.
//
//   echo_server [--addr 127.0.0.1:9001] [--shards N] [--cpus 0,1] [--service Echo]
//
// Prints "listening on ADDR:PORT pid PID" when ready; serves until SIGINT or SIGTERM, then
// shuts down gracefully.
#include <octo/thrift.hpp>

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "Echo.h"

namespace {

class EchoHandler : public octo_idl::EchoIf {
 public:
  void echo(std::string& result, const std::string& message) override { result = message; }
};

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--addr HOST:PORT] [--shards N] [--cpus LIST] [--service NAME]\n",
               argv0);
  return 2;
}

std::vector<uint32_t> parse_cpus(const std::string& list) {
  std::vector<uint32_t> cpus;
  std::stringstream in(list);
  std::string part;
  while (std::getline(in, part, ',')) {
    if (!part.empty()) cpus.push_back(static_cast<uint32_t>(std::stoul(part)));
  }
  return cpus;
}

}  // namespace

int main(int argc, char** argv) {
  std::string addr = "127.0.0.1:9001", service = "Echo", cpus;
  uint32_t shards = 1;
  for (int i = 1; i < argc; ++i) {
    std::string key = argv[i];
    if (i + 1 >= argc) return usage(argv[0]);
    std::string value = argv[++i];
    if (key == "--addr") {
      addr = value;
    } else if (key == "--shards") {
      shards = static_cast<uint32_t>(std::strtoul(value.c_str(), nullptr, 10));
    } else if (key == "--cpus") {
      cpus = value;
    } else if (key == "--service") {
      service = value;
    } else {
      return usage(argv[0]);
    }
  }

  // Block the stop signals in every thread (the shards start after this); wait for them here.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  try {
    octo::EngineConfig config;
    config.shards(shards);
    if (!cpus.empty()) config.cpus(parse_cpus(cpus));
    octo::Engine engine(config);
    auto processor = std::make_shared<octo_idl::EchoProcessor>(std::make_shared<EchoHandler>());
    octo::thrift::Server server(engine, addr, service, processor);
    server.start();
    std::string host = addr.substr(0, addr.rfind(':'));
    std::printf("listening on %s:%u pid %d (octo %s, C++ thrift adapter, %u shards)\n",
                host.c_str(), server.port(), static_cast<int>(getpid()),
                std::string(octo::version()).c_str(), engine.shard_count());
    std::fflush(stdout);
    int signo = 0;
    sigwait(&stop, &signo);
    server.shutdown(std::chrono::seconds(5));
  } catch (const octo::Error& e) {
    std::fprintf(stderr, "echo_server: %s\n", e.what());
    return 1;
  }
  return 0;
}
