package com.meituan.octo.thrift;

import com.meituan.octo.OctoClient;
import com.meituan.octo.OctoException;
import com.meituan.octo.Status;
import com.meituan.octo.ThriftMessages;
import java.nio.ByteBuffer;
import org.apache.thrift.TConfiguration;
import org.apache.thrift.protocol.TMessageType;
import org.apache.thrift.transport.TTransport;
import org.apache.thrift.transport.TTransportException;

/**
 * The Thrift transport a generated client (e.g. {@code Echo.Client}) calls through octo: each
 * message the client writes and flushes is one octo call of the service, and the answer is what
 * the client then reads. One-way messages are sent as one-way calls.
 *
 * <p>octo owns sequence ids on the wire; this transport puts the generated client's own seqid back
 * into each answer, so the client's sequence check holds. A declared exception (status 1) reaches
 * the generated client as the declared exception, and every other answer with a body (e.g. status
 * 2 or 8 with a TApplicationException) as what an Apache Thrift server would have sent; failures
 * without a body (timeouts, closed client, connection loss) surface as a
 * {@link TTransportException} whose cause is the {@link OctoException} with the OCTO status.
 *
 * <p>Like generated clients, a transport is for one thread at a time; make one per thread (they are
 * cheap: the connections belong to the {@link OctoClient}).
 */
public final class OctoTransport extends TTransport {
    private final OctoClient client;
    private final String service;
    private final TConfiguration configuration = new TConfiguration();
    private byte[] out = new byte[256];
    private int outLength;
    private ByteBuffer in = ByteBuffer.allocate(0);

    /** A transport calling {@code service} through {@code client} (which stays the caller's to close). */
    public OctoTransport(OctoClient client, String service) {
        this.client = client;
        this.service = service;
    }

    @Override
    public boolean isOpen() {
        return true;
    }

    @Override
    public void open() {}

    @Override
    public void close() {}

    @Override
    public void write(byte[] buf, int off, int len) {
        int need = outLength + len;
        if (need > out.length) {
            byte[] bigger = new byte[Math.max(need, out.length * 2)];
            System.arraycopy(out, 0, bigger, 0, outLength);
            out = bigger;
        }
        System.arraycopy(buf, off, out, outLength, len);
        outLength = need;
    }

    @Override
    public void flush() throws TTransportException {
        ByteBuffer request = ByteBuffer.wrap(out, 0, outLength);
        outLength = 0;
        int seqidAt = ThriftMessages.seqidOffset(request);
        if (seqidAt < 0) {
            throw new TTransportException(TTransportException.UNKNOWN, "the client wrote no Thrift message");
        }
        int seqid = request.getInt(request.position() + seqidAt);
        try {
            if (ThriftMessages.messageType(request) == TMessageType.ONEWAY) {
                client.oneWay(service, request);
                in = ByteBuffer.allocate(0);
                return;
            }
            in = client.callBlocking(service, request);
        } catch (OctoException e) {
            ByteBuffer body = e.body();
            if (body == null || body.remaining() == 0) {
                int type = e.isTimeout() ? TTransportException.TIMED_OUT
                        : e.status() == Status.CLOSED ? TTransportException.NOT_OPEN : TTransportException.UNKNOWN;
                throw new TTransportException(type, e.getMessage(), e);
            }
            // The server's own Thrift message: the generated client raises what it carries.
            ByteBuffer copy = ByteBuffer.allocate(body.remaining());
            copy.put(body).flip();
            in = copy;
        }
        int answerSeqidAt = ThriftMessages.seqidOffset(in);
        if (answerSeqidAt >= 0) {
            in.putInt(in.position() + answerSeqidAt, seqid);
        }
    }

    @Override
    public int read(byte[] buf, int off, int len) throws TTransportException {
        int n = Math.min(len, in.remaining());
        if (n <= 0 && len > 0) {
            throw new TTransportException(TTransportException.END_OF_FILE, "no answer left to read");
        }
        in.get(buf, off, n);
        return n;
    }

    @Override
    public byte[] getBuffer() {
        return in.hasArray() && !in.isReadOnly() ? in.array() : null;
    }

    @Override
    public int getBufferPosition() {
        return in.hasArray() && !in.isReadOnly() ? in.arrayOffset() + in.position() : 0;
    }

    @Override
    public int getBytesRemainingInBuffer() {
        return in.hasArray() && !in.isReadOnly() ? in.remaining() : -1;
    }

    @Override
    public void consumeBuffer(int len) {
        in.position(in.position() + len);
    }

    @Override
    public TConfiguration getConfiguration() {
        return configuration;
    }

    @Override
    public void updateKnownMessageSize(long size) {}

    @Override
    public void checkReadBytesAvailable(long numBytes) throws TTransportException {
        if (numBytes > in.remaining()) {
            throw new TTransportException(TTransportException.END_OF_FILE,
                    "the answer claims " + numBytes + " bytes but has " + in.remaining());
        }
    }
}
