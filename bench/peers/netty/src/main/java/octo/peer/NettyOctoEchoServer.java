package octo.peer;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.codec.LengthFieldBasedFrameDecoder;
import java.util.concurrent.TimeUnit;
import octo.idl.Echo;
import org.apache.thrift.TProcessor;

/**
 * The Dorado-like OCTO Echo bench peer: entry point and Netty bootstrap.
 *
 * <p>Usage: {@code NettyOctoEchoServer PORT [IO_THREADS]} (default 1 I/O thread, which also
 * accepts). Netty's native epoll transport, pooled direct buffers, TCP_NODELAY. Each connection's
 * pipeline is a length-field frame decoder (the OCTO total_length at offset 4) followed by
 * {@link OctoEchoHandler}. Prints {@code netty-octo-echo pid PID listening on PORT} once bound and
 * serves until SIGTERM or SIGINT.
 *
 * <p>System properties: {@code octo.peer.bind} (address, default 127.0.0.1),
 * {@code octo.peer.maxFrameBytes} (largest frame and largest uncompressed payload accepted,
 * default 16 MiB), {@code octo.peer.appkey} (appkey in ScannerHeartbeat answers).
 */
public final class NettyOctoEchoServer {
  private NettyOctoEchoServer() {}

  public static void main(String[] args) throws Exception {
    if (args.length < 1 || args.length > 2) {
      System.err.println("usage: NettyOctoEchoServer PORT [IO_THREADS]");
      System.exit(2);
    }
    int port = Integer.parseInt(args[0]);
    int ioThreads = args.length > 1 ? Integer.parseInt(args[1]) : 1;
    if (port < 0 || port > 65535 || ioThreads < 1) {
      System.err.println("PORT must be 0..65535 and IO_THREADS at least 1");
      System.exit(2);
    }
    String bind = System.getProperty("octo.peer.bind", "127.0.0.1");
    int maxFrameBytes = Integer.getInteger("octo.peer.maxFrameBytes", 16 << 20);
    String appkey = System.getProperty("octo.peer.appkey", "octo.bench.netty-peer");
    if (!Epoll.isAvailable()) {
      System.err.println("netty epoll transport unavailable: " + Epoll.unavailabilityCause());
      System.exit(1);
    }

    TProcessor processor = new Echo.Processor<>(new EchoService());
    EventLoopGroup group = new EpollEventLoopGroup(ioThreads);
    ServerBootstrap bootstrap =
        new ServerBootstrap()
            .group(group)
            .channel(EpollServerSocketChannel.class)
            .option(ChannelOption.SO_BACKLOG, 1024)
            .option(ChannelOption.SO_REUSEADDR, true)
            .childOption(ChannelOption.TCP_NODELAY, true)
            .childOption(ChannelOption.ALLOCATOR, PooledByteBufAllocator.DEFAULT)
            .childOption(
                ChannelOption.WRITE_BUFFER_WATER_MARK,
                new WriteBufferWaterMark(1 << 20, 4 << 20))
            .childHandler(
                new ChannelInitializer<SocketChannel>() {
                  @Override
                  protected void initChannel(SocketChannel ch) {
                    ch.pipeline()
                        .addLast(
                            "octo-frame",
                            new LengthFieldBasedFrameDecoder(8 + maxFrameBytes, 4, 4, 0, 0))
                        .addLast(
                            "octo-echo", new OctoEchoHandler(processor, appkey, maxFrameBytes));
                  }
                });
    Channel server = bootstrap.bind(bind, port).sync().channel();
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> group.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly(),
                "netty-octo-echo-shutdown"));
    int boundPort = ((java.net.InetSocketAddress) server.localAddress()).getPort();
    System.out.println(
        "netty-octo-echo pid "
            + ProcessHandle.current().pid()
            + " listening on "
            + boundPort
            + " (io threads "
            + ioThreads
            + ", epoll)");
    System.out.flush();
    server.closeFuture().sync();
  }
}
