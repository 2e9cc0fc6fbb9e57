// A Header as a NEWER (or confused) peer might send it: the same field ids and types as idl/octo.thrift plus
// fields octo does not know, of every Thrift type. The cross-check writes headers with this IDL
// to prove that octo skips unknown fields (PROTOCOL.md section 3) instead of failing on them.

namespace py octo_xcheck.newer

struct Extension {
  1: optional string name
  2: optional list<i64> values
}

struct RequestInfo {
  1: required string serviceName
  2: required i64 sequenceId
  3: required i8 callType
  4: required i32 timeout
  5: optional string routingTag
  6: optional list<i64> retryHistory
}

struct ResponseInfo {
  1: required i64 sequenceId
  2: required i8 status
  3: optional string message
  4: optional double serverCostMs
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
  10: optional map<string, Extension> baggage
}

struct LoadInfo {
  1: optional double averageLoad
  2: optional i32 oldGC
  3: optional i32 threadNum
  4: optional i32 queueSize
  5: optional map<string, double> methodQpsMap
  6: optional set<string> hotMethods
}

struct HeartbeatInfo {
  1: optional string appkey
  2: optional i64 sendTime
  3: optional LoadInfo loadInfo
  4: required i32 status
  5: optional i16 weight
}

struct Header {
  1: optional i8 messageType = 0
  2: optional RequestInfo requestInfo
  3: optional ResponseInfo responseInfo
  4: optional TraceInfo traceInfo
  5: optional map<string, string> globalContext
  6: optional map<string, string> localContext
  7: optional HeartbeatInfo heartbeatInfo
  8: optional bool compressedBody
  9: optional binary token
  10: optional list<Extension> extensions
  11: optional set<i32> features
  12: optional map<i64, list<string>> routes
  100: optional Extension tail
}

// Known optional fields arriving with another type than octo.thrift's: Apache Thrift skips such a
// field (as if absent), and so must octo.
struct RetypedTraceInfo {
  1: required string clientAppkey
  7: optional string debug
  9: optional i32 clientIp
}

struct RetypedHeader {
  1: optional string messageType
  2: optional RequestInfo requestInfo
  4: optional RetypedTraceInfo traceInfo
  5: optional list<string> globalContext
  6: optional i64 localContext
  7: optional string heartbeatInfo
}
