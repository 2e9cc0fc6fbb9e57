// Timeouts and errors as a C++ caller sees them: every failure is an octo::Error with the OCTO
// status (raw client), or what Thrift C++ callers expect (TApplicationException for a server's
// error answer, octo::thrift::TransportError for failures without one).
#include <octo/thrift.hpp>

#include <gtest/gtest.h>

#include <thrift/TApplicationException.h>
#include <thrift/protocol/TBinaryProtocol.h>

#include <mutex>
#include <vector>

#include "support.hpp"

namespace {

using octo_test::echo_call;

/// A server whose "Echo" service keeps every Responder unanswered until the test ends, and
/// whose "Secure" service refuses every call with SecurityException.
class SilentServer : public ::testing::Test {
 protected:
  SilentServer() : engine(octo::EngineConfig().shards(1).pin_shards(false)), server(engine, "127.0.0.1:0") {
    server.service("Echo", [this](const octo::Request&, octo::Responder& res) {
      std::lock_guard<std::mutex> lock(mu);
      held.push_back(std::move(res));
    });
    server.service("Secure", [](const octo::Request&, octo::Responder& res) {
      res.error(octo::Status::SecurityException, "who are you");
    });
    server.start();
  }
  ~SilentServer() override {
    std::lock_guard<std::mutex> lock(mu);
    held.clear();  // answered (RpcException) before the server goes
  }

  octo::ClientConfig config(const std::string& service = "Echo") const {
    return octo::ClientConfig(service)
        .endpoint("127.0.0.1:" + std::to_string(server.port()))
        .timeout(std::chrono::seconds(30));
  }
  size_t held_count() {
    std::lock_guard<std::mutex> lock(mu);
    return held.size();
  }

  octo::Engine engine;
  octo::Server server;
  std::mutex mu;
  std::vector<octo::Responder> held;
};

TEST_F(SilentServer, ACallWithNoAnswerTimesOut) {
  octo::Client client(engine, config());
  try {
    client.call_sync(echo_call("x"), std::chrono::milliseconds(100));
    FAIL() << "the call was answered";
  } catch (const octo::Error& e) {
    EXPECT_EQ(e.status(), octo::Status::Timeout);
    EXPECT_TRUE(e.is_timeout());
  }
}

TEST_F(SilentServer, AFutureDeliversTheTimeout) {
  octo::Client client(engine, config());
  std::future<octo::Buffer> reply = client.call(echo_call("x"), std::chrono::milliseconds(100));
  try {
    reply.get();
    FAIL() << "the call was answered";
  } catch (const octo::Error& e) {
    EXPECT_EQ(e.status(), octo::Status::Timeout);
  }
}

TEST_F(SilentServer, AGeneratedClientSeesATimeoutAsTTransportExceptionTimedOut) {
  octo::thrift::Client client(engine, config());
  octo_idl::EchoClient echo(client.protocol(std::chrono::milliseconds(100)));
  std::string out;
  try {
    echo.echo(out, "x");
    FAIL() << "the call was answered";
  } catch (const octo::thrift::TransportError& e) {
    EXPECT_EQ(e.getType(), apache::thrift::transport::TTransportException::TIMED_OUT);
    EXPECT_EQ(e.status(), octo::Status::Timeout);
  }
}

TEST_F(SilentServer, ALateAnswerToATimedOutCallIsNotTakenForTheNextOne) {
  octo::thrift::Client client(engine, config());
  octo_idl::EchoClient echo(client.protocol(std::chrono::milliseconds(100)));
  std::string out;
  EXPECT_THROW(echo.echo(out, "first"), octo::thrift::TransportError);
  // The server answers the timed-out call now, late ...
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(held.size(), 1u);
    held[0].ok(octo_test::echo_reply_message("stale"));
  }
  // ... and the next call on the same generated client must not read that answer.
  octo_idl::EchoClient patient(client.protocol(std::chrono::seconds(30)));
  std::future<std::string> second = std::async(std::launch::async, [&] {
    std::string result;
    patient.echo(result, "second");
    return result;
  });
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (held_count() < 2 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(held.size(), 2u);
    held[1].ok(octo_test::echo_reply_message("second"));
  }
  EXPECT_EQ(second.get(), "second");
}

TEST_F(SilentServer, ACobClientSeesATimeoutAsTApplicationExceptionNamingIt) {
  octo::thrift::Client client(engine, config());
  apache::thrift::protocol::TBinaryProtocolFactory factory;
  octo_idl::EchoCobClient echo(client.channel(std::chrono::milliseconds(100)), &factory);
  std::promise<std::string> failure;
  echo.echo(
      [&failure](octo_idl::EchoCobClient* c) {
        try {
          std::string out;
          c->recv_echo(out);
          failure.set_value("answered: " + out);
        } catch (const apache::thrift::TApplicationException& e) {
          failure.set_value(e.what());
        } catch (const std::exception& e) {
          failure.set_value(std::string("other: ") + e.what());
        }
      },
      "x");
  std::string what = failure.get_future().get();
  EXPECT_EQ(what.rfind("Timeout: ", 0), 0u) << what;
}

TEST_F(SilentServer, AnErrorAnswerCarriesTheServersStatusMessageAndBody) {
  octo::Client client(engine, config("Secure"));
  try {
    client.call_sync(echo_call("x"));
    FAIL() << "the call succeeded";
  } catch (const octo::Error& e) {
    EXPECT_EQ(e.status(), octo::Status::SecurityException);
    EXPECT_NE(e.message().find("who are you"), std::string::npos) << e.message();
    EXPECT_THROW(octo_test::echo_result(e.body()), apache::thrift::TApplicationException);
  }
}

TEST_F(SilentServer, AGeneratedClientSeesAnErrorAnswerAsTApplicationException) {
  octo::thrift::Client client(engine, config("Secure"));
  octo_idl::EchoClient echo(client.protocol());
  std::string out;
  try {
    echo.echo(out, "x");
    FAIL() << "the call succeeded";
  } catch (const apache::thrift::TApplicationException& e) {
    EXPECT_NE(std::string(e.what()).find("who are you"), std::string::npos) << e.what();
  }
}

TEST_F(SilentServer, AnUnknownServiceIsAServiceException) {
  octo::Client client(engine, config("Nobody"));
  try {
    client.call_sync(echo_call("x"));
    FAIL() << "the call succeeded";
  } catch (const octo::Error& e) {
    EXPECT_EQ(e.status(), octo::Status::ServiceException);
  }
}

TEST_F(SilentServer, CallsInFlightCompleteWithClosedWhenTheClientCloses) {
  octo::Client client(engine, config());
  std::future<octo::Buffer> reply = client.call(echo_call("x"));
  // Wait (bounded) until the server holds the call, so it is truly in flight.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (held_count() == 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(held_count(), 1u);
  client.close();
  try {
    reply.get();
    FAIL() << "the call was answered";
  } catch (const octo::Error& e) {
    EXPECT_EQ(e.status(), octo::Status::Closed);
  }
}

TEST_F(SilentServer, ACallAfterCloseIsRefusedAtOnce) {
  octo::Client client(engine, config());
  client.close();
  try {
    client.call(echo_call("x"));
    FAIL() << "a closed client took a call";
  } catch (const octo::Error& e) {
    EXPECT_EQ(e.status(), octo::Status::Closed);
  }
}

TEST_F(SilentServer, ABodyThatIsNotAThriftCallIsRefused) {
  octo::Client client(engine, config());
  try {
    client.call("not thrift");
    FAIL() << "the client took garbage";
  } catch (const octo::Error& e) {
    EXPECT_EQ(e.status(), octo::Status::InvalidArgument);
  }
}

TEST_F(SilentServer, ABlockingCallInsideAHandlerIsRefusedInsteadOfDeadlocking) {
  octo::Client inner(engine, config("Secure"));
  std::promise<octo::Status> seen;
  octo::Server caller(engine, "127.0.0.1:0");
  caller.service("Echo", [&](const octo::Request&, octo::Responder& res) {
    try {
      inner.call_sync(echo_call("x"));
      seen.set_value(octo::Status::Ok);
    } catch (const octo::Error& e) {
      seen.set_value(e.status());
    }
    res.error(octo::Status::RpcException, "done");
  });
  caller.start();
  octo::Client client(engine, octo::ClientConfig("Echo").endpoint(
                                  "127.0.0.1:" + std::to_string(caller.port())));
  EXPECT_THROW(client.call_sync(echo_call("x")), octo::Error);
  EXPECT_EQ(seen.get_future().get(), octo::Status::Busy);
}

TEST(NoServer, ACallToAPortNobodyListensOnFails) {
  // Find a free port, then let it go: nobody listens there.
  uint16_t port = 0;
  {
    octo::Engine engine(octo::EngineConfig().shards(1).pin_shards(false));
    octo::Server server(engine, "127.0.0.1:0");
    server.service("Echo", [](const octo::Request&, octo::Responder&) {});
    server.start();
    port = server.port();
  }
  octo::Engine engine(octo::EngineConfig().shards(1).pin_shards(false));
  octo::Client client(engine, octo::ClientConfig("Echo")
                                  .endpoint("127.0.0.1:" + std::to_string(port))
                                  .connect_timeout(std::chrono::milliseconds(200))
                                  .timeout(std::chrono::milliseconds(300)));
  try {
    client.call_sync(echo_call("x"));
    FAIL() << "a call to nowhere succeeded";
  } catch (const octo::Error& e) {
    EXPECT_TRUE(e.status() == octo::Status::Timeout ||
                e.status() == octo::Status::TransportException)
        << e.what();
  }
}

TEST(CallResult, GetThrowsTheCallsError) {
  octo::CallResult failed(octo::Status::TransportException, octo::Buffer::adopt(nullptr),
                          "connection lost");
  EXPECT_FALSE(failed.ok());
  try {
    failed.get();
    FAIL() << "get() of a failed call returned";
  } catch (const octo::Error& e) {
    EXPECT_EQ(e.status(), octo::Status::TransportException);
    EXPECT_EQ(e.message(), "connection lost");
    EXPECT_TRUE(e.body().empty());
  }
}

}  // namespace
