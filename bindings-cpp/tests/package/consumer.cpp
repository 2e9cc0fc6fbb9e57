// Uses the installed package: octo::octo headers, libocto.so through its RPATH, and the Thrift
// adapter header; serves one call's worth of setup and shuts down.
#include <octo/octo.hpp>
#include <octo/thrift.hpp>

#include <cstdio>
#include <cstring>

int main() {
  if (octo::version() != OCTO_VERSION_STRING) {
    std::fprintf(stderr, "header %s, library %s\n", OCTO_VERSION_STRING, octo::version().data());
    return 1;
  }
  octo::Engine engine(octo::EngineConfig().shards(1).pin_shards(false));
  octo::Server server(engine, "127.0.0.1:0");
  server.service("Echo", [](const octo::Request& req, octo::Responder& res) { res.ok(req.body()); });
  server.start();
  uint16_t port = server.port();
  std::printf("octo %s served on port %u\n", OCTO_VERSION_STRING, port);
  server.shutdown(std::chrono::milliseconds(100));
  return port == 0 ? 1 : 0;
}
