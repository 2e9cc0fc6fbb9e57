package octo.peer;

import io.netty.buffer.ByteBuf;
import org.apache.thrift.TConfiguration;
import org.apache.thrift.transport.TTransport;
import org.apache.thrift.transport.TTransportException;

/**
 * A Thrift transport that reads from and writes to a Netty {@link ByteBuf} in place, so that the
 * Thrift protocol encodes straight into the pooled direct buffer that goes to the socket and
 * decodes straight from the frame the decoder produced (no intermediate byte arrays or streams).
 *
 * <p>One instance per connection is re-pointed at each frame with {@link #use(ByteBuf)}. Reads never
 * go past the buffer's readable bytes: {@link #checkReadBytesAvailable(long)} is what
 * TBinaryProtocol calls before it allocates a string, binary or container a peer announced.
 */
final class ByteBufTransport extends TTransport {
  private final TConfiguration configuration;
  private ByteBuf buf;

  ByteBufTransport(int maxMessageBytes) {
    this.configuration =
        new TConfiguration(maxMessageBytes, maxMessageBytes, TConfiguration.DEFAULT_RECURSION_DEPTH);
  }

  ByteBufTransport use(ByteBuf buf) {
    this.buf = buf;
    return this;
  }

  @Override
  public boolean isOpen() {
    return true;
  }

  @Override
  public void open() {}

  @Override
  public void close() {
    buf = null;
  }

  @Override
  public int read(byte[] dst, int off, int len) {
    int n = Math.min(len, buf.readableBytes());
    buf.readBytes(dst, off, n);
    return n;
  }

  @Override
  public void write(byte[] src, int off, int len) {
    buf.writeBytes(src, off, len);
  }

  @Override
  public TConfiguration getConfiguration() {
    return configuration;
  }

  @Override
  public void updateKnownMessageSize(long size) {}

  @Override
  public void checkReadBytesAvailable(long numBytes) throws TTransportException {
    if (numBytes > buf.readableBytes()) {
      throw new TTransportException(
          TTransportException.END_OF_FILE,
          "message announces " + numBytes + " bytes but only " + buf.readableBytes() + " remain");
    }
  }
}
