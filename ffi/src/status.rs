//! The status every fallible C function returns: the OCTO status codes plus local ones.

use ::octo_engine::proto::Status;

/// The outcome of a call into octo. 0 is success; 1 to 9 are the OCTO status codes of
/// PROTOCOL.md (what a peer or the engine reported for a call); 100 and up are local to this
/// process (misuse, lifecycle, timeouts).
///
/// A function that returns anything but `OCTO_STATUS_OK` wrote none of its outputs and left a
/// message for `octo_last_error()` on the calling thread.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum octo_status {
    /// Success (OCTO status 0).
    Ok = 0,
    /// The handler raised a declared exception (OCTO status 1).
    ApplicationException = 1,
    /// The handler failed unexpectedly (OCTO status 2).
    RuntimeException = 2,
    /// Other framework errors (OCTO status 3).
    RpcException = 3,
    /// Connection-level failure (OCTO status 4).
    TransportException = 4,
    /// Malformed frame, header or body (OCTO status 5).
    ProtocolException = 5,
    /// Request shed: overload, rate limit, circuit open (OCTO status 6).
    DegradeException = 6,
    /// Authentication or authorization refused (OCTO status 7).
    SecurityException = 7,
    /// Unknown service or method (OCTO status 8).
    ServiceException = 8,
    /// Error reported by a further hop (OCTO status 9).
    RemoteException = 9,
    /// An argument was NULL, out of range or not valid UTF-8 where text is required.
    InvalidArgument = 100,
    /// The object was shut down or closed; the call was not carried out.
    Closed = 101,
    /// The deadline passed before the operation completed.
    Timeout = 102,
    /// The object is in a state that does not allow the call now (e.g. a buffer shared by clones
    /// cannot be written, a server already started cannot take services); a mailbox is full.
    Busy = 103,
    /// octo panicked inside the call; the panic was caught at the boundary. File a bug.
    Panic = 104,
    /// The responder was answered already: a call is answered exactly once.
    AlreadyAnswered = 105,
    /// The operating system refused (e.g. the address is in use); see octo_last_error().
    Io = 106,
}

impl From<Status> for octo_status {
    fn from(s: Status) -> Self {
        match s {
            Status::Success => octo_status::Ok,
            Status::ApplicationException => octo_status::ApplicationException,
            Status::RuntimeException => octo_status::RuntimeException,
            Status::RpcException => octo_status::RpcException,
            Status::TransportException => octo_status::TransportException,
            Status::ProtocolException => octo_status::ProtocolException,
            Status::DegradeException => octo_status::DegradeException,
            Status::SecurityException => octo_status::SecurityException,
            Status::ServiceException => octo_status::ServiceException,
            Status::RemoteException => octo_status::RemoteException,
        }
    }
}

impl octo_status {
    /// Every status, in code order.
    pub(crate) const ALL: [octo_status; 17] = [
        octo_status::Ok,
        octo_status::ApplicationException,
        octo_status::RuntimeException,
        octo_status::RpcException,
        octo_status::TransportException,
        octo_status::ProtocolException,
        octo_status::DegradeException,
        octo_status::SecurityException,
        octo_status::ServiceException,
        octo_status::RemoteException,
        octo_status::InvalidArgument,
        octo_status::Closed,
        octo_status::Timeout,
        octo_status::Busy,
        octo_status::Panic,
        octo_status::AlreadyAnswered,
        octo_status::Io,
    ];

    /// The status with this code, if any (codes cross the boundary as integers, never as enums,
    /// so a bad value from C is an error rather than undefined behaviour).
    pub fn from_code(code: u32) -> Option<octo_status> {
        Self::ALL.iter().copied().find(|s| *s as u32 == code)
    }

    /// The OCTO wire status this is, if it is one (0..9).
    pub fn wire(self) -> Option<Status> {
        u8::try_from(self as u32).ok().and_then(Status::from_code)
    }

    /// The name, as a NUL-terminated static string.
    pub fn name(self) -> &'static str {
        match self {
            octo_status::Ok => "Success\0",
            octo_status::ApplicationException => "ApplicationException\0",
            octo_status::RuntimeException => "RuntimeException\0",
            octo_status::RpcException => "RpcException\0",
            octo_status::TransportException => "TransportException\0",
            octo_status::ProtocolException => "ProtocolException\0",
            octo_status::DegradeException => "DegradeException\0",
            octo_status::SecurityException => "SecurityException\0",
            octo_status::ServiceException => "ServiceException\0",
            octo_status::RemoteException => "RemoteException\0",
            octo_status::InvalidArgument => "InvalidArgument\0",
            octo_status::Closed => "Closed\0",
            octo_status::Timeout => "Timeout\0",
            octo_status::Busy => "Busy\0",
            octo_status::Panic => "Panic\0",
            octo_status::AlreadyAnswered => "AlreadyAnswered\0",
            octo_status::Io => "Io\0",
        }
    }
}

/// The name of a status code ("Success", "ProtocolException", "InvalidArgument", ...), as a
/// static NUL-terminated string that is never freed; "Unknown" for a code that is not an
/// `octo_status`. Any thread.
#[no_mangle]
pub extern "C" fn octo_status_name(status: u32) -> *const std::ffi::c_char {
    let name = octo_status::from_code(status).map_or("Unknown\0", octo_status::name);
    name.as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_statuses_keep_their_octo_codes() {
        for s in Status::ALL {
            assert_eq!(octo_status::from(s) as u32, s.code() as u32);
            assert_eq!(octo_status::from(s).wire(), Some(s));
        }
    }

    #[test]
    fn local_statuses_are_not_wire_statuses() {
        for s in octo_status::ALL.into_iter().filter(|s| *s as u32 >= 100) {
            assert_eq!(s.wire(), None);
        }
    }

    #[test]
    fn every_code_round_trips_and_names_are_terminated() {
        for s in octo_status::ALL {
            assert_eq!(octo_status::from_code(s as u32), Some(s));
            assert!(s.name().ends_with('\0'));
        }
        assert_eq!(octo_status::from_code(10), None);
    }
}
