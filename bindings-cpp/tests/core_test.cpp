// Status, Error, Buffer and Engine: the RAII and error design over the C ABI.
#include <octo/octo.hpp>

#include <gtest/gtest.h>

#include <string>
#include <type_traits>

namespace {

TEST(Version, LibraryMatchesTheHeaderItWasBuiltWith) {
  EXPECT_EQ(octo::version(), OCTO_VERSION_STRING);
}

TEST(Status, KeepsTheOctoWireCodes) {
  EXPECT_EQ(static_cast<uint32_t>(octo::Status::Ok), 0u);
  EXPECT_EQ(static_cast<uint32_t>(octo::Status::TransportException), 4u);
  EXPECT_EQ(static_cast<uint32_t>(octo::Status::ServiceException), 8u);
  EXPECT_EQ(static_cast<uint32_t>(octo::Status::RemoteException), 9u);
  EXPECT_TRUE(octo::is_wire_status(octo::Status::RemoteException));
  EXPECT_FALSE(octo::is_wire_status(octo::Status::Timeout));
}

TEST(Status, NamesComeFromTheLibrary) {
  EXPECT_STREQ(octo::status_name(octo::Status::ProtocolException), "ProtocolException");
  EXPECT_STREQ(octo::status_name(octo::Status::Timeout), "Timeout");
}

TEST(Error, CarriesTheStatusAndTheLibrarysMessage) {
  try {
    octo::Buffer too_big(size_t{1} << 40);
    FAIL() << "a 1 TiB buffer was made";
  } catch (const octo::Error& e) {
    EXPECT_EQ(e.status(), octo::Status::InvalidArgument);
    EXPECT_NE(e.message().find("capacity"), std::string::npos) << e.message();
    EXPECT_EQ(std::string(e.what()).rfind("InvalidArgument: ", 0), 0u) << e.what();
  }
}

TEST(Buffer, AppendsAndViewsItsBytes) {
  octo::Buffer b;
  b.append("hello, ");
  b.append("octo");
  EXPECT_EQ(b.view(), "hello, octo");
  EXPECT_EQ(b.size(), 11u);
}

TEST(Buffer, WritesInPlaceThenSetsItsSize) {
  octo::Buffer b(16);
  auto w = b.writable();
  ASSERT_GE(w.capacity, 16u);
  std::memcpy(w.data, "abc", 3);
  b.set_size(3);
  EXPECT_EQ(b.view(), "abc");
}

TEST(Buffer, SizeBeyondWhatWasMadeWritableIsRefused) {
  octo::Buffer b(8);
  auto w = b.writable();
  EXPECT_THROW(b.set_size(w.capacity + 1), octo::Error);
}

TEST(Buffer, SharedHandlesSeeTheSameBytesAndAreReadOnly) {
  octo::Buffer a = octo::Buffer::copy_of("shared");
  octo::Buffer b = a.share();
  EXPECT_EQ(a.view().data(), b.view().data());  // no copy
  try {
    a.append("!");
    FAIL() << "a shared buffer took a write";
  } catch (const octo::Error& e) {
    EXPECT_EQ(e.status(), octo::Status::Busy);
  }
}

TEST(Buffer, OutlivesTheHandleItWasSharedFrom) {
  octo::Buffer b;
  {
    octo::Buffer a = octo::Buffer::copy_of("kept");
    b = a.share();
  }
  EXPECT_EQ(b.view(), "kept");
}

TEST(Buffer, IsMoveOnly) {
  static_assert(!std::is_copy_constructible_v<octo::Buffer>);
  static_assert(std::is_nothrow_move_constructible_v<octo::Buffer>);
  octo::Buffer a = octo::Buffer::copy_of("x");
  octo::Buffer b = std::move(a);
  EXPECT_EQ(b.view(), "x");
  EXPECT_EQ(a.raw(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
}

TEST(Engine, RunsTheShardsItWasAskedFor) {
  octo::Engine engine(octo::EngineConfig().shards(2).pin_shards(false));
  EXPECT_EQ(engine.shard_count(), 2u);
}

TEST(Engine, RefusesAnInvalidConfiguration) {
  try {
    octo::Engine engine(octo::EngineConfig().shards(1).max_frame_size(1));
    FAIL() << "an engine started with a 1-byte frame limit";
  } catch (const octo::Error& e) {
    EXPECT_EQ(e.status(), octo::Status::InvalidArgument);
    EXPECT_NE(e.message().find("max_frame_size"), std::string::npos) << e.message();
  }
}

TEST(Engine, CopiesShareOneEngine) {
  octo::Engine a(octo::EngineConfig().shards(1).pin_shards(false));
  octo::Engine b = a;
  EXPECT_EQ(a.raw(), b.raw());
}

}  // namespace
