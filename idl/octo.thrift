// The OCTO protocol header (../shared/PROTOCOL.md section 3), as Thrift IDL.
// Apache Thrift's generated code for this file is what octo's codec is cross-checked against
// (engine/tests/thrift_xcheck.rs), and what the Netty peer (bench/peers/netty) decodes headers with.
// Field ids and types are the wire contract; names follow Dorado's IDL.

namespace java octo.idl
namespace py octo_idl
namespace cpp octo_idl

struct RequestInfo {
  1: required string serviceName
  2: required i64 sequenceId
  3: required byte callType    // 0 Reply, 1 NoReply (one-way)
  4: required i32 timeout      // milliseconds
}

struct ResponseInfo {
  1: required i64 sequenceId
  2: required byte status      // 0..9, PROTOCOL.md section 3
  3: optional string message
}

struct TraceInfo {
  1: required string clientAppkey
  2: optional string traceId
  3: optional string spanId
  4: optional string rootMessageId
  5: optional string currentMessageId
  6: optional string serverMessageId
  7: optional bool debug
  8: optional bool sample
  9: optional string clientIp
}

struct LoadInfo {
  1: optional double averageLoad
  2: optional i32 oldGC
  3: optional i32 threadNum
  4: optional i32 queueSize
  5: optional map<string, double> methodQpsMap
}

struct HeartbeatInfo {
  1: optional string appkey
  2: optional i64 sendTime     // milliseconds (Dorado's IDL comment says microseconds; the wire has ms)
  3: optional LoadInfo loadInfo
  4: required i32 status       // 0 DEAD, 2 ALIVE, 4 STOPPED
}

struct Header {
  1: optional byte messageType = 0   // 0 Normal, 1 NormalHeartbeat, 2 ScannerHeartbeat
  2: optional RequestInfo requestInfo
  3: optional ResponseInfo responseInfo
  4: optional TraceInfo traceInfo
  5: optional map<string, string> globalContext
  6: optional map<string, string> localContext
  7: optional HeartbeatInfo heartbeatInfo
}
