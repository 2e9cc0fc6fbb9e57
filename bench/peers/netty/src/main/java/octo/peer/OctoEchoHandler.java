package octo.peer;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import octo.idl.Header;
import octo.idl.HeartbeatInfo;
import octo.idl.RequestInfo;
import octo.idl.ResponseInfo;
import org.apache.thrift.TApplicationException;
import org.apache.thrift.TException;
import org.apache.thrift.TProcessor;
import org.apache.thrift.protocol.TBinaryProtocol;
import org.apache.thrift.protocol.TMessageType;

/**
 * One connection's OCTO request handling, the way Dorado's server does it: the header is a Thrift
 * {@link Header} decoded with TBinaryProtocol, the body goes through the generated Thrift
 * processor, and the reply is an OCTO frame with {@code Header{messageType 0, responseInfo{seq,
 * status}}} and the processor's REPLY as body, in the request's protocol byte (checksum and
 * compression mirrored).
 *
 * <p>The handler runs on the connection's event loop (no business thread pool: one core, one
 * thread). Responses are written as they are produced and flushed once per read batch. Heartbeats
 * (messageType 1, 2) get a status-0 heartbeat response, one-way calls (callType 1) none. A frame
 * that breaks the protocol closes the connection. When the peer stops reading, reading from it
 * stops too (write-buffer water marks), so a slow reader cannot make the server buffer without
 * bound.
 */
final class OctoEchoHandler extends ChannelInboundHandlerAdapter {
  private static final int CALL_TYPE_NO_REPLY = 1;
  private static final byte NORMAL = 0;
  private static final byte NORMAL_HEARTBEAT = 1;
  private static final byte SCANNER_HEARTBEAT = 2;
  private static final int HEARTBEAT_ALIVE = 2;
  private static final byte STATUS_SUCCESS = 0;
  private static final byte STATUS_RUNTIME_EXCEPTION = 2;
  private static final byte STATUS_PROTOCOL_EXCEPTION = 5;
  private static final byte STATUS_SERVICE_EXCEPTION = 8;
  private static final int HEADER_ESTIMATE_BYTES = 64;

  private final TProcessor processor;
  private final String appkey;
  private final int maxPayloadBytes;

  // Per-connection codec state, reused for every frame (the handler is not shared).
  private final ByteBufTransport inTransport;
  private final ByteBufTransport outTransport;
  private final TBinaryProtocol in;
  private final TBinaryProtocol out;
  private final Header requestHeader = new Header();
  private final Header responseHeader = new Header();
  private final ResponseInfo responseInfo = new ResponseInfo();
  private boolean flushPending;

  OctoEchoHandler(TProcessor processor, String appkey, int maxPayloadBytes) {
    this.processor = processor;
    this.appkey = appkey;
    this.maxPayloadBytes = maxPayloadBytes;
    this.inTransport = new ByteBufTransport(maxPayloadBytes);
    this.outTransport = new ByteBufTransport(Integer.MAX_VALUE);
    // Strings and containers a peer announces are bounded by the payload size before allocation.
    this.in = new TBinaryProtocol(inTransport, maxPayloadBytes, maxPayloadBytes, false, true);
    this.out = new TBinaryProtocol(outTransport);
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) throws Exception {
    ByteBuf frame = (ByteBuf) msg;
    ByteBuf response;
    try {
      response = serve(ctx.alloc(), frame);
    } finally {
      frame.release();
    }
    if (response != null) {
      ctx.write(response, ctx.voidPromise());
      flushPending = true;
    }
  }

  @Override
  public void channelReadComplete(ChannelHandlerContext ctx) {
    if (flushPending) {
      flushPending = false;
      ctx.flush();
    }
  }

  @Override
  public void channelWritabilityChanged(ChannelHandlerContext ctx) {
    // Back-pressure: stop reading requests while the peer is not reading our responses.
    ctx.channel().config().setAutoRead(ctx.channel().isWritable());
    ctx.fireChannelWritabilityChanged();
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    // Malformed frames, oversized frames and resets all end the connection; nothing is logged.
    ctx.close();
  }

  /** The response frame for one request frame, or null when none is due (one-way call). */
  private ByteBuf serve(ByteBufAllocator alloc, ByteBuf frame)
      throws OctoFrame.MalformedFrame, TException {
    int protocol = OctoFrame.protocolByte(frame);
    int headerLength = OctoFrame.headerLength(frame);
    ByteBuf payload = OctoFrame.openPayload(frame, maxPayloadBytes);
    try {
      requestHeader.clear();
      inTransport.use(payload.readSlice(headerLength));
      requestHeader.read(in);
      RequestInfo request = requestHeader.getRequestInfo();
      if (request == null) {
        throw new OctoFrame.MalformedFrame("request header without requestInfo");
      }
      long sequenceId = request.getSequenceId();
      byte messageType = requestHeader.getMessageType();
      switch (messageType) {
        case NORMAL:
          return answerCall(alloc, protocol, sequenceId, payload, request.getCallType());
        case NORMAL_HEARTBEAT:
        case SCANNER_HEARTBEAT:
          return answerHeartbeat(alloc, protocol, sequenceId, messageType);
        default:
          throw new OctoFrame.MalformedFrame("unknown messageType " + messageType);
      }
    } finally {
      inTransport.close();
      payload.release();
    }
  }

  private ByteBuf answerCall(
      ByteBufAllocator alloc, int protocol, long sequenceId, ByteBuf body, byte callType)
      throws OctoFrame.MalformedFrame, TException {
    int serialization = protocol & OctoFrame.SERIALIZATION_MASK;
    if (serialization != 1 && serialization != 2) {
      throw new OctoFrame.MalformedFrame("unsupported body serialization " + serialization);
    }
    ByteBuf frame =
        alloc.ioBuffer(OctoFrame.PREFIX_BYTES + HEADER_ESTIMATE_BYTES + body.readableBytes() + 16);
    try {
      frame.writerIndex(OctoFrame.PREFIX_BYTES);
      int headerLength = writeResponseHeader(frame, NORMAL, sequenceId, STATUS_SUCCESS, null);
      int bodyStart = frame.writerIndex();
      inTransport.use(body);
      processor.process(in, out);
      outTransport.close();
      if (callType == CALL_TYPE_NO_REPLY) {
        return null;
      }
      if (frame.getByte(bodyStart + 3) == TMessageType.EXCEPTION) {
        return answerException(alloc, protocol, sequenceId, frame, bodyStart);
      }
      ByteBuf sealed = OctoFrame.seal(alloc, frame, protocol, headerLength);
      frame = null;
      return sealed;
    } finally {
      if (frame != null) {
        frame.release();
      }
    }
  }

  /**
   * The processor answered with a Thrift EXCEPTION (unknown method, undecodable arguments, handler
   * failure): re-frame it with the matching OCTO status and message, as Dorado does.
   */
  private ByteBuf answerException(
      ByteBufAllocator alloc, int protocol, long sequenceId, ByteBuf processed, int bodyStart)
      throws OctoFrame.MalformedFrame, TException {
    ByteBuf body = processed.slice(bodyStart, processed.writerIndex() - bodyStart);
    TBinaryProtocol reader = new TBinaryProtocol(new ByteBufTransport(maxPayloadBytes).use(body));
    reader.readMessageBegin();
    TApplicationException error = TApplicationException.readFrom(reader);
    byte status;
    switch (error.getType()) {
      case TApplicationException.UNKNOWN_METHOD:
      case TApplicationException.WRONG_METHOD_NAME:
        status = STATUS_SERVICE_EXCEPTION;
        break;
      case TApplicationException.PROTOCOL_ERROR:
      case TApplicationException.INVALID_MESSAGE_TYPE:
        status = STATUS_PROTOCOL_EXCEPTION;
        break;
      default:
        status = STATUS_RUNTIME_EXCEPTION;
    }
    body.readerIndex(0);
    ByteBuf frame = alloc.ioBuffer(OctoFrame.PREFIX_BYTES + 256 + body.readableBytes());
    frame.writerIndex(OctoFrame.PREFIX_BYTES);
    int headerLength =
        writeResponseHeader(frame, NORMAL, sequenceId, status, String.valueOf(error.getMessage()));
    frame.writeBytes(body);
    return OctoFrame.seal(alloc, frame, protocol, headerLength);
  }

  private ByteBuf answerHeartbeat(
      ByteBufAllocator alloc, int protocol, long sequenceId, byte messageType)
      throws OctoFrame.MalformedFrame, TException {
    ByteBuf frame = alloc.ioBuffer(OctoFrame.PREFIX_BYTES + 2 * HEADER_ESTIMATE_BYTES + 4);
    frame.writerIndex(OctoFrame.PREFIX_BYTES);
    int headerLength;
    try {
      headerLength = writeResponseHeader(frame, messageType, sequenceId, STATUS_SUCCESS, null);
    } catch (TException e) {
      frame.release();
      throw e;
    }
    return OctoFrame.seal(alloc, frame, protocol, headerLength);
  }

  /** Writes the response Header at the frame's writer index and returns its length in bytes. */
  private int writeResponseHeader(
      ByteBuf frame, byte messageType, long sequenceId, byte status, String message)
      throws TException {
    int start = frame.writerIndex();
    responseInfo.clear();
    responseInfo.setSequenceId(sequenceId);
    responseInfo.setStatus(status);
    if (message != null) {
      responseInfo.setMessage(message);
    }
    responseHeader.clear();
    responseHeader.setMessageType(messageType);
    responseHeader.setResponseInfo(responseInfo);
    if (messageType == SCANNER_HEARTBEAT) {
      responseHeader.setHeartbeatInfo(
          new HeartbeatInfo(HEARTBEAT_ALIVE)
              .setAppkey(appkey)
              .setSendTime(System.currentTimeMillis()));
    }
    outTransport.use(frame);
    responseHeader.write(out);
    return frame.writerIndex() - start;
  }
}
