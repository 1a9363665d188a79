//! A minimal HTTP/1.1 client by hand: one GET written, one response read (head, then a
//! Content-Length, chunked or read-to-close body). No pipelining, so the buffer holds one response.

use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A connection, plain TCP or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Response heads larger than this are an error, not a reason to grow forever.
const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug, PartialEq)]
pub struct Response {
    pub status: u16,
    /// The server will close the connection after this response.
    pub close: bool,
}

#[derive(Debug)]
pub enum Error {
    /// The connection was closed before any byte of a response (an idle keep-alive connection
    /// the server let go): reconnect and send again.
    ClosedBeforeResponse,
    Io(io::Error),
    Malformed(&'static str),
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::ClosedBeforeResponse => write!(f, "connection closed before a response"),
            Error::Io(e) => write!(f, "{e}"),
            Error::Malformed(what) => write!(f, "malformed response: {what}"),
        }
    }
}

/// `GET target HTTP/1.1` with a Host header, nothing else.
pub fn request(target: &str, host: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
}

/// Sends `req` and reads one whole response into `buf` (cleared first).
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin + ?Sized>(
    stream: &mut S,
    req: &[u8],
    buf: &mut Vec<u8>,
) -> Result<Response, Error> {
    stream.write_all(req).await?;
    stream.flush().await?; // TLS buffers records until flushed
    buf.clear();
    let head_end = loop {
        if let Some(i) = find(buf, 0, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(Error::Malformed("head larger than 64 KiB"));
        }
        if fill(stream, buf).await? == 0 {
            return Err(if buf.is_empty() {
                Error::ClosedBeforeResponse
            } else {
                Error::Malformed("closed inside the head")
            });
        }
    };
    let head = parse_head(&buf[..head_end])?;
    let mut close = head.close;
    if head.status / 100 == 1 || head.status == 204 || head.status == 304 {
        // no body
    } else if head.chunked {
        read_chunked(stream, buf, head_end).await?;
    } else if let Some(len) = head.content_length {
        while buf.len() < head_end + len {
            if fill(stream, buf).await? == 0 {
                return Err(Error::Malformed("closed inside the body"));
            }
        }
    } else {
        while fill(stream, buf).await? != 0 {}
        close = true;
    }
    Ok(Response {
        status: head.status,
        close,
    })
}

struct Head {
    status: u16,
    content_length: Option<usize>,
    chunked: bool,
    close: bool,
}

fn parse_head(head: &[u8]) -> Result<Head, Error> {
    let text = std::str::from_utf8(head).map_err(|_| Error::Malformed("head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(Error::Malformed("status line is not HTTP/1.x"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or(Error::Malformed("no status code"))?;
    let mut h = Head {
        status,
        content_length: None,
        chunked: false,
        close: version == "HTTP/1.0",
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            h.content_length = Some(
                value
                    .parse()
                    .map_err(|_| Error::Malformed("bad content-length"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            h.chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            h.close = v.contains("close") || (h.close && !v.contains("keep-alive"));
        }
    }
    Ok(h)
}

/// Reads chunks from `pos` up to and including the last chunk and its trailers.
async fn read_chunked<S: AsyncRead + Unpin + ?Sized>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    mut pos: usize,
) -> Result<(), Error> {
    loop {
        let line_end = line(stream, buf, pos).await?;
        let size_text = std::str::from_utf8(&buf[pos..line_end])
            .map_err(|_| Error::Malformed("chunk size is not text"))?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| Error::Malformed("bad chunk size"))?;
        pos = line_end + 2;
        if size == 0 {
            // trailers, each a line, until an empty one
            loop {
                let end = line(stream, buf, pos).await?;
                let empty = end == pos;
                pos = end + 2;
                if empty {
                    return Ok(());
                }
            }
        }
        while buf.len() < pos + size + 2 {
            if fill(stream, buf).await? == 0 {
                return Err(Error::Malformed("closed inside a chunk"));
            }
        }
        pos += size + 2;
    }
}

/// Index of the CRLF ending the line that starts at `pos`, reading more as needed.
async fn line<S: AsyncRead + Unpin + ?Sized>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    pos: usize,
) -> Result<usize, Error> {
    loop {
        if let Some(i) = find(buf, pos, b"\r\n") {
            return Ok(i);
        }
        if buf.len() - pos > MAX_HEAD {
            return Err(Error::Malformed("chunk line longer than 64 KiB"));
        }
        if fill(stream, buf).await? == 0 {
            return Err(Error::Malformed("closed inside a chunked body"));
        }
    }
}

async fn fill<S: AsyncRead + Unpin + ?Sized>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> io::Result<usize> {
    buf.reserve(16 * 1024);
    stream.read_buf(buf).await
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// Runs one exchange against a canned server reply, fed in small pieces.
    async fn reply(raw: &'static [u8]) -> Result<Response, Error> {
        let (mut client, mut server) = tokio::io::duplex(7);
        let srv = tokio::spawn(async move {
            // the whole request first: the pipe holds only 7 bytes each way
            let mut req = Vec::new();
            while !req.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8; 1];
                if server.read(&mut byte).await.unwrap() == 0 {
                    break;
                }
                req.push(byte[0]);
            }
            assert_eq!(req, b"GET /ok HTTP/1.1\r\nHost: h\r\n\r\n");
            for piece in raw.chunks(5) {
                server.write_all(piece).await.unwrap();
            }
        });
        let mut buf = Vec::new();
        let r = exchange(&mut client, &request("/ok", "h"), &mut buf).await;
        srv.await.unwrap();
        r
    }

    #[tokio::test]
    async fn content_length() {
        let r = reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .await
            .unwrap();
        assert_eq!(
            r,
            Response {
                status: 200,
                close: false
            }
        );
    }

    #[tokio::test]
    async fn chunked_with_trailer() {
        let r = reply(b"HTTP/1.1 404 No\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2;x=y\r\nok\r\n10\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\n").await.unwrap();
        assert_eq!(
            r,
            Response {
                status: 404,
                close: true
            }
        );
    }

    #[tokio::test]
    async fn until_close() {
        let r = reply(b"HTTP/1.1 200 OK\r\n\r\nsome body").await.unwrap();
        assert!(r.close);
    }

    #[tokio::test]
    async fn errors() {
        assert!(matches!(reply(b"").await, Err(Error::ClosedBeforeResponse)));
        assert!(matches!(
            reply(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok").await,
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            reply(b"SSH-2.0\r\n\r\n").await,
            Err(Error::Malformed(_))
        ));
    }
}
