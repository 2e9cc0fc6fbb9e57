//! Cross-check of octo's protocol codec against Apache Thrift's own implementation (issue 2).
//!
//! Apache Thrift here is the Python `thrift` runtime running the code that the `thrift` compiler
//! generates from idl/octo.thrift and idl/echo.thrift, driven by tests/xcheck/thrift_peer.py:
//! - Thrift → octo: `thrift_peer.py generate` writes cases (NAME.bin plus NAME.json with the field
//!   values); octo decodes each and must find the same values, or reject the bytes where the JSON
//!   says `"expect": "error"`.
//! - octo → Thrift: octo encodes the values of every valid case; `thrift_peer.py verify` decodes
//!   them with Apache Thrift and must find the same values.
//!
//! The JSON format is described at the top of thrift_peer.py. A missing `thrift` compiler or
//! Python module fails these tests with "run scripts/install-deps.sh": they never pass silently.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

#[path = "support/apache_thrift.rs"]
mod apache_thrift;
use apache_thrift::python;

use bytes::{Bytes, BytesMut};
use octo_engine::proto::echo::{self, EchoReply};
use octo_engine::proto::thrift::{self as tb, Reader, TType};
use octo_engine::proto::*;
use serde_json::{json, Map, Value};

const XCHECK_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/xcheck");

// ------------------------------------------------------------------------------------------------
// The Apache Thrift peer: generated code, the Python program, and the cases it wrote.

/// One case: the bytes and what they mean.
struct Case {
    name: String,
    meta: Value,
    bytes: Vec<u8>,
}

impl Case {
    fn kind(&self) -> &str {
        self.meta["kind"].as_str().expect("case kind")
    }

    fn expects_error(&self) -> bool {
        self.meta["expect"] == "error"
    }
}

/// The working directory of this test process, holding the generated code and the cases.
struct Peer {
    work: PathBuf,
    gen: PathBuf,
}

/// Checks the tools, then generates the Python code once per test process.
fn peer() -> &'static Peer {
    static PEER: OnceLock<Peer> = OnceLock::new();
    PEER.get_or_init(|| {
        let newer = format!("{XCHECK_DIR}/newer_header.thrift");
        let work = apache_thrift::generate_python("thrift_xcheck", &[&newer]);
        let gen = work.join("gen-py");
        Peer { work, gen }
    })
}

fn run_peer(mode: &str, dir: &Path) -> Output {
    let p = peer();
    Command::new(python())
        .arg(format!("{XCHECK_DIR}/thrift_peer.py"))
        .arg(mode)
        .arg(dir)
        .arg("--gen")
        .arg(&p.gen)
        .output()
        .expect("run thrift_peer.py")
}

/// The cases Apache Thrift wrote (generated once per test process).
fn thrift_cases() -> &'static [Case] {
    static CASES: OnceLock<Vec<Case>> = OnceLock::new();
    CASES.get_or_init(|| {
        let dir = peer().work.join("from-thrift");
        let out = run_peer("generate", &dir);
        assert!(
            out.status.success(),
            "thrift_peer.py generate failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let cases = read_cases(&dir);
        let announced = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            announced.trim(),
            format!("generated {} cases", cases.len()),
            "every generated case has its .bin and .json"
        );
        cases
    })
}

fn read_cases(dir: &Path) -> Vec<Case> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read the case directory")
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_suffix(".json").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let meta = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
            Case {
                meta: serde_json::from_str(&meta).unwrap_or_else(|e| panic!("{name}.json: {e}")),
                bytes: std::fs::read(dir.join(format!("{name}.bin"))).unwrap(),
                name,
            }
        })
        .collect()
}

fn cases_of(kind: &str, expect_error: bool) -> Vec<&'static Case> {
    let cases: Vec<_> = thrift_cases()
        .iter()
        .filter(|c| c.kind() == kind && c.expects_error() == expect_error)
        .collect();
    assert!(!cases.is_empty(), "no {kind} cases were generated");
    cases
}

// ------------------------------------------------------------------------------------------------
// octo's decodings, as the case JSON.

fn header_to_json(h: &Header) -> Value {
    let mut o = Map::new();
    o.insert("messageType".into(), json!(h.message_type as i8));
    if let Some(r) = &h.request_info {
        o.insert(
            "requestInfo".into(),
            json!({
                "serviceName": r.service_name,
                "sequenceId": r.sequence_id,
                "callType": r.call_type as i8,
                "timeout": r.timeout_ms,
            }),
        );
    }
    if let Some(r) = &h.response_info {
        let mut ri = json!({"sequenceId": r.sequence_id, "status": r.status.code()});
        if let Some(m) = &r.message {
            ri["message"] = json!(m);
        }
        o.insert("responseInfo".into(), ri);
    }
    if let Some(t) = &h.trace_info {
        let mut ti = Map::new();
        ti.insert("clientAppkey".into(), json!(t.client_appkey));
        for (k, v) in [
            ("traceId", &t.trace_id),
            ("spanId", &t.span_id),
            ("rootMessageId", &t.root_message_id),
            ("currentMessageId", &t.current_message_id),
            ("serverMessageId", &t.server_message_id),
            ("clientIp", &t.client_ip),
        ] {
            if let Some(v) = v {
                ti.insert(k.into(), json!(v));
            }
        }
        for (k, v) in [("debug", t.debug), ("sample", t.sample)] {
            if let Some(v) = v {
                ti.insert(k.into(), json!(v));
            }
        }
        o.insert("traceInfo".into(), Value::Object(ti));
    }
    for (k, c) in [
        ("globalContext", &h.global_context),
        ("localContext", &h.local_context),
    ] {
        if let Some(c) = c {
            o.insert(k.into(), string_map_to_json(c, k, &mut Vec::new()));
        }
    }
    if let Some(hb) = &h.heartbeat_info {
        let mut hi = Map::new();
        if let Some(a) = &hb.appkey {
            hi.insert("appkey".into(), json!(a));
        }
        if let Some(t) = hb.send_time {
            hi.insert("sendTime".into(), json!(t));
        }
        if let Some(l) = &hb.load_info {
            let mut li = Map::new();
            if let Some(v) = l.average_load {
                li.insert("averageLoad".into(), json!(v));
            }
            for (k, v) in [
                ("oldGC", l.old_gc),
                ("threadNum", l.thread_num),
                ("queueSize", l.queue_size),
            ] {
                if let Some(v) = v {
                    li.insert(k.into(), json!(v));
                }
            }
            if let Some(m) = &l.method_qps_map {
                let m: Map<String, Value> = m.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                li.insert("methodQpsMap".into(), Value::Object(m));
            }
            hi.insert("loadInfo".into(), Value::Object(li));
        }
        hi.insert("status".into(), json!(hb.status));
        o.insert("heartbeatInfo".into(), Value::Object(hi));
    }
    Value::Object(o)
}

/// A context map as a JSON object; a key that appears twice on the wire is reported, since a JSON
/// object (and Apache Thrift's dict) would keep only one of them.
fn string_map_to_json(entries: &[(String, String)], what: &str, dupes: &mut Vec<String>) -> Value {
    let mut m = Map::new();
    for (k, v) in entries {
        if m.insert(k.clone(), json!(v)).is_some() {
            dupes.push(format!("{what}: key {k:?} twice"));
        }
    }
    Value::Object(m)
}

/// Why octo did not accept a case: where, and the codec's error when the codec refused it.
#[derive(Debug)]
struct Refusal {
    at: String,
    kind: Option<ErrorKind>,
}

impl Refusal {
    /// The codec refused the bytes in `at`.
    fn codec(at: &'static str) -> impl FnOnce(ProtoError) -> Refusal {
        move |e| Refusal {
            at: format!("{at}: {e}"),
            kind: Some(e.kind()),
        }
    }

    /// The codec's result failed a check of this test.
    fn test(at: String) -> Refusal {
        Refusal { at, kind: None }
    }
}

fn refuse<T>(at: String) -> Result<T, Refusal> {
    Err(Refusal::test(at))
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.at)
    }
}

/// Whether octo's error is the one the case's `reason` code names (see thrift_peer.py).
fn is_reason(reason: &str, kind: ErrorKind) -> bool {
    match reason {
        "checksum" => matches!(kind, ErrorKind::ChecksumMismatch { .. }),
        "gzip" => kind == ErrorKind::CorruptGzip,
        "snappy" => kind == ErrorKind::CorruptSnappy,
        "header_length" => matches!(kind, ErrorKind::HeaderLengthExceedsPayload { .. }),
        "total_length" => matches!(kind, ErrorKind::OctoTotalLengthTooSmall { .. }),
        r => {
            let missing = r
                .strip_prefix("missing_required_field:")
                .and_then(|m| m.split_once(':'))
                .unwrap_or_else(|| panic!("unknown reason code {r}"));
            let id: i16 = missing.1.parse().expect("field id");
            matches!(kind, ErrorKind::MissingRequiredField { strukt, field }
                if strukt == missing.0 && field == id)
        }
    }
}

/// Decodes header bytes with octo; the struct must end exactly at the end of the bytes.
fn decode_header(bytes: &[u8]) -> Result<Value, Refusal> {
    let mut r = Reader::new(bytes);
    let h = HeaderRef::read(&mut r).map_err(Refusal::codec("HeaderRef::read"))?;
    if r.remaining() != 0 {
        return refuse(format!(
            "{} bytes after the Header struct's STOP",
            r.remaining()
        ));
    }
    let owned = Header::decode(bytes).map_err(Refusal::codec("Header::decode"))?;
    if owned != h.to_owned() {
        return refuse(format!(
            "Header::decode and HeaderRef::decode disagree: {owned:?} vs {:?}",
            h.to_owned()
        ));
    }
    Ok(header_to_json(&owned))
}

fn utf8(b: &[u8], what: &str) -> Result<String, Refusal> {
    String::from_utf8(b.to_vec()).map_err(|_| Refusal::test(format!("{what} is not UTF-8")))
}

/// Decodes one Thrift message (an Echo body) with octo.
fn decode_message(body: &[u8]) -> Result<Value, Refusal> {
    let m = peek_message(body).map_err(Refusal::codec("peek_message"))?;
    let mut v = json!({"name": m.name, "type": m.kind as u8, "seqid": m.seqid});
    match m.kind {
        ThriftMessageType::Call | ThriftMessageType::Oneway => {
            let (seqid, msg) = echo::decode_call(body).map_err(Refusal::codec("decode_call"))?;
            if seqid != m.seqid {
                return refuse(format!("decode_call seqid {seqid}, peek {}", m.seqid));
            }
            v["args"] = json!({"message": utf8(msg, "echo_args.message")?});
        }
        ThriftMessageType::Reply | ThriftMessageType::Exception => {
            let (seqid, reply) =
                echo::decode_reply(body).map_err(Refusal::codec("decode_reply"))?;
            if seqid != m.seqid {
                return refuse(format!("decode_reply seqid {seqid}, peek {}", m.seqid));
            }
            match reply {
                EchoReply::Success(s) => {
                    v["result"] = json!({"success": utf8(s, "echo_result.success")?})
                }
                EchoReply::Exception(e) => {
                    v["exception"] = json!({"message": e.message, "type": e.kind.code()})
                }
            }
        }
    }
    Ok(v)
}

fn compression_name(c: Compression) -> &'static str {
    match c {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Snappy => "snappy",
    }
}

/// Decodes a whole OCTO frame the way a server does: split off the stream, frame, header, body.
fn decode_octo_case(bytes: &[u8]) -> Result<Value, Refusal> {
    let mut stream = BytesMut::from(bytes);
    let frame = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE)
        .decode(&mut stream)
        .map_err(Refusal::codec("FrameDecoder"))?;
    let Some(Frame::Octo(frame)) = frame else {
        return refuse(format!(
            "FrameDecoder returned {frame:?}, not one OCTO frame"
        ));
    };
    if !stream.is_empty() {
        return refuse(format!("{} bytes left after the frame", stream.len()));
    }
    let f = decode_octo(frame, DEFAULT_MAX_FRAME_SIZE).map_err(Refusal::codec("decode_octo"))?;
    let header = decode_header(&f.header)?;
    let body = if f.body.is_empty() {
        Value::Null
    } else {
        let body = f.thrift_body().map_err(Refusal::codec("thrift_body"))?;
        decode_message(body)?
    };
    Ok(json!({
        "kind": "octo",
        "header": header,
        "frame": {
            "version": f.version,
            "checksum": f.flags.checksum,
            "compression": compression_name(f.flags.compression),
            "serialization": f.flags.serialization,
        },
        "body": body,
    }))
}

fn decode_thrift_framed_case(bytes: &[u8]) -> Result<Value, Refusal> {
    let mut stream = BytesMut::from(bytes);
    let frame = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE)
        .decode(&mut stream)
        .map_err(Refusal::codec("FrameDecoder"))?;
    let Some(Frame::Thrift(message)) = frame else {
        return refuse(format!(
            "FrameDecoder returned {frame:?}, not one Thrift frame"
        ));
    };
    if !stream.is_empty() {
        return refuse(format!("{} bytes left after the frame", stream.len()));
    }
    Ok(json!({"kind": "thrift_framed", "body": decode_message(&message)?}))
}

/// octo's reading of a case, in the shape of the case's JSON (without `expect`/`why`).
fn decode_case(case: &Case) -> Result<Value, Refusal> {
    match case.kind() {
        "header" => Ok(json!({"kind": "header", "header": decode_header(&case.bytes)?})),
        "message" => Ok(json!({"kind": "message", "body": decode_message(&case.bytes)?})),
        "octo" => decode_octo_case(&case.bytes),
        "thrift_framed" => decode_thrift_framed_case(&case.bytes),
        k => refuse(format!("unknown case kind {k}")),
    }
}

/// The case JSON as a decoder must see it: without the test's own keys, and with the IDL default
/// filled in (`Header.messageType = 0`, which Apache Thrift reads when the field is absent).
fn expected_reading(meta: &Value) -> Value {
    let mut v = meta.clone();
    let o = v.as_object_mut().expect("case object");
    o.remove("expect");
    o.remove("why");
    o.remove("strict");
    if let Some(Value::Object(h)) = o.get_mut("header") {
        h.entry("messageType").or_insert(json!(0));
    }
    v
}

/// Every difference between two JSON values; numbers compare exactly (doubles bit for bit).
fn diff(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let keys: std::collections::BTreeSet<&String> = e.keys().chain(a.keys()).collect();
            for k in keys {
                let p = format!("{path}.{k}");
                match (e.get(k), a.get(k)) {
                    (Some(ev), Some(av)) => diff(&p, ev, av, out),
                    (Some(ev), None) => out.push(format!("{p}: expected {ev}, absent")),
                    (None, Some(av)) => out.push(format!("{p}: unexpected {av}")),
                    (None, None) => unreachable!(),
                }
            }
        }
        (Value::Number(e), Value::Number(a)) => {
            let same = if e.is_f64() || a.is_f64() {
                e.as_f64().map(f64::to_bits) == a.as_f64().map(f64::to_bits)
            } else {
                e.as_i64() == a.as_i64() && e.as_u64() == a.as_u64()
            };
            if !same {
                out.push(format!("{path}: expected {e}, got {a}"));
            }
        }
        _ if expected == actual => {}
        _ => out.push(format!(
            "{path}: expected {}, got {}",
            shortened(expected),
            shortened(actual)
        )),
    }
}

/// A value as JSON text, cut to a readable length (echo messages run to 64 KiB).
fn shortened(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(160) {
        Some((cut, _)) => format!("{}… ({} chars)", &text[..cut], text.chars().count()),
        None => text,
    }
}

/// Decodes every case with octo; returns one line per finding.
fn mismatches(cases: &[&Case]) -> Vec<String> {
    let mut findings = Vec::new();
    for case in cases {
        let name = &case.name;
        match (decode_case(case), case.expects_error()) {
            (Ok(actual), false) => {
                let mut d = Vec::new();
                diff("", &expected_reading(&case.meta), &actual, &mut d);
                findings.extend(d.into_iter().map(|l| format!("{name}: {l}")));
            }
            (Err(e), false) => findings.push(format!("{name}: octo cannot decode it: {e}")),
            (Ok(actual), true) => findings.push(format!(
                "{name}: octo accepted it ({}) as {actual}",
                case.meta["why"]
            )),
            (Err(refusal), true) => {
                let reason = s(&case.meta["reason"], "reason");
                if !refusal.kind.is_some_and(|k| is_reason(&reason, k)) {
                    findings.push(format!(
                        "{name}: octo refused it, but not for {reason:?}: {refusal}"
                    ));
                }
            }
        }
    }
    findings
}

fn assert_no_mismatches(cases: &[&Case]) {
    let findings = mismatches(cases);
    assert!(
        findings.is_empty(),
        "{} of {} cases differ:\n{}",
        findings.len(),
        cases.len(),
        findings.join("\n")
    );
}

// ------------------------------------------------------------------------------------------------
// octo's encodings of the case JSON.

fn s(v: &Value, what: &str) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("{what}: not a string: {v}"))
        .to_owned()
}

fn int(v: &Value, what: &str) -> i64 {
    v.as_i64()
        .unwrap_or_else(|| panic!("{what}: not an integer: {v}"))
}

/// The object's fields, refusing keys the reader does not know (so no JSON value goes unchecked).
fn fields<'a>(v: &'a Value, what: &str, known: &[&str]) -> &'a Map<String, Value> {
    let o = v
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {v}"));
    for k in o.keys() {
        assert!(known.contains(&k.as_str()), "{what}: unknown key {k}");
    }
    o
}

fn opt_s(o: &Map<String, Value>, k: &str) -> Option<String> {
    o.get(k).map(|v| s(v, k))
}

fn string_pairs(v: &Value, what: &str) -> Vec<(String, String)> {
    v.as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {v}"))
        .iter()
        .map(|(k, v)| (k.clone(), s(v, what)))
        .collect()
}

fn header_from_json(v: &Value) -> Header {
    let o = fields(
        v,
        "header",
        &[
            "messageType",
            "requestInfo",
            "responseInfo",
            "traceInfo",
            "globalContext",
            "localContext",
            "heartbeatInfo",
        ],
    );
    Header {
        message_type: o
            .get("messageType")
            .map(|t| MessageType::from_i8(int(t, "messageType") as i8).expect("messageType"))
            .unwrap_or_default(),
        request_info: o.get("requestInfo").map(|r| {
            let r = fields(
                r,
                "requestInfo",
                &["serviceName", "sequenceId", "callType", "timeout"],
            );
            RequestInfo {
                service_name: s(&r["serviceName"], "serviceName"),
                sequence_id: int(&r["sequenceId"], "sequenceId"),
                call_type: CallType::from_i8(int(&r["callType"], "callType") as i8)
                    .expect("callType"),
                timeout_ms: int(&r["timeout"], "timeout") as i32,
            }
        }),
        response_info: o.get("responseInfo").map(|r| {
            let r = fields(r, "responseInfo", &["sequenceId", "status", "message"]);
            ResponseInfo {
                sequence_id: int(&r["sequenceId"], "sequenceId"),
                status: Status::from_code(int(&r["status"], "status") as u8).expect("status"),
                message: opt_s(r, "message"),
            }
        }),
        trace_info: o.get("traceInfo").map(|t| {
            let t = fields(
                t,
                "traceInfo",
                &[
                    "clientAppkey",
                    "traceId",
                    "spanId",
                    "rootMessageId",
                    "currentMessageId",
                    "serverMessageId",
                    "debug",
                    "sample",
                    "clientIp",
                ],
            );
            TraceInfo {
                client_appkey: s(&t["clientAppkey"], "clientAppkey"),
                trace_id: opt_s(t, "traceId"),
                span_id: opt_s(t, "spanId"),
                root_message_id: opt_s(t, "rootMessageId"),
                current_message_id: opt_s(t, "currentMessageId"),
                server_message_id: opt_s(t, "serverMessageId"),
                debug: t.get("debug").map(|b| b.as_bool().expect("debug")),
                sample: t.get("sample").map(|b| b.as_bool().expect("sample")),
                client_ip: opt_s(t, "clientIp"),
            }
        }),
        global_context: o
            .get("globalContext")
            .map(|c| string_pairs(c, "globalContext")),
        local_context: o
            .get("localContext")
            .map(|c| string_pairs(c, "localContext")),
        heartbeat_info: o.get("heartbeatInfo").map(|h| {
            let h = fields(
                h,
                "heartbeatInfo",
                &["appkey", "sendTime", "loadInfo", "status"],
            );
            HeartbeatInfo {
                appkey: opt_s(h, "appkey"),
                send_time: h.get("sendTime").map(|t| int(t, "sendTime")),
                load_info: h.get("loadInfo").map(|l| {
                    let l = fields(
                        l,
                        "loadInfo",
                        &[
                            "averageLoad",
                            "oldGC",
                            "threadNum",
                            "queueSize",
                            "methodQpsMap",
                        ],
                    );
                    let i32_of = |k: &str| l.get(k).map(|v| int(v, k) as i32);
                    LoadInfo {
                        average_load: l.get("averageLoad").map(|v| v.as_f64().expect("double")),
                        old_gc: i32_of("oldGC"),
                        thread_num: i32_of("threadNum"),
                        queue_size: i32_of("queueSize"),
                        method_qps_map: l.get("methodQpsMap").map(|m| {
                            m.as_object()
                                .expect("methodQpsMap")
                                .iter()
                                .map(|(k, v)| (k.clone(), v.as_f64().expect("double")))
                                .collect()
                        }),
                    }
                }),
                status: int(&h["status"], "status") as i32,
            }
        }),
    }
}

/// Writes the Thrift message the body JSON describes, with octo's encoders.
fn encode_message(body: &Value, out: &mut BytesMut) {
    let b = fields(
        body,
        "body",
        &["name", "type", "seqid", "args", "result", "exception"],
    );
    let name = s(&b["name"], "name");
    let seqid = int(&b["seqid"], "seqid") as i32;
    let kind = ThriftMessageType::from_u8(int(&b["type"], "type") as u8).expect("type");
    match kind {
        ThriftMessageType::Call => {
            assert_eq!(name, echo::METHOD, "octo encodes calls of echo only");
            let msg = s(&b["args"]["message"], "args.message");
            echo::encode_call(out, seqid, msg.as_bytes());
        }
        ThriftMessageType::Oneway => {
            // octo has no one-way encoder (Dorado sends one-way as CALL): octo's primitives.
            let msg = s(&b["args"]["message"], "args.message");
            write_message_begin(out, &name, ThriftMessageType::Oneway, seqid);
            tb::write_field_begin(out, TType::String, 1);
            tb::write_binary(out, msg.as_bytes());
            tb::write_field_stop(out);
        }
        ThriftMessageType::Reply => {
            assert_eq!(name, echo::METHOD, "octo encodes replies of echo only");
            let msg = s(&b["result"]["success"], "result.success");
            echo::encode_reply(out, seqid, msg.as_bytes());
        }
        ThriftMessageType::Exception => {
            let x = &b["exception"];
            write_application_exception(
                out,
                &name,
                seqid,
                ApplicationExceptionKind::from_i32(int(&x["type"], "exception.type") as i32),
                &s(&x["message"], "exception.message"),
            );
        }
    }
}

fn flags_from_json(v: &Value) -> (u8, Flags) {
    let f = fields(
        v,
        "frame",
        &["version", "checksum", "compression", "serialization"],
    );
    let compression = match f["compression"].as_str() {
        Some("none") => Compression::None,
        Some("gzip") => Compression::Gzip,
        Some("snappy") => Compression::Snappy,
        other => panic!("compression {other:?}"),
    };
    let flags = Flags {
        checksum: f["checksum"].as_bool().expect("checksum"),
        compression,
        serialization: int(&f["serialization"], "serialization") as u8,
    };
    (int(&f["version"], "version") as u8, flags)
}

/// octo's encoding of a valid case's values: (name, bytes) pairs, one or more per case.
fn encode_case(case: &Case) -> Vec<(String, Vec<u8>)> {
    let m = &case.meta;
    let mut out = BytesMut::new();
    match case.kind() {
        "header" => {
            header_from_json(&m["header"]).encode(&mut out);
            let mut encodings = vec![(case.name.clone(), out.to_vec())];
            // The borrowed form re-encodes a header it decoded from Apache Thrift's bytes.
            let mut again = BytesMut::new();
            HeaderRef::decode(&case.bytes)
                .unwrap_or_else(|e| panic!("{}: {e}", case.name))
                .encode(&mut again);
            encodings.push((format!("{}__via_header_ref", case.name), again.to_vec()));
            return encodings;
        }
        "message" => encode_message(&m["body"], &mut out),
        "octo" => {
            let header = header_from_json(&m["header"]);
            let (version, flags) = flags_from_json(&m["frame"]);
            if m["body"].is_null() {
                // A heartbeat: everything before finish() is the header.
                let mut w = OctoFrameWriter::begin(&mut out, version, flags);
                header.encode(w.buf());
                w.finish().expect("OctoFrameWriter::finish");
            } else {
                let mut body = BytesMut::new();
                encode_message(&m["body"], &mut body);
                assert_eq!(version, 0, "encode_octo writes version 0");
                encode_octo(&mut out, flags, &header, &body).expect("encode_octo");
            }
        }
        "thrift_framed" => {
            let mut w = ThriftFrameWriter::begin(&mut out);
            encode_message(&m["body"], w.buf());
            w.finish().expect("ThriftFrameWriter::finish");
        }
        k => panic!("unknown case kind {k}"),
    }
    vec![(case.name.clone(), out.to_vec())]
}

/// Writes octo's encodings of every valid case (with the same JSON) into `dir`; returns the count.
fn write_octo_encodings(dir: &Path, mut meta_of: impl FnMut(&Case) -> Value) -> usize {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let mut n = 0;
    for case in thrift_cases().iter().filter(|c| !c.expects_error()) {
        let meta = meta_of(case);
        for (name, bytes) in encode_case(case) {
            std::fs::write(dir.join(format!("{name}.bin")), bytes).unwrap();
            std::fs::write(
                dir.join(format!("{name}.json")),
                serde_json::to_string_pretty(&meta).unwrap(),
            )
            .unwrap();
            n += 1;
        }
    }
    n
}

// ------------------------------------------------------------------------------------------------
// Thrift → octo

#[test]
fn apache_thrift_headers_decode_in_octo_to_the_same_fields() {
    let cases = cases_of("header", false);
    assert!(
        cases.iter().any(|c| c.name.contains("newer_peer")),
        "headers with unknown fields are part of the set"
    );
    assert_no_mismatches(&cases);
}

#[test]
fn apache_thrift_headers_lacking_a_required_field_are_rejected_by_octo() {
    assert_no_mismatches(&cases_of("header", true));
}

#[test]
fn apache_thrift_echo_messages_decode_in_octo_to_the_same_fields() {
    assert_no_mismatches(&cases_of("message", false));
}

#[test]
fn apache_thrift_octo_frames_decode_in_octo_with_every_flag_combination() {
    let cases = cases_of("octo", false);
    let combos: std::collections::BTreeSet<(bool, String)> = cases
        .iter()
        .map(|c| {
            let f = &c.meta["frame"];
            (f["checksum"] == true, s(&f["compression"], "compression"))
        })
        .collect();
    assert_eq!(
        combos.len(),
        6,
        "plain/gzip/snappy, each with and without checksum"
    );
    assert_no_mismatches(&cases);
}

#[test]
fn malformed_octo_frames_are_rejected_by_octo() {
    assert_no_mismatches(&cases_of("octo", true));
}

#[test]
fn apache_thrift_framed_messages_decode_in_octo() {
    assert_no_mismatches(&cases_of("thrift_framed", false));
}

/// A connection delivers frames back to back in arbitrary pieces: octo's splitter must cut the
/// stream of Apache Thrift-written frames into exactly the frames that were written.
#[test]
fn a_stream_of_apache_thrift_frames_splits_into_the_same_frames_whatever_the_read_sizes() {
    for kind in ["octo", "thrift_framed"] {
        let frames: Vec<&[u8]> = cases_of(kind, false)
            .iter()
            .map(|c| c.bytes.as_slice())
            .collect();
        let stream: Vec<u8> = frames.concat();
        for read_size in [1usize, 7, 1000, 65536] {
            let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
            let mut buf = BytesMut::new();
            let mut got: Vec<Bytes> = Vec::new();
            for piece in stream.chunks(read_size) {
                buf.extend_from_slice(piece);
                while let Some(frame) = decoder.decode(&mut buf).expect("a valid stream") {
                    got.push(match frame {
                        Frame::Octo(b) => b,
                        // The Thrift frame comes without its length prefix; put it back to compare.
                        Frame::Thrift(m) => {
                            let mut whole = (m.len() as i32).to_be_bytes().to_vec();
                            whole.extend_from_slice(&m);
                            Bytes::from(whole)
                        }
                    });
                }
            }
            assert!(buf.is_empty(), "{kind}, reads of {read_size}: bytes left");
            assert_eq!(got.len(), frames.len(), "{kind}, reads of {read_size}");
            for (i, (g, f)) in got.iter().zip(&frames).enumerate() {
                assert_eq!(
                    &g[..],
                    *f,
                    "{kind}, reads of {read_size}: frame {i} differs"
                );
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------
// octo → Thrift

#[test]
fn octo_encodings_decode_in_apache_thrift_to_the_same_fields() {
    let dir = peer().work.join("from-octo");
    let n = write_octo_encodings(&dir, |c| c.meta.clone());
    assert!(n > 50, "only {n} encodings");
    let out = run_peer("verify", &dir);
    assert!(
        out.status.success(),
        "Apache Thrift disagrees with octo's encodings ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("verified {n} cases")
    );
}

/// The verifier is not a rubber stamp: octo's correct bytes against JSON naming different values
/// must fail, field by field.
#[test]
fn apache_thrift_verify_reports_every_field_that_differs_from_the_json() {
    let dir = peer().work.join("from-octo-wrong-json");
    let mut expected_lines = BTreeMap::new();
    let n = write_octo_encodings(&dir, |c| {
        let mut m = c.meta.clone();
        if let Some(ri) = m.pointer_mut("/header/requestInfo/sequenceId") {
            *ri = json!(ri.as_i64().unwrap().wrapping_add(1));
            expected_lines.insert(c.name.clone(), "header.requestInfo.sequenceId");
        } else if let Some(seqid) = m.pointer_mut("/body/seqid") {
            *seqid = json!(seqid.as_i64().unwrap() ^ 1);
            expected_lines.insert(c.name.clone(), "body.seqid");
        } else if let Some(status) = m.pointer_mut("/header/responseInfo/status") {
            *status = json!((status.as_i64().unwrap() + 1) % 10);
            expected_lines.insert(c.name.clone(), "header.responseInfo.status");
        } else if let Some(h) = m.get_mut("header") {
            h["messageType"] = json!(1);
            expected_lines.insert(c.name.clone(), "header.messageType");
        }
        m
    });
    let valid = thrift_cases().iter().filter(|c| !c.expects_error()).count();
    assert_eq!(
        expected_lines.len(),
        valid,
        "every case got one wrong field"
    );
    assert!(n > valid);
    let out = run_peer("verify", &dir);
    assert_eq!(out.status.code(), Some(1), "verify must fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (name, field) in &expected_lines {
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&format!("MISMATCH {name}: {field}:")));
        assert!(
            line.is_some(),
            "no mismatch reported for {name} {field}:\n{stderr}"
        );
    }
}

/// Where both write the same fields in the same order, octo's bytes are Apache Thrift's bytes
/// (TSerializer for headers, the generated client/processor for bodies, TFramedTransport); for
/// compressed frames, the header and body after decompression are.
#[test]
fn octo_writes_the_same_bytes_as_apache_thrift_for_the_same_values() {
    let mut compared = 0;
    let mut findings = Vec::new();
    for case in thrift_cases().iter().filter(|c| !c.expects_error()) {
        let header_written_fully = case
            .meta
            .get("header")
            .is_none_or(|h| h.get("messageType").is_some());
        let thrift_wrote_more = case.name.contains("newer_peer")
            || case.name.contains("unexpected_types")
            || case.meta["strict"] == false;
        if !header_written_fully || thrift_wrote_more {
            // octo always writes messageType; these cases carry fields octo does not know.
            continue;
        }
        let (_, octo) = encode_case(case).swap_remove(0);
        compared += 1;
        let same = if case.kind() == "octo" && case.meta["frame"]["compression"] != "none" {
            let ours = decode_octo(Bytes::from(octo), DEFAULT_MAX_FRAME_SIZE).unwrap();
            let theirs = decode_octo(Bytes::from(case.bytes.clone()), DEFAULT_MAX_FRAME_SIZE);
            let theirs = theirs.unwrap();
            ours.header == theirs.header && ours.body == theirs.body
        } else {
            octo == case.bytes
        };
        if !same {
            findings.push(case.name.clone());
        }
    }
    assert!(compared > 80, "only {compared} cases compared");
    assert!(
        findings.is_empty(),
        "octo's bytes differ from Apache Thrift's for: {findings:?}"
    );
}
