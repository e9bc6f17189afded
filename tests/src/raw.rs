//! A raw HTTPS client for tests of connection handling: rustls (trusting the server's
//! CA, ALPN `h2` or `http/1.1`) over a blocking std `TcpStream`, requests written by
//! hand, so a test can send a request and never read, send a byte at a time, or sit
//! idle. HTTP/1.1 keep-alive requests with their responses read back; HTTP/2 only as far
//! as opening streams (preface, SETTINGS, HEADERS frames), for clients that never read.
//! [`tcp_state`] tells whether the server closed a connection without reading it.

use crate::Server;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

/// How to reach one server: its address, a TLS configuration per ALPN, the admin token.
#[derive(Clone)]
pub struct Target {
    addr: String,
    h1: Arc<rustls::ClientConfig>,
    h2: Arc<rustls::ClientConfig>,
    pub token: String,
}

fn config(ca: &[u8], alpn: &[u8]) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca) {
        roots.add(c.expect("CA pem")).expect("CA");
    }
    let mut c = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(c)
}

impl Target {
    pub fn of(server: &Server) -> Target {
        let pki = server.dir.path().join("data/pki");
        let ca = std::fs::read(pki.join("ca.crt")).expect("ca.crt");
        let token = std::fs::read_to_string(pki.join("admin.token")).expect("admin.token");
        Target {
            addr: format!("127.0.0.1:{}", server.port),
            h1: config(&ca, b"http/1.1"),
            h2: config(&ca, b"h2"),
            token: token.trim().to_string(),
        }
    }

    /// The server's address (`127.0.0.1:port`).
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The TLS configuration trusting the server, offering ALPN `h2` or `http/1.1`.
    pub fn tls_config(&self, h2: bool) -> Arc<rustls::ClientConfig> {
        if h2 { self.h2.clone() } else { self.h1.clone() }
    }

    /// A TCP connection, no TLS yet.
    pub fn tcp(&self) -> io::Result<TcpStream> {
        let s = TcpStream::connect(&self.addr)?;
        s.set_nodelay(true)?;
        Ok(s)
    }

    /// A TCP connection whose receive buffer is `bytes` (set before connecting, so the
    /// window the kernel offers stays that small): a client whose kernel does not absorb
    /// megabytes for it when it stops reading.
    pub fn tcp_with_receive_buffer(&self, bytes: usize) -> io::Result<TcpStream> {
        let addr: std::net::SocketAddrV4 = self.addr.parse().map_err(io::Error::other)?;
        // SAFETY: plain socket calls on a descriptor this function owns until it hands it
        // to the TcpStream; the addresses point at live values of the sizes given.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let stream = <TcpStream as std::os::fd::FromRawFd>::from_raw_fd(fd);
            let size = bytes as libc::c_int;
            let size_len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            let opt = (&size as *const libc::c_int).cast();
            if libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, opt, size_len) != 0 {
                return Err(io::Error::last_os_error());
            }
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: addr.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from(*addr.ip()).to_be() },
                sin_zero: [0; 8],
            };
            let sin_len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            if libc::connect(fd, (&sin as *const libc::sockaddr_in).cast(), sin_len) != 0 {
                return Err(io::Error::last_os_error());
            }
            stream.set_nodelay(true)?;
            Ok(stream)
        }
    }

    /// A TLS connection speaking HTTP/1.1 (`h2`: HTTP/2), handshake done.
    pub fn connect(&self, h2: bool) -> io::Result<Conn> {
        self.connect_over(h2, self.tcp()?)
    }

    /// A TLS connection over `tcp`, handshake done.
    pub fn connect_over(&self, h2: bool, tcp: TcpStream) -> io::Result<Conn> {
        let config = if h2 { self.h2.clone() } else { self.h1.clone() };
        let name = ServerName::try_from("127.0.0.1").expect("name");
        let tls = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
        let mut stream = rustls::StreamOwned::new(tls, tcp);
        stream.sock.set_read_timeout(Some(Duration::from_secs(30)))?;
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(Conn { stream, buf: Vec::new() })
    }

    /// An HTTP/1.1 request's bytes.
    pub fn h1_request(&self, method: &str, path: &str, body: Option<&[u8]>) -> Vec<u8> {
        let mut r = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
             Accept: application/json\r\n",
            self.token
        );
        if let Some(b) = body {
            let kind = if method == "PATCH" { "merge-patch+json" } else { "json" };
            r.push_str(&format!(
                "Content-Type: application/{kind}\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        r.push_str("\r\n");
        let mut out = r.into_bytes();
        out.extend_from_slice(body.unwrap_or_default());
        out
    }

    /// An HTTP/2 connection's preface and SETTINGS, then a GET of `path` on each of the
    /// `streams` client stream ids 1, 3, 5, ...
    pub fn h2_gets(&self, path: &str, streams: u32) -> Vec<u8> {
        let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        frame(&mut out, 0x4, 0, 0, &[]);
        let auth = format!("Bearer {}", self.token);
        let fields = [
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "127.0.0.1"),
            (":path", path),
            ("authorization", auth.as_str()),
            ("accept", "application/json"),
        ];
        let mut block = Vec::new();
        for (n, v) in fields {
            hpack_literal(&mut block, n, v);
        }
        for i in 0..streams {
            // END_STREAM | END_HEADERS
            frame(&mut out, 0x1, 0x5, 1 + 2 * i, &block);
        }
        out
    }
}

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// An HPACK literal header field without indexing, new name, no Huffman coding.
fn hpack_literal(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0);
    for s in [name, value] {
        hpack_int(out, s.len(), 7);
        out.extend_from_slice(s.as_bytes());
    }
}

fn hpack_int(out: &mut Vec<u8>, mut n: usize, prefix: u32) {
    let max = (1usize << prefix) - 1;
    if n < max {
        out.push(n as u8);
        return;
    }
    out.push(max as u8);
    n -= max;
    while n >= 128 {
        out.push((n % 128 + 128) as u8);
        n /= 128;
    }
    out.push(n as u8);
}

/// One TLS connection.
pub struct Conn {
    pub stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// The TCP state of the connection (see [`tcp_state`]).
    pub fn tcp_state(&self) -> u8 {
        tcp_state(&self.stream.sock)
    }

    /// Send an HTTP/1.1 request and read its response (keep-alive): status and body.
    pub fn request(&mut self, req: &[u8]) -> io::Result<(u16, Vec<u8>)> {
        self.send(req)?;
        self.response()
    }

    /// Read an HTTP/1.1 response: status and body.
    pub fn response(&mut self) -> io::Result<(u16, Vec<u8>)> {
        self.response_with_head().map(|(status, _, body)| (status, body))
    }

    /// Read an HTTP/1.1 response: status, head (lower-cased) and body.
    pub fn response_with_head(&mut self) -> io::Result<(u16, String, Vec<u8>)> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_ascii_lowercase();
        let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        self.buf.drain(..head_end);
        let body = if head.contains("transfer-encoding: chunked") {
            self.chunked()?
        } else {
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            while self.buf.len() < len {
                self.fill()?;
            }
            self.buf.drain(..len).collect()
        };
        Ok((status, head, body))
    }

    fn chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = find(&self.buf, b"\r\n") {
                    break i;
                }
                self.fill()?;
            };
            let size = String::from_utf8_lossy(&self.buf[..line_end]);
            let size = usize::from_str_radix(size.trim(), 16).map_err(io::Error::other)?;
            while self.buf.len() < line_end + 2 + size + 2 {
                self.fill()?;
            }
            body.extend_from_slice(&self.buf[line_end + 2..line_end + 2 + size]);
            self.buf.drain(..line_end + 2 + size + 2);
            if size == 0 {
                return Ok(body);
            }
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Read until the server closes the connection or `wait` passes with nothing read;
    /// true when it closed.
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        let _ = self.stream.sock.set_read_timeout(Some(wait));
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e)
                    if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
                {
                    return false;
                }
                Err(_) => return true,
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Linux TCP states of `tcp_info.tcpi_state`.
pub const TCP_ESTABLISHED: u8 = 1;

/// The kernel's TCP state of a socket (1 established; 7 closed, after a reset; 8
/// close-wait, after the peer's FIN), without reading what it holds.
pub fn tcp_state(s: &TcpStream) -> u8 {
    let mut info = [0u8; 256];
    let mut len = info.len() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`, a buffer of that size.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 { 0 } else { info[0] }
}

/// Resident memory of process `pid` in bytes (`VmRSS` of /proc/PID/status).
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
