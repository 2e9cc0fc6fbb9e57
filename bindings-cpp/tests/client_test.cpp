// octo::Client and octo::thrift::Client: a generated EchoClient calling through octo, C++ to
// C++ over OCTO and plain Thrift; futures and callbacks on the raw client.
#include <octo/thrift.hpp>

#include <gtest/gtest.h>

#include <thrift/TApplicationException.h>
#include <thrift/protocol/TBinaryProtocol.h>

#include <future>
#include <thread>

#include "support.hpp"

namespace {

using octo_test::echo_call;
using octo_test::echo_result;
using octo_test::EchoHandler;

/// An octo C++ Echo server (generated EchoProcessor on octo::thrift::Server) and an engine.
class CppToCpp : public ::testing::Test {
 protected:
  CppToCpp()
      : engine(octo::EngineConfig().shards(2).pin_shards(false)),
        handler(std::make_shared<EchoHandler>()),
        server(engine, "127.0.0.1:0", "Echo", std::make_shared<octo_idl::EchoProcessor>(handler)) {
    server.start();
  }

  octo::ClientConfig config(octo::Framing framing = octo::Framing::Octo) const {
    return octo::ClientConfig("Echo")
        .endpoint("127.0.0.1:" + std::to_string(server.port()), framing)
        .timeout(std::chrono::seconds(20));
  }

  octo::Engine engine;
  std::shared_ptr<EchoHandler> handler;
  octo::thrift::Server server;
};

TEST_F(CppToCpp, AGeneratedClientCallsThroughOctoOverOcto) {
  octo::thrift::Client client(engine, config());
  octo_idl::EchoClient echo(client.protocol());
  std::string out;
  std::string message = octo_test::text_of_size(1024);
  echo.echo(out, message);
  EXPECT_EQ(out, message);
  EXPECT_EQ(handler->calls.load(), 1);
}

TEST_F(CppToCpp, AGeneratedClientCallsThroughOctoOverPlainThrift) {
  octo::thrift::Client client(engine, config(octo::Framing::Thrift));
  octo_idl::EchoClient echo(client.protocol());
  std::string out;
  echo.echo(out, "plain");
  EXPECT_EQ(out, "plain");
}

TEST_F(CppToCpp, ManyCallsInARowOnOneGeneratedClient) {
  octo::thrift::Client client(engine, config());
  octo_idl::EchoClient echo(client.protocol());
  for (int i = 0; i < 300; ++i) {
    std::string out, message = "call " + std::to_string(i);
    echo.echo(out, message);
    ASSERT_EQ(out, message);
  }
}

TEST_F(CppToCpp, TheAnswerCarriesTheSeqidTheCallerWrote) {
  // EchoConcurrentClient numbers its calls and refuses an answer with another seqid.
  octo::thrift::Client client(engine, config());
  octo_idl::EchoConcurrentClient echo(
      client.protocol(), std::make_shared<apache::thrift::async::TConcurrentClientSyncInfo>());
  for (int i = 0; i < 3; ++i) {
    std::string out;
    echo.echo(out, "n" + std::to_string(i));
    EXPECT_EQ(out, "n" + std::to_string(i));
  }
}

TEST_F(CppToCpp, AOneMebibyteMessageGoesBothWays) {
  octo::thrift::Client client(engine, config());
  octo_idl::EchoClient echo(client.protocol());
  std::string out, message = octo_test::text_of_size(1 << 20);
  echo.echo(out, message);
  EXPECT_EQ(out, message);
}

TEST_F(CppToCpp, AFutureGivesTheReply) {
  octo::Client client(engine, config());
  std::future<octo::Buffer> reply = client.call(echo_call("future"));
  EXPECT_EQ(echo_result(reply.get().view()), "future");
}

TEST_F(CppToCpp, ACallbackReceivesTheReplyOnAShardThread) {
  octo::Client client(engine, config());
  std::promise<std::string> got;
  std::thread::id caller = std::this_thread::get_id();
  std::promise<bool> on_other_thread;
  client.call(echo_call("callback"), [&](octo::CallResult result) {
    on_other_thread.set_value(std::this_thread::get_id() != caller);
    try {
      got.set_value(echo_result(result.get().view()));
    } catch (...) {
      got.set_exception(std::current_exception());
    }
  });
  EXPECT_EQ(got.get_future().get(), "callback");
  EXPECT_TRUE(on_other_thread.get_future().get());
}

TEST_F(CppToCpp, CallSyncReturnsTheReply) {
  octo::Client client(engine, config());
  EXPECT_EQ(echo_result(client.call_sync(echo_call("sync")).view()), "sync");
}

TEST_F(CppToCpp, AOneWayCallReachesTheServer) {
  octo::Client client(engine, config());
  client.send_one_way(echo_call("one way"));
  // No answer comes back; the handler runs. Wait (bounded) for it to have run.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (handler->calls.load() == 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(handler->calls.load(), 1);
}

TEST_F(CppToCpp, ManyThreadsCallThroughOneClientAtOnce) {
  constexpr int kThreads = 8, kCalls = 200;
  octo::thrift::Client client(engine, config());
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      octo_idl::EchoClient echo(client.protocol());  // one generated client per thread
      for (int i = 0; i < kCalls; ++i) {
        std::string out, message = std::to_string(t) + "/" + std::to_string(i);
        echo.echo(out, message);
        if (out != message) wrong.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(handler->calls.load(), kThreads * kCalls);
}

TEST_F(CppToCpp, ManyFuturesInFlightFromManyThreads) {
  constexpr int kThreads = 4, kCalls = 500;
  octo::Client client(engine, config());
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::pair<std::string, std::future<octo::Buffer>>> calls;
      for (int i = 0; i < kCalls; ++i) {
        std::string message = std::to_string(t) + ":" + std::to_string(i);
        calls.emplace_back(message, client.call(echo_call(message)));
      }
      for (auto& [message, reply] : calls) {
        if (echo_result(reply.get().view()) != message) wrong.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(CppToCpp, AGeneratedCobClientCallsAsynchronously) {
  octo::thrift::Client client(engine, config());
  apache::thrift::protocol::TBinaryProtocolFactory factory;
  octo_idl::EchoCobClient echo(client.channel(), &factory);
  std::promise<std::string> got;
  echo.echo(
      [&got](octo_idl::EchoCobClient* c) {
        try {
          std::string out;
          c->recv_echo(out);
          got.set_value(out);
        } catch (...) {
          got.set_exception(std::current_exception());
        }
      },
      "asynchronously");
  EXPECT_EQ(got.get_future().get(), "asynchronously");
}

TEST_F(CppToCpp, ManyCobClientsInFlightAtOnce) {
  constexpr int kClients = 64;
  octo::thrift::Client client(engine, config());
  auto channel = client.channel();
  apache::thrift::protocol::TBinaryProtocolFactory factory;
  std::vector<std::unique_ptr<octo_idl::EchoCobClient>> clients;
  std::vector<std::promise<std::string>> got(kClients);
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<octo_idl::EchoCobClient>(channel, &factory));
    clients.back()->echo(
        [&got, i](octo_idl::EchoCobClient* c) {
          try {
            std::string out;
            c->recv_echo(out);
            got[i].set_value(out);
          } catch (...) {
            got[i].set_exception(std::current_exception());
          }
        },
        "cob " + std::to_string(i));
  }
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(got[i].get_future().get(), "cob " + std::to_string(i));
  }
}

TEST(ClientConfig, ANonsenseAddressIsRefused) {
  octo::Engine engine(octo::EngineConfig().shards(1).pin_shards(false));
  try {
    octo::Client client(engine, octo::ClientConfig("Echo").endpoint("nowhere"));
    FAIL() << "a client was made for a bad address";
  } catch (const octo::Error& e) {
    EXPECT_EQ(e.status(), octo::Status::InvalidArgument);
  }
}

TEST(ClientConfig, NoEndpointIsRefused) {
  octo::Engine engine(octo::EngineConfig().shards(1).pin_shards(false));
  EXPECT_THROW(octo::Client(engine, octo::ClientConfig("Echo")), octo::Error);
}

}  // namespace
