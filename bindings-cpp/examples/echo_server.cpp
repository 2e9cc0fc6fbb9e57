// The Echo reference service (idl/echo.thrift) as a C++ team writes it on octo: a generated
// EchoProcessor over their handler, served by octo::thrift::Server for OCTO callers (service
// "Echo") and plain framed Thrift callers on one port.
//
//   echo_server [--addr 127.0.0.1:9001] [--shards N] [--cpus 0,1] [--service Echo]
//               [--handler thrift|direct]
//
// --handler thrift (default): the generated processor, as a C++ team deploys it.
// --handler direct: the same service as an octo::Server handler that reads the Echo CALL and
//   writes the REPLY itself (what the Rust Echo server does), to measure the binding alone.
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

/// Reads a big-endian i32 at `at`, if the bytes are there.
bool read_i32(std::string_view b, size_t at, uint32_t* out) {
  if (at > b.size() || b.size() - at < 4) return false;
  auto u = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(b[at + i])); };
  *out = (u(0) << 24) | (u(1) << 16) | (u(2) << 8) | u(3);
  return true;
}

/// Echo without the Thrift library: the CALL is `80 01 00 01, name, seqid, {1: string}`; the
/// REPLY is `80 01 00 02, name, seqid, {0: string}`. Anything else is a ProtocolException.
void direct_echo(const octo::Request& request, octo::Responder& responder) {
  std::string_view body = request.body();
  uint32_t version = 0, name_len = 0, seqid = 0, len = 0;
  bool ok = read_i32(body, 0, &version) && version == 0x80010001u &&
            read_i32(body, 4, &name_len) && name_len <= body.size() - 8 &&
            read_i32(body, 8 + name_len, &seqid);
  size_t at = 12 + static_cast<size_t>(name_len);  // the args struct
  ok = ok && body.size() - at >= 3 && body[at] == 11 && body[at + 1] == 0 && body[at + 2] == 1 &&
       read_i32(body, at + 3, &len) && len <= body.size() - at - 7;
  if (!ok) {
    responder.error(octo::Status::ProtocolException, "not an Echo call");
    return;
  }
  // Written straight into the connection's output: 4 + 4 + name + 4, field header, 4 + bytes, stop.
  size_t reply_size = 12 + name_len + 3 + 4 + len + 1;
  responder.ok_with(reply_size, [&](uint8_t* out, size_t capacity) -> size_t {
    if (capacity < reply_size) return 0;
    const uint8_t reply_version[4] = {0x80, 0x01, 0x00, 0x02};
    std::memcpy(out, reply_version, 4);
    std::memcpy(out + 4, body.data() + 4, 4 + name_len + 4);  // name and seqid as they came
    uint8_t* p = out + 12 + name_len;
    p[0] = 11;  // field 0: string
    p[1] = 0;
    p[2] = 0;
    std::memcpy(p + 3, body.data() + at + 3, 4 + len);  // length and bytes
    p[7 + len] = 0;                                      // end of the result struct
    return reply_size;
  });
}

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--addr HOST:PORT] [--shards N] [--cpus LIST] [--service NAME] "
               "[--handler thrift|direct]\n",
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
  std::string addr = "127.0.0.1:9001", service = "Echo", cpus, handler = "thrift";
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
    } else if (key == "--handler" && (value == "thrift" || value == "direct")) {
      handler = value;
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
    octo::Server server(engine, addr);
    if (handler == "thrift") {
      server.service(service, octo::thrift::processor_handler(processor));
    } else {
      server.service(service, direct_echo);
    }
    server.start();
    std::string host = addr.substr(0, addr.rfind(':'));
    std::printf("listening on %s:%u pid %d (octo %s, C++ %s handler, %u shards)\n",
                host.c_str(), server.port(), static_cast<int>(getpid()),
                std::string(octo::version()).c_str(), handler.c_str(), engine.shard_count());
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
