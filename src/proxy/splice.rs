//! Zero-copy tunnels between two TCP sockets (Linux): each direction moves its bytes
//! socket → pipe → socket with splice(2), so they never enter user space. A direction the
//! kernel will not splice (no pipe left, EINVAL/ENOSYS on its first call) is copied instead.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::io::Errno;
use rustix::pipe::{self, PipeFlags, SpliceFlags};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Interest};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;

use super::buffers;
use super::tunnel::Moved;

/// The pipe size each direction asks for. 256 KiB moved a 100 MB body as fast as 1 MiB and
/// 64 KiB did (benches/load.sh, interleaved runs), and keeps 128 tunnels (2 pipes each)
/// under Linux's default `pipe-user-pages-soft` (64 MiB per user) before new pipes shrink;
/// when refused, a pipe keeps its default size.
pub const PIPE_SIZE: usize = 1 << 18;

/// Copies both ways between `a` and `b` until both directions end, with the half-close of
/// `tokio::io::copy_bidirectional`: when one side reaches end of file, the write side of
/// the other is shut down and the other direction goes on ([`HalfClose`]); both sockets
/// are closed as it returns. Returns the bytes moved a → b and b → a. The first error in
/// either direction ends the tunnel; bytes still in that direction's pipe are then dropped
/// with it (the peer they were for has failed).
pub async fn splice_bidirectional(mut a: TcpStream, mut b: TcpStream) -> io::Result<(u64, u64)> {
    let (a_read, a_write) = a.split();
    let (b_read, b_write) = b.split();
    let (mut there, mut back) = (0, 0);
    let ends = HalfClose::default();
    tokio::try_join!(
        one_way(a_read, b_write, Pipe::new(), &mut there, &ends),
        one_way(b_read, a_write, Pipe::new(), &mut back, &ends)
    )?;
    Ok((there, back))
}

/// The ends of a tunnel's two directions. The first to reach end of file shuts down the
/// write side of its destination, and the other direction goes on. The second needs no
/// `shutdown`: the tunnel owns both sockets and closes them as it returns, and that close
/// sends the same FIN (both sides were read to end of file, so nothing unread turns it into
/// a reset) — one system call fewer per tunnel. (Atomic only for `Send`: both directions
/// are polled by one task.)
#[derive(Default)]
struct HalfClose {
    one_ended: AtomicBool,
}

impl HalfClose {
    /// A direction reached end of file with every byte delivered to `to`.
    async fn ended(&self, to: &mut WriteHalf<'_>) -> io::Result<()> {
        if self.one_ended.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        to.shutdown().await
    }
}

/// A direction that moved this many bytes, or filled its buffer in one read, has proved
/// long: it turns to splice(2).
pub const PROVEN_LONG: u64 = 64 * 1024;

/// A read this large (a lent buffer holds at least this much) proves a direction long.
const SHORT_READ: usize = buffers::LENT;

/// Like [`splice_bidirectional`], for tunnels that are mostly short (a browser's CONNECT
/// carries a few kilobytes each way): each direction first copies through a lent buffer,
/// which costs no pipe (two `pipe2`, two `fcntl` and four `close` per tunnel saved), and
/// turns to splice(2) once it proves long ([`PROVEN_LONG`]), so bulk transfers keep the
/// zero-copy rate. The bytes each way are counted as they are delivered, so a tunnel that
/// an error ends still says what it moved: `sent` a → b (`a` is the client), `received`
/// b → a. Both sockets are closed as it returns.
pub async fn relay_bidirectional(mut a: TcpStream, mut b: TcpStream) -> Moved {
    let (a_read, a_write) = a.split();
    let (b_read, b_write) = b.split();
    let (mut sent, mut received) = (0, 0);
    let ends = HalfClose::default();
    let ended = tokio::try_join!(
        short_then_spliced(a_read, b_write, &mut sent, &ends),
        short_then_spliced(b_read, a_write, &mut received, &ends)
    );
    Moved {
        sent,
        received,
        error: ended.err(),
    }
}

/// One direction: copied while it is short, spliced once it is long; then the half-close.
/// The copy buffer is lent only from the moment bytes are readable until they are written,
/// so a tunnel that waits (most of a browser's tunnels, most of the time) holds none.
/// `moved` counts the bytes delivered.
async fn short_then_spliced(
    from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    moved: &mut u64,
    ends: &HalfClose,
) -> io::Result<()> {
    loop {
        from.readable().await?;
        let mut buf = buffers::lend();
        let n = match from.try_read_buf(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                buffers::give_back(buf);
                continue;
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            buffers::give_back(buf);
            return ends.ended(&mut to).await;
        }
        let written = to.write_all(&buf).await;
        buffers::give_back(buf);
        written?;
        *moved += n as u64;
        if n >= SHORT_READ || *moved >= PROVEN_LONG {
            break;
        }
    }
    one_way(from, to, Pipe::new(), moved, ends).await
}

/// The two ends of a pipe, closed on drop.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let (read, write) = pipe::pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
        // Fewer, larger calls; a refusal only costs speed.
        let _ = pipe::fcntl_setpipe_size(&write, PIPE_SIZE);
        Ok(Pipe { read, write })
    }
}

/// How a spliced direction ended without error.
enum Spliced {
    /// The source reached end of file and every byte was delivered.
    Eof,
    /// The kernel will not splice these sockets; `in_pipe` bytes wait in the pipe.
    Unsupported { in_pipe: usize },
}

/// One direction to its end of file, then the half-close of the destination; copied
/// through user space when there is no `pipe`. `moved` counts the bytes delivered.
async fn one_way(
    mut from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    pipe: io::Result<Pipe>,
    moved: &mut u64,
    ends: &HalfClose,
) -> io::Result<()> {
    match pipe {
        Ok(pipe) => match splice_to_eof(from.as_ref(), to.as_ref(), &pipe, moved).await? {
            Spliced::Eof => return ends.ended(&mut to).await,
            Spliced::Unsupported { in_pipe } => {
                tracing::debug!("splice refused, copying this tunnel direction instead");
                drain_pipe(&pipe, in_pipe, &mut to, moved).await?;
            }
        },
        Err(e) => tracing::debug!(error = %e, "no pipe for splice, copying this tunnel direction"),
    }
    let mut reader = BufReader::with_capacity(super::TUNNEL_BUFFER, &mut from);
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return ends.ended(&mut to).await;
        }
        let n = chunk.len();
        to.write_all(chunk).await?;
        reader.consume(n);
        *moved += n as u64;
    }
}

/// Splices `from` → pipe → `to` until `from` reaches end of file. `moved` counts the bytes
/// delivered to `to`, also when an error ends the direction.
async fn splice_to_eof(
    from: &TcpStream,
    to: &TcpStream,
    pipe: &Pipe,
    moved: &mut u64,
) -> io::Result<Spliced> {
    loop {
        // Fill only an empty pipe: EAGAIN can then only mean that the socket has nothing to
        // read, so try_io is right to clear its readiness (a full pipe would also answer
        // EAGAIN, and waiting for the socket would then hang).
        let filled = loop {
            from.readable().await?;
            match from.try_io(Interest::READABLE, || splice(from, &pipe.write, PIPE_SIZE)) {
                Ok(n) => break n,
                Err(e) if retry(&e) => continue,
                Err(e) if unsupported(&e) && *moved == 0 => {
                    return Ok(Spliced::Unsupported { in_pipe: 0 })
                }
                Err(e) => return Err(e),
            }
        };
        if filled == 0 {
            return Ok(Spliced::Eof);
        }
        // Drain it all: the pipe is not empty, so EAGAIN means the socket is full.
        let mut in_pipe = filled;
        while in_pipe > 0 {
            to.writable().await?;
            match to.try_io(Interest::WRITABLE, || splice(&pipe.read, to, in_pipe)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    in_pipe -= n;
                    *moved += n as u64;
                }
                Err(e) if retry(&e) => continue,
                Err(e) if unsupported(&e) && *moved == 0 => {
                    return Ok(Spliced::Unsupported { in_pipe })
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// One non-blocking splice(2) of up to `len` bytes; one of the two ends is a pipe.
fn splice(from: impl AsFd, to: impl AsFd, len: usize) -> io::Result<usize> {
    let flags = SpliceFlags::NONBLOCK | SpliceFlags::MOVE;
    Ok(pipe::splice(from, None, to, None, len, flags)?)
}

/// Nothing was done and the call can be made again once ready.
fn retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// The kernel cannot splice between these descriptors.
fn unsupported(e: &io::Error) -> bool {
    let code = e.raw_os_error();
    code == Some(Errno::INVAL.raw_os_error()) || code == Some(Errno::NOSYS.raw_os_error())
}

/// Writes the `in_pipe` bytes a refused splice left in the pipe through user space;
/// `moved` counts them as they are delivered.
async fn drain_pipe(
    pipe: &Pipe,
    mut in_pipe: usize,
    to: &mut WriteHalf<'_>,
    moved: &mut u64,
) -> io::Result<()> {
    let mut buf = vec![0u8; in_pipe.min(super::TUNNEL_BUFFER)];
    while in_pipe > 0 {
        let want = in_pipe.min(buf.len());
        // The bytes are in the pipe already: this read does not wait.
        let n = rustix::io::read(&pipe.read, &mut buf[..want])?;
        if n == 0 {
            break;
        }
        to.write_all(&buf[..n]).await?;
        in_pipe -= n;
        *moved += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::time::timeout;

    use super::*;

    const GUARD: Duration = Duration::from_secs(20);

    /// A connected loopback pair: (the outside end, the end the tunnel holds).
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (outside, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (outside.unwrap(), accepted.unwrap().0)
    }

    /// Bytes that do not repeat with any short period (xorshift), so a lost, doubled or
    /// reordered chunk shows.
    fn pattern(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// Writes `data`, shuts down the write side, reads to end of file.
    async fn talk(mut stream: TcpStream, data: Vec<u8>) -> io::Result<Vec<u8>> {
        let (mut r, mut w) = stream.split();
        let write = async {
            w.write_all(&data).await?;
            w.shutdown().await
        };
        let mut got = Vec::new();
        let read = r.read_to_end(&mut got);
        tokio::try_join!(write, read)?;
        Ok(got)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn megabytes_cross_both_ways_intact() {
        let (client, a) = pair().await;
        let (b, server) = pair().await;
        let up = pattern(9 << 20, 7);
        let down = pattern(6 << 20, 11);
        let tunnel = splice_bidirectional(a, b);
        let (counts, client_got, server_got) = timeout(GUARD, async {
            tokio::join!(tunnel, talk(client, up.clone()), talk(server, down.clone()))
        })
        .await
        .expect("tunnel finished in time");
        assert_eq!(counts.unwrap(), (up.len() as u64, down.len() as u64));
        assert!(server_got.unwrap() == up, "upstream bytes differ");
        assert!(client_got.unwrap() == down, "downstream bytes differ");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_relayed_tunnel_carries_short_exchanges_then_bulk_intact() {
        let (mut client, a) = pair().await;
        let (b, mut server) = pair().await;
        let tunnel = tokio::spawn(async move { relay_bidirectional(a, b).await });
        // A few short exchanges, each answered before the next: copied through lent
        // buffers, which go back between chunks.
        let mut short_up = 0u64;
        for round in 0..5u64 {
            let ask = pattern(100 + round as usize * 300, round + 1);
            client.write_all(&ask).await.unwrap();
            let mut got = vec![0u8; ask.len()];
            timeout(GUARD, server.read_exact(&mut got))
                .await
                .unwrap()
                .unwrap();
            assert!(got == ask, "short chunk {round} differs upstream");
            server.write_all(&got).await.unwrap();
            let mut back = vec![0u8; ask.len()];
            timeout(GUARD, client.read_exact(&mut back))
                .await
                .unwrap()
                .unwrap();
            assert!(back == ask, "short chunk {round} differs downstream");
            short_up += ask.len() as u64;
        }
        // Then bulk both ways: both directions prove long and turn to splice.
        let up = pattern(3 << 20, 23);
        let down = pattern(2 << 20, 29);
        let (client_got, server_got) = timeout(GUARD, async {
            tokio::join!(talk(client, up.clone()), talk(server, down.clone()))
        })
        .await
        .expect("bulk finished in time");
        assert!(server_got.unwrap() == up, "bulk upstream bytes differ");
        assert!(client_got.unwrap() == down, "bulk downstream bytes differ");
        let relayed = timeout(GUARD, tunnel).await.expect("tunnel ended").unwrap();
        assert!(relayed.error.is_none(), "{relayed:?}");
        assert_eq!(
            (relayed.sent, relayed.received),
            (short_up + up.len() as u64, short_up + down.len() as u64)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_half_close_lets_the_other_direction_finish() {
        let (mut client, a) = pair().await;
        let (b, mut server) = pair().await;
        let answer = pattern(3 << 20, 5);
        let expected = answer.clone();
        let tunnel = tokio::spawn(async move { splice_bidirectional(a, b).await });
        // The client sends its request and closes its write side at once.
        client.write_all(b"request").await.unwrap();
        client.shutdown().await.unwrap();
        // The server sees the request then end of file, and only then answers.
        let mut request = Vec::new();
        timeout(GUARD, server.read_to_end(&mut request))
            .await
            .expect("the half-close reached the server")
            .unwrap();
        assert_eq!(request, b"request");
        server.write_all(&answer).await.unwrap();
        server.shutdown().await.unwrap();
        let mut got = Vec::new();
        timeout(GUARD, client.read_to_end(&mut got))
            .await
            .expect("the answer arrived in time")
            .unwrap();
        assert!(got == expected, "answer differs");
        let counts = timeout(GUARD, tunnel).await.expect("tunnel ended").unwrap();
        assert_eq!(counts.unwrap(), (7, answer.len() as u64));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reset_mid_transfer_ends_the_tunnel_with_an_error() {
        let (mut client, a) = pair().await;
        let (b, mut server) = pair().await;
        let tunnel = tokio::spawn(async move { splice_bidirectional(a, b).await });
        // The server streams until its socket fails.
        tokio::spawn(async move {
            let chunk = pattern(64 << 10, 3);
            while server.write_all(&chunk).await.is_ok() {}
        });
        let mut first = vec![0u8; 256 << 10];
        timeout(GUARD, client.read_exact(&mut first))
            .await
            .expect("bytes flow before the reset")
            .unwrap();
        client.set_zero_linger().unwrap();
        drop(client); // RST, with the tunnel still writing
        let ended = timeout(GUARD, tunnel)
            .await
            .expect("the tunnel did not hang after the reset")
            .unwrap();
        assert!(ended.is_err(), "a reset is an error: {ended:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_relay_ended_by_a_reset_still_counts_what_it_moved() {
        let (mut client, a) = pair().await;
        let (b, mut server) = pair().await;
        let tunnel = tokio::spawn(async move { relay_bidirectional(a, b).await });
        client.write_all(b"hello").await.unwrap();
        let mut hello = [0u8; 5];
        timeout(GUARD, server.read_exact(&mut hello))
            .await
            .expect("the bytes crossed")
            .unwrap();
        tokio::spawn(async move {
            let chunk = pattern(64 << 10, 9);
            while server.write_all(&chunk).await.is_ok() {}
        });
        let mut first = vec![0u8; 256 << 10];
        timeout(GUARD, client.read_exact(&mut first))
            .await
            .expect("bytes flow before the reset")
            .unwrap();
        client.set_zero_linger().unwrap();
        drop(client);
        let relayed = timeout(GUARD, tunnel)
            .await
            .expect("the relay did not hang after the reset")
            .unwrap();
        assert!(relayed.error.is_some(), "a reset is an error: {relayed:?}");
        assert_eq!(relayed.sent, 5, "{relayed:?}");
        assert!(relayed.received >= 256 << 10, "{relayed:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_a_pipe_a_direction_is_copied() {
        let (mut client, mut a) = pair().await;
        let (mut b, server) = pair().await;
        let up = pattern(2 << 20, 13);
        let refused = io::Error::from_raw_os_error(Errno::MFILE.raw_os_error());
        let (a_read, _) = a.split();
        let (_, b_write) = b.split();
        let mut moved = 0;
        let ends = HalfClose::default();
        let direction = one_way(a_read, b_write, Err(refused), &mut moved, &ends);
        let send = async {
            client.write_all(&up).await?;
            client.shutdown().await
        };
        let (ended, sent, server_got) = timeout(GUARD, async {
            tokio::join!(direction, send, talk(server, Vec::new()))
        })
        .await
        .expect("copy finished in time");
        sent.unwrap();
        ended.unwrap();
        assert_eq!(moved, up.len() as u64);
        assert!(server_got.unwrap() == up, "copied bytes differ");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bytes_left_in_a_refused_pipe_go_out_first() {
        let (mut b, mut server) = pair().await;
        let pipe = Pipe::new().unwrap();
        let left = pattern(100 << 10, 17);
        let mut written = 0;
        while written < left.len() {
            written += rustix::io::write(&pipe.write, &left[written..]).unwrap();
        }
        let (_, mut b_write) = b.split();
        let reader = async {
            let mut got = vec![0u8; left.len()];
            server.read_exact(&mut got).await.map(|_| got)
        };
        let mut moved = 0;
        let (drained, got) = timeout(GUARD, async {
            tokio::join!(
                drain_pipe(&pipe, left.len(), &mut b_write, &mut moved),
                reader
            )
        })
        .await
        .expect("drained in time");
        drained.unwrap();
        assert_eq!(moved, left.len() as u64);
        assert!(got.unwrap() == left, "drained bytes differ");
    }
}
