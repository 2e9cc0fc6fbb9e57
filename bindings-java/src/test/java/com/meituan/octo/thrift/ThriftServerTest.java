package com.meituan.octo.thrift;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.meituan.octo.OctoServer;
import octo.idl.Echo;
import org.apache.thrift.protocol.TBinaryProtocol;
import org.apache.thrift.transport.TSocket;
import org.apache.thrift.transport.layered.TFramedTransport;
import org.junit.jupiter.api.Test;

class ThriftServerTest {
    @Test
    void anApacheThriftFramedClientCallsAGeneratedProcessorOnOcto() throws Exception {
        try (OctoServer server = OctoServer.builder()
                .host("127.0.0.1")
                .shards(1)
                .service("Echo", new ThriftService(new Echo.Processor<Echo.Iface>(message -> message)))
                .build()
                .start()) {
            try (TSocket socket = new TSocket("127.0.0.1", server.port())) {
                socket.open();
                Echo.Client client = new Echo.Client(new TBinaryProtocol(new TFramedTransport(socket)));
                assertEquals("hello", client.echo("hello"));
                assertEquals("x".repeat(1024), client.echo("x".repeat(1024)));
            }
        }
    }
}
