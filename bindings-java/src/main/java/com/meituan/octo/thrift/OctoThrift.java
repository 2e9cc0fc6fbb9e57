package com.meituan.octo.thrift;

import com.meituan.octo.OctoClient;
import org.apache.thrift.TServiceClient;
import org.apache.thrift.TServiceClientFactory;
import org.apache.thrift.protocol.TBinaryProtocol;
import org.apache.thrift.protocol.TProtocol;

/**
 * Generated Apache Thrift clients over octo:
 * {@code Echo.Client echo = OctoThrift.client(octoClient, "Echo", new Echo.Client.Factory());}
 */
public final class OctoThrift {
    private OctoThrift() {}

    /** A TBinaryProtocol whose messages are octo calls of {@code service} through {@code client}. */
    public static TProtocol protocol(OctoClient client, String service) {
        return new TBinaryProtocol(new OctoTransport(client, service));
    }

    /** A generated client of {@code service} (for one thread at a time, as generated clients are). */
    public static <T extends TServiceClient> T client(OctoClient client, String service,
            TServiceClientFactory<T> factory) {
        return factory.getClient(protocol(client, service));
    }

    /** A generated client of the client's configured service. */
    public static <T extends TServiceClient> T client(OctoClient client, TServiceClientFactory<T> factory) {
        if (client.serviceName() == null) {
            throw new IllegalStateException("the OctoClient has no serviceName: name the service");
        }
        return client(client, client.serviceName(), factory);
    }
}
