//! TCP socket setup for shards: listeners bound as a SO_REUSEPORT group, outbound sockets, and
//! the conversions between `std::net::SocketAddr` and the kernel's `sockaddr_storage`.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A bound, listening TCP socket, ready to be handed to a shard with [`super::Shard::listen`].
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
    local_addr: SocketAddr,
}

impl Listener {
    /// The address the socket is bound to (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub(crate) fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

/// Binds `count` listening sockets to `addr` as one SO_REUSEPORT group, so that the kernel
/// spreads incoming connections over them (one per shard).
///
/// Port ownership: SO_REUSEPORT would let a second process of the same user join the group and
/// silently take a share of the connections. Before forming the group this function binds a
/// probe socket WITHOUT SO_REUSEPORT to the address: if anyone holds the port (with or without
/// SO_REUSEPORT) the probe fails with `AddrInUse` and so does this call. The probe is closed just
/// before the group binds, so a process that binds in that instant, or that joins the group later
/// with SO_REUSEPORT set and the same user id, still shares the port: the kernel offers no way to
/// seal a group. With port 0 the first socket picks the port and the others join it.
pub fn bind_reuseport_group(
    addr: SocketAddr,
    count: usize,
    backlog: i32,
) -> io::Result<Vec<Listener>> {
    if count == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no listeners asked for",
        ));
    }
    if addr.port() != 0 {
        let probe = new_socket(&addr)?;
        set_int_opt(&probe, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        bind(&probe, &addr)?;
        drop(probe);
    }
    let mut listeners = Vec::with_capacity(count);
    let mut bind_addr = addr;
    for _ in 0..count {
        let fd = new_socket(&bind_addr)?;
        set_int_opt(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        set_int_opt(&fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
        bind(&fd, &bind_addr)?;
        // SAFETY: fd is a valid socket we own.
        if unsafe { libc::listen(fd.as_raw_fd(), backlog) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let local_addr = local_addr(fd.as_raw_fd())?;
        bind_addr = local_addr;
        listeners.push(Listener { fd, local_addr });
    }
    Ok(listeners)
}

/// A fresh TCP socket of `addr`'s family, close-on-exec.
pub(crate) fn new_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn set_int_opt(fd: &OwnedFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    set_int_opt_raw(fd.as_raw_fd(), level, name, value)
}

pub(crate) fn set_int_opt_raw(fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: value lives for the duration of the call and its size is passed along.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &value as *const i32 as *const libc::c_void,
            mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

pub(crate) fn set_nodelay(fd: RawFd) -> io::Result<()> {
    set_int_opt_raw(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)
}

fn bind(fd: &OwnedFd, addr: &SocketAddr) -> io::Result<()> {
    let (storage, len) = to_sockaddr(addr);
    // SAFETY: storage is a valid sockaddr of length len.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &storage as *const _ as *const libc::sockaddr,
            len,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn local_addr(fd: RawFd) -> io::Result<SocketAddr> {
    // SAFETY: sockaddr_storage is plain old data; zeroed is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: storage and len are valid for writes of the declared size.
    let rc =
        unsafe { libc::getsockname(fd, &mut storage as *mut _ as *mut libc::sockaddr, &mut len) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    from_sockaddr(&storage, len)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unknown address family"))
}

/// `addr` as a kernel socket address and its length.
pub(crate) fn to_sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; zeroed is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is large enough and suitably aligned for sockaddr_in.
            unsafe { (&mut storage as *mut _ as *mut libc::sockaddr_in).write(sin) };
            (
                storage,
                mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is large enough and suitably aligned for sockaddr_in6.
            unsafe { (&mut storage as *mut _ as *mut libc::sockaddr_in6).write(sin6) };
            (
                storage,
                mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

/// The `SocketAddr` in a kernel socket address, if it is IPv4 or IPv6.
pub(crate) fn from_sockaddr(
    storage: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> Option<SocketAddr> {
    match storage.ss_family as i32 {
        libc::AF_INET if len as usize >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and it is long enough.
            let sin = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len as usize >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family says the storage holds a sockaddr_in6, and it is long enough.
            let sin6 = unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trips_v4_and_v6() {
        for addr in ["127.0.0.1:8080", "[::1]:9", "[fe80::1%2]:65535"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let (s, len) = to_sockaddr(&addr);
            assert_eq!(from_sockaddr(&s, len), Some(addr));
        }
    }

    #[test]
    fn a_port_held_by_another_socket_is_refused() {
        let group = bind_reuseport_group("127.0.0.1:0".parse().unwrap(), 1, 16).unwrap();
        let taken = group[0].local_addr();
        let err = bind_reuseport_group(taken, 2, 16).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    fn a_group_shares_one_port() {
        let group = bind_reuseport_group("127.0.0.1:0".parse().unwrap(), 3, 16).unwrap();
        let port = group[0].local_addr().port();
        assert!(group.iter().all(|l| l.local_addr().port() == port));
    }
}
