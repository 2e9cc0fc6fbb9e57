// octo::thrift::Server runs a generated TProcessor; a real Apache Thrift C++ client (TSocket +
// TFramedTransport + TBinaryProtocol) calls it over plain framed Thrift.
#include <octo/thrift.hpp>

#include <gtest/gtest.h>

#include <thrift/TApplicationException.h>

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "support.hpp"

namespace {

using apache::thrift::TApplicationException;
using octo_test::EchoHandler;
using octo_test::ThriftSocketClient;

class ThriftServerTest : public ::testing::Test {
 protected:
  ThriftServerTest()
      : engine(octo::EngineConfig().shards(2).pin_shards(false)),
        handler(std::make_shared<EchoHandler>()),
        server(engine, "127.0.0.1:0", "Echo", std::make_shared<octo_idl::EchoProcessor>(handler)) {
    server.start();
  }

  octo::Engine engine;
  std::shared_ptr<EchoHandler> handler;
  octo::thrift::Server server;
};

TEST_F(ThriftServerTest, AThriftClientGetsItsMessageEchoed) {
  ThriftSocketClient client(server.port());
  std::string message = octo_test::text_of_size(1024);
  EXPECT_EQ(client.echo(message), message);
  EXPECT_EQ(handler->calls.load(), 1);
}

TEST_F(ThriftServerTest, ManyCallsOnOneConnectionEachGetTheirOwnAnswer) {
  ThriftSocketClient client(server.port());
  for (int i = 0; i < 200; ++i) {
    std::string message = "call " + std::to_string(i);
    ASSERT_EQ(client.echo(message), message);
  }
}

TEST_F(ThriftServerTest, AOneMebibyteMessageComesBackWhole) {
  ThriftSocketClient client(server.port());
  std::string message = octo_test::text_of_size(1 << 20);
  EXPECT_EQ(client.echo(message), message);
}

TEST_F(ThriftServerTest, AnEmptyMessageIsEchoed) {
  ThriftSocketClient client(server.port());
  EXPECT_EQ(client.echo(""), "");
}

TEST_F(ThriftServerTest, AHandlerExceptionReachesTheClientAsTApplicationException) {
  ThriftSocketClient client(server.port());
  try {
    client.echo("throw");
    FAIL() << "no exception";
  } catch (const TApplicationException& e) {
    // Generated processors wrap the handler's std::exception as type UNKNOWN with its text.
    EXPECT_STREQ(e.what(), "asked to throw");
  }
  // ... reported with OCTO status 2 (the handler failed unexpectedly), and the connection
  // keeps working.
  EXPECT_EQ(server.stats().answers_by_status[2], 1u);
  EXPECT_EQ(client.echo("after"), "after");
}

TEST_F(ThriftServerTest, AnUnknownMethodIsAnsweredWithServiceException) {
  ThriftSocketClient client(server.port());
  // Send a call for a method Echo does not have, through the generated client's protocol.
  auto protocol = client.client->getOutputProtocol();
  protocol->writeMessageBegin("shout", apache::thrift::protocol::T_CALL, 7);
  octo_idl::Echo_echo_pargs args;
  std::string message = "x";
  args.message = &message;
  args.write(protocol.get());
  protocol->writeMessageEnd();
  protocol->getTransport()->writeEnd();
  protocol->getTransport()->flush();
  auto in = client.client->getInputProtocol();
  std::string name;
  apache::thrift::protocol::TMessageType type;
  int32_t seqid = 0;
  in->readMessageBegin(name, type, seqid);
  EXPECT_EQ(type, apache::thrift::protocol::T_EXCEPTION);
  EXPECT_EQ(seqid, 7);
  TApplicationException x;
  x.read(in.get());
  in->readMessageEnd();
  in->getTransport()->readEnd();
  EXPECT_EQ(x.getType(), TApplicationException::UNKNOWN_METHOD);
  EXPECT_EQ(server.stats().answers_by_status[8], 1u);
}

TEST_F(ThriftServerTest, ManyClientsAtOnceAllGetTheirOwnAnswers) {
  constexpr int kClients = 16, kCalls = 100;
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      ThriftSocketClient client(server.port());
      for (int i = 0; i < kCalls; ++i) {
        std::string message = std::to_string(c) + ":" + std::to_string(i);
        if (client.echo(message) != message) wrong.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(handler->calls.load(), kClients * kCalls);
}

/// Echo whose calls block until `parties` of them are inside at once.
class BarrierEchoHandler : public octo_idl::EchoIf {
 public:
  explicit BarrierEchoHandler(int parties) : parties_(parties) {}
  void echo(std::string& result, const std::string& message) override {
    std::unique_lock<std::mutex> lock(mu_);
    ++inside_;
    cv_.notify_all();
    if (!cv_.wait_for(lock, std::chrono::seconds(60), [this] { return inside_ >= parties_; })) {
      throw std::runtime_error("the other calls never arrived");
    }
    result = message;
  }

 private:
  int parties_;
  int inside_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
};

TEST(ThriftServerWorkers, BlockingHandlersRunOnWorkersWithoutStallingTheShard) {
  constexpr int kCallers = 4;
  octo::thrift::Workers workers(kCallers);
  octo::Engine engine(octo::EngineConfig().shards(1).pin_shards(false));
  octo::thrift::Server server(
      engine, "127.0.0.1:0", "Echo",
      std::make_shared<octo_idl::EchoProcessor>(std::make_shared<BarrierEchoHandler>(kCallers)),
      workers.executor());
  server.start();
  std::vector<std::thread> callers;
  std::atomic<int> ok{0};
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&, i] {
      ThriftSocketClient client(server.port());
      if (client.echo(std::to_string(i)) == std::to_string(i)) ok.fetch_add(1);
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(ok.load(), kCallers);
}

TEST(ThriftServerWorkers, AFullWorkerQueueAnswersDegradeException) {
  octo::thrift::Workers workers(1, /*max_queued=*/0);
  octo::Engine engine(octo::EngineConfig().shards(1).pin_shards(false));
  octo::thrift::Server server(
      engine, "127.0.0.1:0", "Echo",
      std::make_shared<octo_idl::EchoProcessor>(std::make_shared<EchoHandler>()),
      workers.executor());
  server.start();
  ThriftSocketClient client(server.port());
  EXPECT_THROW(client.echo("x"), TApplicationException);
  EXPECT_EQ(server.stats().answers_by_status[6], 1u);
}

}  // namespace
