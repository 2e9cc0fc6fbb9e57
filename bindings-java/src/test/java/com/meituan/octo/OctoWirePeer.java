package com.meituan.octo;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Map;
import octo.idl.Header;
import octo.idl.RequestInfo;
import octo.idl.ResponseInfo;
import org.apache.thrift.TDeserializer;
import org.apache.thrift.TException;
import org.apache.thrift.TSerializer;
import org.apache.thrift.protocol.TBinaryProtocol;
import org.apache.thrift.transport.TMemoryBuffer;

/**
 * The tests' own OCTO caller, independent of octo: a blocking socket that writes OCTO frames
 * (PROTOCOL.md section 2) whose Header is serialized by Apache Thrift's generated code for
 * idl/octo.thrift, and reads the answers back the same way.
 */
public final class OctoWirePeer implements AutoCloseable {
    /** One answer: the ResponseInfo and the Thrift message in the body. */
    public record Answer(ResponseInfo info, byte[] body) {
        public int status() {
            return info.getStatus();
        }
    }

    private final Socket socket;
    private final DataInputStream in;
    private final DataOutputStream out;

    public OctoWirePeer(int port) throws IOException {
        socket = new Socket("127.0.0.1", port);
        socket.setSoTimeout(30_000);
        socket.setTcpNoDelay(true);
        in = new DataInputStream(socket.getInputStream());
        out = new DataOutputStream(socket.getOutputStream());
    }

    /** Sends one request frame: {@code header} then {@code body} (a whole Thrift message). */
    public void send(Header header, byte[] body) throws IOException, TException {
        byte[] h = new TSerializer(new TBinaryProtocol.Factory()).serialize(header);
        out.writeShort(0xABBA);
        out.writeByte(0);
        out.writeByte(1); // no checksum, no compression, Thrift body (what Dorado sends)
        out.writeInt(2 + h.length + body.length);
        out.writeShort(h.length);
        out.write(h);
        out.write(body);
        out.flush();
    }

    /** Reads one answer frame. */
    public Answer receive() throws IOException, TException {
        int magic = in.readUnsignedShort();
        if (magic != 0xABBA) {
            throw new IOException("not an OCTO frame: magic " + Integer.toHexString(magic));
        }
        in.readUnsignedByte();
        int protocol = in.readUnsignedByte();
        if ((protocol & 0xE0) != 0) {
            throw new IOException("unexpected flags " + protocol);
        }
        int total = in.readInt();
        int headerLength = in.readShort();
        byte[] payload = new byte[total - 2];
        in.readFully(payload);
        Header header = new Header();
        new TDeserializer(new TBinaryProtocol.Factory()).deserialize(header, Arrays.copyOf(payload, headerLength));
        return new Answer(header.getResponseInfo(), Arrays.copyOfRange(payload, headerLength, payload.length));
    }

    /** A call of {@code service} with the Thrift message {@code body}; returns its answer. */
    public Answer call(String service, long sequenceId, byte[] body) throws IOException, TException {
        send(request(service, sequenceId, false), body);
        return receive();
    }

    /** A request header (messageType 0) with the given contexts. */
    public static Header request(String service, long sequenceId, boolean oneWay) {
        Header h = new Header();
        h.setMessageType((byte) 0);
        h.setRequestInfo(new RequestInfo(service, sequenceId, (byte) (oneWay ? 1 : 0), 1000));
        return h;
    }

    public static Header request(String service, long sequenceId, Map<String, String> global, Map<String, String> local) {
        Header h = request(service, sequenceId, false);
        h.setGlobalContext(global);
        h.setLocalContext(local);
        return h;
    }

    /** The Thrift CALL message a generated client sends for {@code send} (e.g. {@code c -> c.send_echo("hi")}). */
    public static byte[] callMessage(ThriftSend send) throws TException {
        TMemoryBuffer buffer = new TMemoryBuffer(64);
        send.send(new TBinaryProtocol(buffer));
        return Arrays.copyOf(buffer.getArray(), buffer.length());
    }

    /** Writes a call with a generated client's send_ method onto a protocol. */
    public interface ThriftSend {
        void send(TBinaryProtocol protocol) throws TException;
    }

    /** The body of an answer as a Thrift protocol to read with a generated client's recv_ method. */
    public static TBinaryProtocol replyProtocol(byte[] body) throws TException {
        TMemoryBuffer buffer = new TMemoryBuffer(body.length);
        buffer.write(body);
        return new TBinaryProtocol(buffer);
    }

    static ByteBuffer wrap(byte[] b) {
        return ByteBuffer.wrap(b);
    }

    /** The next byte, or -1 once the server closed the connection. */
    public int readEnd() throws IOException {
        return in.read();
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
