//! Bridges between async object streams and the synchronous codecs and file writers, so
//! that data flows through in bounded chunks instead of being held whole in memory.

use std::io::{self, Read};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::error::Error;

/// A blocking `Read` over chunks sent from async code through a bounded channel. A storage
/// error sent down the channel surfaces as an `io::Error` that [`into_storage_error`]
/// turns back into the original.
pub struct ChannelReader {
    chunks: mpsc::Receiver<Result<Bytes, Error>>,
    current: Bytes,
}

impl ChannelReader {
    /// A reader and the sender that feeds it, holding at most `depth` chunks in between.
    pub fn new(depth: usize) -> (mpsc::Sender<Result<Bytes, Error>>, Self) {
        let (tx, rx) = mpsc::channel(depth.max(1));
        (
            tx,
            ChannelReader {
                chunks: rx,
                current: Bytes::new(),
            },
        )
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(error)) => return Err(io::Error::other(error)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// The storage error a [`ChannelReader`] carried, if `error` is one.
pub fn into_storage_error(error: io::Error) -> Result<Error, io::Error> {
    if error.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        let inner = error.into_inner().expect("checked above");
        Ok(*inner.downcast::<Error>().expect("checked above"))
    } else {
        Err(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chunks_arrive_in_order_and_errors_come_back_whole() {
        let (tx, mut reader) = ChannelReader::new(2);
        let feeder = tokio::spawn(async move {
            for chunk in [&b"hello "[..], b"", b"world"] {
                tx.send(Ok(Bytes::from_static(chunk))).await.unwrap();
            }
            tx.send(Err(Error::Connectivity("gone".into())))
                .await
                .unwrap();
        });
        let result = tokio::task::spawn_blocking(move || {
            let mut text = Vec::new();
            let error = reader.read_to_end(&mut text).unwrap_err();
            (text, into_storage_error(error))
        })
        .await
        .unwrap();
        feeder.await.unwrap();
        assert_eq!(result.0, b"hello world");
        assert!(matches!(result.1, Ok(Error::Connectivity(m)) if m == "gone"));
    }
}
