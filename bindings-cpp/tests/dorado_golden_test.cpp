// Dorado's golden frames (../shared/vectors/dorado) sent to octo's C++ Thrift server running a
// generated EchoProcessor: each answer is the one Dorado's own server wrote, byte for byte.
// The OCTO header comes from libocto; the body from Apache Thrift C++'s generated code.
#include <octo/thrift.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

#include "support.hpp"

namespace {

const char* const kDoradoService = "com.meituan.dorado.test.thrift.api.Echo";

std::string vector_bytes(const std::string& name) {
  std::ifstream in(std::string(OCTO_VECTORS_DIR) + "/" + name + ".bin", std::ios::binary);
  if (!in) throw std::runtime_error("missing golden vector " + name);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// A plain TCP connection to 127.0.0.1:port that writes bytes and reads whole frames.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval limit{30, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error("connect failed");
    }
  }
  ~RawConnection() { close(fd_); }

  void send_all(const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("send failed");
      sent += static_cast<size_t>(n);
    }
  }

  /// One whole message: an OCTO frame (8 + total_length) or a framed Thrift message (4 + length).
  std::string read_frame() {
    std::string head = read_exactly(4);
    auto u8 = [&](size_t i) { return static_cast<uint8_t>(head[i]); };
    if (u8(0) == 0xAB && u8(1) == 0xBA) {
      std::string len = read_exactly(4);
      uint32_t total = (static_cast<uint32_t>(static_cast<uint8_t>(len[0])) << 24) |
                       (static_cast<uint32_t>(static_cast<uint8_t>(len[1])) << 16) |
                       (static_cast<uint32_t>(static_cast<uint8_t>(len[2])) << 8) |
                       static_cast<uint32_t>(static_cast<uint8_t>(len[3]));
      return head + len + read_exactly(total);
    }
    uint32_t length = (static_cast<uint32_t>(u8(0)) << 24) | (static_cast<uint32_t>(u8(1)) << 16) |
                      (static_cast<uint32_t>(u8(2)) << 8) | static_cast<uint32_t>(u8(3));
    return head + read_exactly(length);
  }

 private:
  std::string read_exactly(size_t n) {
    if (n > (64u << 20)) throw std::runtime_error("frame too large for this test");
    std::string out(n, '\0');
    size_t got = 0;
    while (got < n) {
      ssize_t r = ::recv(fd_, &out[got], n - got, 0);
      if (r <= 0) throw std::runtime_error("connection closed or timed out mid-frame");
      got += static_cast<size_t>(r);
    }
    return out;
  }
  int fd_;
};

class DoradoGoldenTest : public ::testing::Test {
 protected:
  DoradoGoldenTest()
      : engine(octo::EngineConfig().shards(1).pin_shards(false)),
        server(engine, "127.0.0.1:0", kDoradoService,
               std::make_shared<octo_idl::EchoProcessor>(
                   std::make_shared<octo_test::EchoHandler>())) {
    server.start();
  }

  std::string answer_to(const std::string& request_vector) {
    RawConnection conn(server.port());
    conn.send_all(vector_bytes(request_vector));
    return conn.read_frame();
  }

  octo::Engine engine;
  octo::thrift::Server server;
};

TEST_F(DoradoGoldenTest, APlainRequestGetsDoradosResponseByteForByte) {
  EXPECT_EQ(answer_to("request_plain_1k"), vector_bytes("response_plain_1k"));
}

TEST_F(DoradoGoldenTest, ASequenceIdAbove2To32IsAnsweredWithTheFull64Bits) {
  EXPECT_EQ(answer_to("request_seq_above_2_32"), vector_bytes("response_seq_above_2_32"));
}

TEST_F(DoradoGoldenTest, ANativeThriftRequestGetsDoradosNativeResponse) {
  EXPECT_EQ(answer_to("native_thrift_request_1k"), vector_bytes("native_thrift_response_1k"));
}

TEST_F(DoradoGoldenTest, AHeartbeatIsAnsweredWithStatusZero) {
  EXPECT_EQ(answer_to("heartbeat_request"), vector_bytes("heartbeat_response"));
}

TEST_F(DoradoGoldenTest, A1MiBRequestIsEchoedWhole) {
  std::string request = vector_bytes("request_large_1mib");
  std::string answer = answer_to("request_large_1mib");
  EXPECT_GT(answer.size(), 1u << 20);
  // The last 512 KiB of the message (the request ends with the two struct stops) come back.
  std::string tail = request.substr(request.size() - 2 - (512u << 10), 512u << 10);
  EXPECT_NE(answer.find(tail), std::string::npos);
  EXPECT_EQ(server.stats().answers_by_status[0], 1u);
}

}  // namespace
