//! Frames as Dorado sends them, shared by the codec's tests and benches.

use bytes::BytesMut;
use octo_engine::proto::echo;
use octo_engine::proto::{encode_octo, CallType, Flags, Header, RequestInfo, TraceInfo};

/// A 1 KiB Echo request as Dorado sends it (same shape as the golden request_plain_1k).
pub fn request_frame(seq: i64) -> Vec<u8> {
    let h = Header {
        request_info: Some(RequestInfo {
            service_name: "com.meituan.dorado.test.thrift.api.Echo".into(),
            sequence_id: seq,
            call_type: CallType::Reply,
            timeout_ms: 1000,
        }),
        trace_info: Some(TraceInfo {
            client_appkey: "com.meituan.octo.dorado.client".into(),
            client_ip: Some("10.4.5.6".into()),
            ..TraceInfo::default()
        }),
        ..Header::default()
    };
    let mut body = BytesMut::new();
    echo::encode_call(&mut body, seq as i32, &[b'x'; 1024]);
    let mut out = BytesMut::new();
    encode_octo(&mut out, Flags::default(), &h, &body).unwrap();
    out.to_vec()
}
