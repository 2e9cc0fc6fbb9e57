// octo's C++ client against servers that are not octo's C++ server: the Rust Echo server
// (octo-bench serve, a real process) over OCTO and plain Thrift, and Apache Thrift's own
// TNonblockingServer (plain framed Thrift), each called by a generated EchoClient through octo.
#include <octo/thrift.hpp>

#include <gtest/gtest.h>

#include <thread>

#include "support.hpp"

namespace {

octo::Engine test_engine() { return octo::Engine(octo::EngineConfig().shards(2).pin_shards(false)); }

std::string echo_through(octo::thrift::Client& client, const std::string& message) {
  octo_idl::EchoClient echo(client.protocol());
  std::string out;
  echo.echo(out, message);
  return out;
}

TEST(RustEchoServer, AGeneratedCppClientCallsItOverOcto) {
  octo_test::RustEchoServer rust;
  octo::thrift::Client client(test_engine(), octo::ClientConfig("Echo").endpoint(rust.address()));
  std::string message = octo_test::text_of_size(1024);
  EXPECT_EQ(echo_through(client, message), message);
}

TEST(RustEchoServer, AGeneratedCppClientCallsItOverPlainThrift) {
  octo_test::RustEchoServer rust;
  octo::thrift::Client client(
      test_engine(), octo::ClientConfig("Echo").endpoint(rust.address(), octo::Framing::Thrift));
  EXPECT_EQ(echo_through(client, "plain thrift to rust"), "plain thrift to rust");
}

TEST(RustEchoServer, AnUnknownServiceIsAnsweredWithServiceException) {
  octo_test::RustEchoServer rust;
  octo::Client client(test_engine(), octo::ClientConfig("NoSuchService").endpoint(rust.address()));
  try {
    client.call_sync(octo_test::echo_call("x"));
    FAIL() << "the call succeeded";
  } catch (const octo::Error& e) {
    EXPECT_EQ(e.status(), octo::Status::ServiceException);
    EXPECT_FALSE(e.body().empty());  // the TApplicationException the server wrote
  }
}

TEST(RustEchoServer, ManyThreadsCallItAtOnce) {
  constexpr int kThreads = 8, kCalls = 100;
  octo_test::RustEchoServer rust;
  octo::thrift::Client client(test_engine(), octo::ClientConfig("Echo").endpoint(rust.address()));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      octo_idl::EchoClient echo(client.protocol());
      for (int i = 0; i < kCalls; ++i) {
        std::string out, message = std::to_string(t) + "." + std::to_string(i);
        echo.echo(out, message);
        if (out != message) wrong.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(ThriftNonblockingServer, AGeneratedCppClientCallsItThroughOcto) {
  octo_test::ThriftNonblockingEchoServer thrift;
  octo::thrift::Client client(
      test_engine(), octo::ClientConfig("Echo").endpoint(thrift.address(), octo::Framing::Thrift));
  std::string message = octo_test::text_of_size(1024);
  EXPECT_EQ(echo_through(client, message), message);
  EXPECT_EQ(thrift.handler().calls.load(), 1);
}

TEST(ThriftNonblockingServer, ItsTApplicationExceptionReachesTheGeneratedClient) {
  octo_test::ThriftNonblockingEchoServer thrift;
  octo::thrift::Client client(
      test_engine(), octo::ClientConfig("Echo").endpoint(thrift.address(), octo::Framing::Thrift));
  try {
    echo_through(client, "throw");
    FAIL() << "no exception";
  } catch (const apache::thrift::TApplicationException& e) {
    EXPECT_STREQ(e.what(), "asked to throw");
  }
  EXPECT_EQ(echo_through(client, "after"), "after");  // the connection is still good
}

TEST(ThriftNonblockingServer, ManyThreadsCallItAtOnce) {
  constexpr int kThreads = 8, kCalls = 100;
  octo_test::ThriftNonblockingEchoServer thrift;
  octo::thrift::Client client(
      test_engine(), octo::ClientConfig("Echo").endpoint(thrift.address(), octo::Framing::Thrift));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      octo_idl::EchoClient echo(client.protocol());
      for (int i = 0; i < kCalls; ++i) {
        std::string out, message = std::to_string(t) + "-" + std::to_string(i);
        echo.echo(out, message);
        if (out != message) wrong.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(thrift.handler().calls.load(), kThreads * kCalls);
}

}  // namespace
