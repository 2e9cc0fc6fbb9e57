// The server adapter's own cost per call, without network or libocto: a generated
// EchoProcessor run over octo::thrift::MessageCodec on a 1 KiB Echo CALL, as
// octo::thrift::process does for every call on a shard. Prints ns per call for several rounds
// (compare the minimum before and after a change to thrift.hpp's hot path).
//
//   build/bench/adapter_bench [calls_per_round=1000000] [rounds=7]
#include <octo/thrift.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "Echo.h"

namespace {
class EchoHandler : public octo_idl::EchoIf {
 public:
  void echo(std::string& result, const std::string& message) override { result = message; }
};
}  // namespace

int main(int argc, char** argv) {
  long calls = argc > 1 ? std::atol(argv[1]) : 1000000;
  int rounds = argc > 2 ? std::atoi(argv[2]) : 7;
  if (calls <= 0 || rounds <= 0) return 2;

  octo::thrift::MessageCodec request;
  request.begin({});
  request.out->writeMessageBegin("echo", apache::thrift::protocol::T_CALL, 1);
  octo_idl::Echo_echo_pargs args;
  std::string message(1024, 'x');
  args.message = &message;
  args.write(request.out.get());
  request.out->writeMessageEnd();
  std::string body(request.transport->output());

  octo_idl::EchoProcessor processor(std::make_shared<EchoHandler>());
  octo::thrift::MessageCodec codec;
  std::thread([] {}).join();  // a multi-threaded process, as a server is (atomic refcounts)
  size_t bytes = 0;
  double best = 1e18;
  for (int r = 0; r < rounds; ++r) {
    auto start = std::chrono::steady_clock::now();
    for (long i = 0; i < calls; ++i) {
      codec.begin(body);
      processor.process(codec.in, codec.out, nullptr);
      bytes += codec.transport->output().size();
    }
    double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start)
                    .count() / static_cast<double>(calls);
    best = std::min(best, ns);
    std::printf("round %d: %.1f ns/call\n", r + 1, ns);
  }
  std::printf("{\"bench\":\"adapter\",\"calls\":%ld,\"rounds\":%d,\"min_ns_per_call\":%.1f}\n", calls,
              rounds, best);
  return bytes == 0;
}
