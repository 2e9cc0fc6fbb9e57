//! The OCTO status codes that every error and response is reported with (PROTOCOL.md §3).

use core::fmt;

/// A `ResponseInfo.status` code. Every layer and every language reports failures with one of these.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// The call succeeded.
    Success = 0,
    /// The handler raised a declared exception.
    ApplicationException = 1,
    /// The handler failed unexpectedly.
    RuntimeException = 2,
    /// Other framework errors.
    RpcException = 3,
    /// Connection-level failures.
    TransportException = 4,
    /// Malformed frame, header or body.
    ProtocolException = 5,
    /// Request shed: overload, rate limit, circuit open.
    DegradeException = 6,
    /// Authentication or authorization refused.
    SecurityException = 7,
    /// Unknown service or method.
    ServiceException = 8,
    /// Error reported by a further hop.
    RemoteException = 9,
}

impl Status {
    /// Every status, in code order.
    pub const ALL: [Status; 10] = [
        Status::Success,
        Status::ApplicationException,
        Status::RuntimeException,
        Status::RpcException,
        Status::TransportException,
        Status::ProtocolException,
        Status::DegradeException,
        Status::SecurityException,
        Status::ServiceException,
        Status::RemoteException,
    ];

    /// The status with this wire code, or `None` for a code PROTOCOL.md does not define.
    ///
    /// ```
    /// use octo_engine::proto::Status;
    /// assert_eq!(Status::from_code(5), Some(Status::ProtocolException));
    /// assert_eq!(Status::from_code(10), None);
    /// ```
    #[inline]
    pub const fn from_code(code: u8) -> Option<Status> {
        if (code as usize) < Self::ALL.len() {
            Some(Self::ALL[code as usize])
        } else {
            None
        }
    }

    /// The wire code.
    #[inline]
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The name used by Dorado and Whale (e.g. `"ProtocolException"`).
    pub const fn name(self) -> &'static str {
        match self {
            Status::Success => "Success",
            Status::ApplicationException => "ApplicationException",
            Status::RuntimeException => "RuntimeException",
            Status::RpcException => "RpcException",
            Status::TransportException => "TransportException",
            Status::ProtocolException => "ProtocolException",
            Status::DegradeException => "DegradeException",
            Status::SecurityException => "SecurityException",
            Status::ServiceException => "ServiceException",
            Status::RemoteException => "RemoteException",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_from_code() {
        for s in Status::ALL {
            assert_eq!(Status::from_code(s.code()), Some(s));
        }
        for code in 10..=255u8 {
            assert_eq!(Status::from_code(code), None);
        }
    }

    #[test]
    fn codes_match_protocol_md() {
        assert_eq!(Status::Success.code(), 0);
        assert_eq!(Status::ProtocolException.code(), 5);
        assert_eq!(Status::RemoteException.code(), 9);
        assert_eq!(Status::ServiceException.to_string(), "ServiceException");
    }
}
