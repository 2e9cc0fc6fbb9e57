package octo.peer;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufInputStream;
import io.netty.buffer.ByteBufOutputStream;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import java.io.IOException;
import java.io.InputStream;
import java.util.zip.Adler32;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;
import org.xerial.snappy.Snappy;

/**
 * The OCTO frame envelope (shared/PROTOCOL.md section 2): the 10-byte prefix (magic 0xABBA,
 * version, protocol flags, total_length, header_length), the optional Adler-32 trailer and the
 * optional gzip or raw-Snappy compression of header+body. It knows nothing of the header or body.
 *
 * <p>Decoding checks the prefix and the checksum and returns the uncompressed header+body; encoding
 * fills in the prefix of a buffer whose header+body were written after {@link #PREFIX_BYTES}
 * reserved bytes, compressing and appending the checksum as the protocol byte asks.
 */
final class OctoFrame {
  static final int PREFIX_BYTES = 10;
  static final short MAGIC = (short) 0xABBA;
  static final int FLAG_CHECKSUM = 0x80;
  static final int FLAG_GZIP = 0x40;
  static final int FLAG_SNAPPY = 0x20;
  static final int SERIALIZATION_MASK = 0x03;

  private OctoFrame() {}

  /** A frame that breaks PROTOCOL.md section 2; the connection that sent it is closed. */
  static final class MalformedFrame extends Exception {
    MalformedFrame(String message) {
      super(message, null, false, false);
    }
  }

  /** The protocol flags byte of a whole frame (as cut by the length-field frame decoder). */
  static int protocolByte(ByteBuf frame) {
    return frame.getUnsignedByte(frame.readerIndex() + 3);
  }

  /** The header_length field: the header's size before compression. */
  static int headerLength(ByteBuf frame) {
    return frame.getShort(frame.readerIndex() + 8);
  }

  /**
   * Checks a whole frame (magic, lengths, checksum) and returns its header+body, uncompressed, as
   * a buffer the caller must release. At most {@code maxPayloadBytes} are ever inflated.
   */
  static ByteBuf openPayload(ByteBuf frame, int maxPayloadBytes) throws MalformedFrame {
    int base = frame.readerIndex();
    int frameBytes = frame.readableBytes();
    if (frameBytes < PREFIX_BYTES || frame.getShort(base) != MAGIC) {
      throw new MalformedFrame("not an OCTO frame");
    }
    int protocol = protocolByte(frame);
    boolean checksum = (protocol & FLAG_CHECKSUM) != 0;
    int totalLength = frame.getInt(base + 4);
    if (totalLength < (checksum ? 6 : 2) || 8L + totalLength != frameBytes) {
      throw new MalformedFrame("bad total_length " + totalLength);
    }
    int payloadBytes = totalLength - 2 - (checksum ? 4 : 0);
    if (checksum) {
      Adler32 adler = new Adler32();
      adler.update(frame.nioBuffer(base, PREFIX_BYTES + payloadBytes));
      long sent = frame.getUnsignedInt(base + PREFIX_BYTES + payloadBytes);
      if (adler.getValue() != sent) {
        throw new MalformedFrame("Adler-32 checksum mismatch");
      }
    }
    int headerLength = headerLength(frame);
    ByteBuf payload;
    int compression = protocol & (FLAG_GZIP | FLAG_SNAPPY);
    if (compression == 0) {
      payload = frame.retainedSlice(base + PREFIX_BYTES, payloadBytes);
    } else if (compression == FLAG_GZIP) {
      payload = gunzip(frame.slice(base + PREFIX_BYTES, payloadBytes), maxPayloadBytes);
    } else if (compression == FLAG_SNAPPY) {
      payload = unsnappy(frame.slice(base + PREFIX_BYTES, payloadBytes), maxPayloadBytes);
    } else {
      throw new MalformedFrame("both gzip and snappy flags set");
    }
    if (headerLength < 0 || headerLength > payload.readableBytes()) {
      payload.release();
      throw new MalformedFrame("bad header_length " + headerLength);
    }
    return payload;
  }

  /**
   * Completes a frame whose header+body (header first, {@code headerLength} bytes) were written
   * from index {@link #PREFIX_BYTES} of {@code out}: compresses them if the protocol byte says so,
   * writes the prefix and appends the checksum. Returns the frame to send (which may be a new
   * buffer; {@code out} is then released).
   */
  static ByteBuf seal(ByteBufAllocator alloc, ByteBuf out, int protocol, int headerLength)
      throws MalformedFrame {
    if (headerLength > Short.MAX_VALUE) {
      out.release();
      throw new MalformedFrame("header too long for header_length: " + headerLength);
    }
    int compression = protocol & (FLAG_GZIP | FLAG_SNAPPY);
    if (compression != 0) {
      ByteBuf plain = out;
      try {
        ByteBuf uncompressed = plain.slice(PREFIX_BYTES, plain.writerIndex() - PREFIX_BYTES);
        out = compression == FLAG_GZIP ? gzip(alloc, uncompressed) : snappy(alloc, uncompressed);
      } finally {
        plain.release();
      }
    }
    boolean checksum = (protocol & FLAG_CHECKSUM) != 0;
    int payloadBytes = out.writerIndex() - PREFIX_BYTES;
    out.setShort(0, MAGIC);
    out.setByte(2, 0);
    out.setByte(3, protocol);
    out.setInt(4, 2 + payloadBytes + (checksum ? 4 : 0));
    out.setShort(8, headerLength);
    if (checksum) {
      Adler32 adler = new Adler32();
      adler.update(out.nioBuffer(0, out.writerIndex()));
      out.writeInt((int) adler.getValue());
    }
    return out;
  }

  private static ByteBuf gunzip(ByteBuf compressed, int maxBytes) throws MalformedFrame {
    ByteBuf out = Unpooled.buffer(Math.min(maxBytes, Math.max(256, compressed.readableBytes() * 4)));
    try (InputStream in = new GZIPInputStream(new ByteBufInputStream(compressed))) {
      byte[] chunk = new byte[8192];
      int n;
      while ((n = in.read(chunk)) > 0) {
        if (out.readableBytes() + n > maxBytes) {
          throw new MalformedFrame("gzip payload inflates past " + maxBytes + " bytes");
        }
        out.writeBytes(chunk, 0, n);
      }
      return out;
    } catch (IOException e) {
      out.release();
      throw new MalformedFrame("bad gzip payload: " + e.getMessage());
    } catch (MalformedFrame e) {
      out.release();
      throw e;
    }
  }

  private static ByteBuf unsnappy(ByteBuf compressed, int maxBytes) throws MalformedFrame {
    byte[] in = ByteBufUtil.getBytes(compressed);
    try {
      int length = Snappy.uncompressedLength(in);
      if (length < 0 || length > maxBytes) {
        throw new MalformedFrame("snappy payload announces " + length + " bytes");
      }
      byte[] out = new byte[length];
      int n = Snappy.uncompress(in, 0, in.length, out, 0);
      return Unpooled.wrappedBuffer(out, 0, n);
    } catch (IOException e) {
      throw new MalformedFrame("bad snappy payload: " + e.getMessage());
    }
  }

  private static ByteBuf gzip(ByteBufAllocator alloc, ByteBuf plain) throws MalformedFrame {
    ByteBuf out = alloc.ioBuffer(PREFIX_BYTES + plain.readableBytes() / 2 + 64);
    out.writerIndex(PREFIX_BYTES);
    try (GZIPOutputStream gz = new GZIPOutputStream(new ByteBufOutputStream(out))) {
      plain.getBytes(plain.readerIndex(), gz, plain.readableBytes());
    } catch (IOException e) {
      out.release();
      throw new MalformedFrame("gzip failed: " + e.getMessage());
    }
    return out;
  }

  private static ByteBuf snappy(ByteBufAllocator alloc, ByteBuf plain) throws MalformedFrame {
    try {
      byte[] compressed = Snappy.compress(ByteBufUtil.getBytes(plain));
      ByteBuf out = alloc.ioBuffer(PREFIX_BYTES + compressed.length + 4);
      out.writerIndex(PREFIX_BYTES);
      out.writeBytes(compressed);
      return out;
    } catch (IOException e) {
      throw new MalformedFrame("snappy failed: " + e.getMessage());
    }
  }
}
