// octo::Server with std::function handlers: what a handler sees, answering now or later, and
// how errors reach the caller. The caller is a real Apache Thrift client (plain framed Thrift).
#include <octo/thrift.hpp>

#include <gtest/gtest.h>

#include <thrift/TApplicationException.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "support.hpp"

namespace {

using apache::thrift::TApplicationException;
using octo_test::ThriftSocketClient;

/// The Echo REPLY message for `request` carrying `value` (as generated code writes it).
std::string echo_reply(int32_t seqid, const std::string& value) {
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

/// The message argument of an Echo CALL.
std::string echo_argument(std::string_view body) {
  octo::thrift::MessageCodec codec;
  codec.begin(body);
  std::string name;
  apache::thrift::protocol::TMessageType type;
  int32_t seqid = 0;
  codec.in->readMessageBegin(name, type, seqid);
  octo_idl::Echo_echo_args args;
  args.read(codec.in.get());
  return args.message;
}

octo::Engine test_engine() { return octo::Engine(octo::EngineConfig().shards(2).pin_shards(false)); }

TEST(Server, ListensOnTheFreePortItWasGiven) {
  octo::Server server(test_engine(), "127.0.0.1:0");
  server.service("Echo", [](const octo::Request&, octo::Responder&) {});
  server.start();
  EXPECT_NE(server.port(), 0);
}

TEST(Server, RefusesAnAddressThatDoesNotParse) {
  try {
    octo::Server server(test_engine(), "not an address");
    FAIL() << "a server was made for a bad address";
  } catch (const octo::Error& e) {
    EXPECT_EQ(e.status(), octo::Status::InvalidArgument);
  }
}

TEST(Server, RefusesServicesOnceStarted) {
  octo::Server server(test_engine(), "127.0.0.1:0");
  server.service("Echo", [](const octo::Request&, octo::Responder&) {});
  server.start();
  try {
    server.service("Late", [](const octo::Request&, octo::Responder&) {});
    FAIL() << "a service was added to a running server";
  } catch (const octo::Error& e) {
    EXPECT_EQ(e.status(), octo::Status::Busy);
  }
}

TEST(Server, HandlerSeesTheCallAsItArrived) {
  struct Seen {
    std::string service, method, message;
    int32_t seqid = -1;
    octo::Framing framing = octo::Framing::Octo;
    bool one_way = true;
  };
  auto seen = std::make_shared<Seen>();
  octo::Server server(test_engine(), "127.0.0.1:0");
  server.service("Echo", [seen](const octo::Request& req, octo::Responder& res) {
    seen->service = std::string(req.service());
    seen->method = std::string(req.method());
    seen->seqid = req.thrift_seqid();
    seen->framing = req.framing();
    seen->one_way = req.one_way();
    seen->message = echo_argument(req.body());
    res.ok(echo_reply(req.thrift_seqid(), seen->message));
  });
  server.start();
  ThriftSocketClient client(server.port());
  EXPECT_EQ(client.echo("look"), "look");
  EXPECT_EQ(seen->service, "Echo");  // plain Thrift goes to the default service
  EXPECT_EQ(seen->method, "echo");
  EXPECT_EQ(seen->seqid, 0);  // what generated C++ clients send
  EXPECT_EQ(seen->framing, octo::Framing::Thrift);
  EXPECT_FALSE(seen->one_way);
  EXPECT_EQ(seen->message, "look");
}

TEST(Server, AResponderMovedToAnotherThreadAnswersLater) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<octo::Responder, std::string>> queue;
  std::thread worker;
  octo::Server server(test_engine(), "127.0.0.1:0");
  server.service("Echo", [&](const octo::Request& req, octo::Responder& res) {
    std::lock_guard<std::mutex> lock(mu);
    queue.emplace_back(std::move(res), echo_reply(req.thrift_seqid(), echo_argument(req.body())));
    cv.notify_one();
  });
  server.start();
  worker = std::thread([&] {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return !queue.empty(); });
    auto [responder, reply] = std::move(queue.front());
    lock.unlock();
    responder.ok(reply);
  });
  ThriftSocketClient client(server.port());
  EXPECT_EQ(client.echo("later"), "later");
  worker.join();
}

TEST(Server, AnswerGivenAsABufferIsSentWithoutLoss) {
  octo::Server server(test_engine(), "127.0.0.1:0");
  server.service("Echo", [](const octo::Request& req, octo::Responder& res) {
    res.ok(octo::Buffer::copy_of(echo_reply(req.thrift_seqid(), echo_argument(req.body()))));
  });
  server.start();
  ThriftSocketClient client(server.port());
  EXPECT_EQ(client.echo("buffered"), "buffered");
}

TEST(Server, AnAnswerWrittenInPlaceIsSentAsWritten) {
  octo::Server server(test_engine(), "127.0.0.1:0");
  server.service("Echo", [](const octo::Request& req, octo::Responder& res) {
    std::string reply = echo_reply(req.thrift_seqid(), echo_argument(req.body()));
    res.ok_with(reply.size(), [&](uint8_t* out, size_t capacity) {
      size_t n = std::min(capacity, reply.size());
      std::memcpy(out, reply.data(), n);
      return n;
    });
  });
  server.start();
  ThriftSocketClient client(server.port());
  EXPECT_EQ(client.echo("in place"), "in place");
}

TEST(Server, AWriterThatThrowsHasItsExceptionRethrownToTheHandler) {
  std::promise<std::string> seen;
  octo::Server server(test_engine(), "127.0.0.1:0");
  server.service("Echo", [&](const octo::Request&, octo::Responder& res) {
    try {
      res.ok_with(16, [](uint8_t*, size_t) -> size_t { throw std::runtime_error("writer broke"); });
      seen.set_value("no exception");
    } catch (const std::runtime_error& e) {
      seen.set_value(e.what());
    }
  });
  server.start();
  octo::Client client(server.engine(), octo::ClientConfig("Echo").endpoint(
                                           "127.0.0.1:" + std::to_string(server.port())));
  EXPECT_TRUE(client.call_sync(octo_test::echo_call("x")).empty());  // answered, empty body
  EXPECT_EQ(seen.get_future().get(), "writer broke");
}

TEST(Server, ASecondAnswerIsRefused) {
  std::atomic<int> second{-1};
  octo::Server server(test_engine(), "127.0.0.1:0");
  server.service("Echo", [&](const octo::Request& req, octo::Responder& res) {
    std::string reply = echo_reply(req.thrift_seqid(), "first");
    res.ok(reply);
    try {
      res.ok(reply);
    } catch (const octo::Error& e) {
      second = static_cast<int>(e.status());
    }
  });
  server.start();
  ThriftSocketClient client(server.port());
  EXPECT_EQ(client.echo("x"), "first");
  EXPECT_EQ(second.load(), static_cast<int>(octo::Status::AlreadyAnswered));
}

TEST(Server, AnOctoErrorThrownByAHandlerAnswersWithItsStatus) {
  octo::Server server(test_engine(), "127.0.0.1:0");
  server.service("Echo", [](const octo::Request&, octo::Responder&) {
    throw octo::Error(octo::Status::SecurityException, "not allowed");
  });
  server.start();
  ThriftSocketClient client(server.port());
  try {
    client.echo("x");
    FAIL() << "no exception";
  } catch (const TApplicationException& e) {
    EXPECT_NE(std::string(e.what()).find("not allowed"), std::string::npos) << e.what();
  }
  EXPECT_EQ(server.stats().answers_by_status[7], 1u);
}

TEST(Server, AnyOtherExceptionAnswersWithRuntimeException) {
  octo::Server server(test_engine(), "127.0.0.1:0");
  server.service("Echo", [](const octo::Request&, octo::Responder&) {
    throw std::logic_error("bug in the handler");
  });
  server.start();
  ThriftSocketClient client(server.port());
  EXPECT_THROW(client.echo("x"), TApplicationException);
  EXPECT_EQ(server.stats().answers_by_status[2], 1u);
}

TEST(Server, AResponderDroppedUnansweredAnswersWithRpcException) {
  octo::Server server(test_engine(), "127.0.0.1:0");
  server.service("Echo", [](const octo::Request&, octo::Responder& res) {
    octo::Responder dropped = std::move(res);
  });
  server.start();
  ThriftSocketClient client(server.port());
  EXPECT_THROW(client.echo("x"), TApplicationException);
  EXPECT_EQ(server.stats().answers_by_status[3], 1u);
}

TEST(Server, CountsTheCallsItServed) {
  octo::Server server(test_engine(), "127.0.0.1:0");
  server.service("Echo", [](const octo::Request& req, octo::Responder& res) {
    res.ok(echo_reply(req.thrift_seqid(), echo_argument(req.body())));
  });
  server.start();
  {
    ThriftSocketClient client(server.port());
    for (int i = 0; i < 5; ++i) client.echo("n");
  }
  octo::ServerStats stats = server.stats();
  EXPECT_EQ(stats.requests, 5u);
  EXPECT_EQ(stats.answers_by_status[0], 5u);
  EXPECT_GE(stats.connections_accepted, 1u);
}

TEST(Server, AHandlerReadsItsOwnServersStats) {
  octo::Server server(test_engine(), "127.0.0.1:0");
  std::atomic<uint64_t> seen{0};
  server.service("Echo", [&server, &seen](const octo::Request& req, octo::Responder& res) {
    seen = server.stats().requests;  // on a shard thread: read without asking the shards
    res.ok(echo_reply(req.thrift_seqid(), echo_argument(req.body())));
  });
  server.start();
  ThriftSocketClient client(server.port());
  EXPECT_EQ(client.echo("a"), "a");
  EXPECT_EQ(client.echo("b"), "b");
  EXPECT_EQ(seen.load(), 2u);  // the second call counts itself
}

TEST(Server, ShutdownRefusesNewConnections) {
  octo::Server server(test_engine(), "127.0.0.1:0");
  server.service("Echo", [](const octo::Request& req, octo::Responder& res) {
    res.ok(echo_reply(req.thrift_seqid(), echo_argument(req.body())));
  });
  server.start();
  uint16_t port = server.port();
  server.shutdown(std::chrono::milliseconds(100));
  EXPECT_THROW(
      {
        ThriftSocketClient client(port);
        client.echo("x");
      },
      apache::thrift::transport::TTransportException);
}

}  // namespace
