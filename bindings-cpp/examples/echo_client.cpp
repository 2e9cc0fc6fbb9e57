// The Echo reference service's client as a C++ team writes it on octo: a generated EchoClient
// handed the TProtocol of an octo::thrift::Client (Whale's client pattern). Each thread has its
// own generated client; they share one octo client (multiplexed connections).
//
//   echo_client [--addr 127.0.0.1:9001] [--framing octo|thrift] [--service Echo]
//               [--message hello] [--calls 1] [--threads 1] [--timeout-ms 1000]
//
// Prints the first answer, then how many calls succeeded and how long they took; exits 1 if any
// call failed. Works against any Echo server: octo's (C++ or Rust), Dorado, Whale (thrift), or
// Apache Thrift's own servers (thrift).
#include <octo/thrift.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "Echo.h"

namespace {

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--addr HOST:PORT] [--framing octo|thrift] [--service NAME] "
               "[--message TEXT] [--calls N] [--threads N] [--timeout-ms MS]\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string addr = "127.0.0.1:9001", framing = "octo", service = "Echo", message = "hello";
  long calls = 1, threads = 1, timeout_ms = 1000;
  for (int i = 1; i < argc; ++i) {
    std::string key = argv[i];
    if (i + 1 >= argc) return usage(argv[0]);
    std::string value = argv[++i];
    if (key == "--addr") {
      addr = value;
    } else if (key == "--framing") {
      framing = value;
    } else if (key == "--service") {
      service = value;
    } else if (key == "--message") {
      message = value;
    } else if (key == "--calls") {
      calls = std::strtol(value.c_str(), nullptr, 10);
    } else if (key == "--threads") {
      threads = std::strtol(value.c_str(), nullptr, 10);
    } else if (key == "--timeout-ms") {
      timeout_ms = std::strtol(value.c_str(), nullptr, 10);
    } else {
      return usage(argv[0]);
    }
  }
  if ((framing != "octo" && framing != "thrift") || calls < 1 || threads < 1 || threads > 1024 ||
      timeout_ms < 1) {
    return usage(argv[0]);
  }

  try {
    octo::Engine engine(octo::EngineConfig().shards(1));
    octo::thrift::Client client(
        engine, octo::ClientConfig(service)
                    .endpoint(addr, framing == "octo" ? octo::Framing::Octo : octo::Framing::Thrift)
                    .timeout(std::chrono::milliseconds(timeout_ms)));

    std::atomic<long> ok{0}, failed{0};
    std::atomic<bool> printed{false};
    auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> workers;
    for (long t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        octo_idl::EchoClient echo(client.protocol());
        for (long i = t; i < calls; i += threads) {
          try {
            std::string answer;
            echo.echo(answer, message);
            if (answer == message) {
              ok.fetch_add(1);
            } else {
              failed.fetch_add(1);
            }
            if (!printed.exchange(true)) std::printf("answer: %s\n", answer.c_str());
          } catch (const std::exception& e) {
            if (failed.fetch_add(1) < 5) std::fprintf(stderr, "call failed: %s\n", e.what());
          }
        }
      });
    }
    for (auto& w : workers) w.join();
    double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%ld of %ld calls ok over %s in %.3f s (%.0f calls/s, %ld threads)\n", ok.load(),
                calls, framing.c_str(), secs, static_cast<double>(ok.load()) / secs, threads);
    return failed.load() == 0 ? 0 : 1;
  } catch (const octo::Error& e) {
    std::fprintf(stderr, "echo_client: %s\n", e.what());
    return 1;
  }
}
